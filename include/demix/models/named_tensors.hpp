#pragma once
// The trainable tensors of a network, by name ("decoder.up0.weight"), in a fixed order: what the
// optimiser updates, what model files and checkpoints store.

#include <ATen/core/TensorBody.h>

#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
};

using NamedTensors = std::vector<NamedTensor>;

} // namespace demix
#pragma GCC visibility pop

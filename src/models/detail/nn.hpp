#pragma once
// Small helpers shared by the VAE and the flow: weights drawn from an explicit generator (so that a
// seed alone fixes a network, whatever else used the global RNG), device/dtype moves, and the
// parameter <-> archive round trip with shape checks.

#include <demix/models/named_tensors.hpp>

#include "io/detail/tensor_archive.hpp"

#include <ATen/core/Generator.h>
#include <ATen/core/TensorBody.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace demix::detail {

/// A CPU generator seeded with `seed` (mixed by splitmix64 so that nearby seeds differ).
at::Generator make_cpu_generator(std::uint64_t seed);
/// splitmix64: decorrelates seeds derived from one another (seed, epoch, ...).
std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b);

/// Uniform(-bound, bound) float32 CPU tensor of `sizes` drawn from `gen`.
at::Tensor uniform(const std::vector<int64_t>& sizes, double bound, at::Generator& gen);

/// Moves every tensor to `device`/`dtype`, keeping its requires_grad flag.
void move_to(NamedTensors& params, c10::Device device, c10::ScalarType dtype);
void set_requires_grad(NamedTensors& params, bool on);
std::int64_t element_count(const NamedTensors& params);

/// Weight counting for options that may come from a corrupt file: products and sums that saturate
/// at INT64_MAX instead of overflowing.
struct SaturatingCount {
  std::int64_t total = 0;
  static std::int64_t product(std::initializer_list<std::int64_t> factors);
  void add(std::initializer_list<std::int64_t> factors);
};
/// The bound on a network's weights (2^32: 17 GB of float32, far beyond any real model).
inline constexpr std::int64_t kMaxWeights = std::int64_t{1} << 32;

/// Writes each tensor as `prefix + name`, converted to float32 (model files) unless keep_dtype.
void store(const NamedTensors& params, TensorArchive& archive, const std::string& prefix,
           bool keep_dtype = false);
/// Copies `prefix + name` from the archive into each tensor (same device and dtype as before).
/// FormatError naming the file, the entry and both shapes when a shape differs or one is missing.
void restore(NamedTensors& params, const TensorArchive& archive, const std::string& prefix);

/// Device and dtype of the first tensor (CPU float32 for an empty list).
c10::Device device_of(const NamedTensors& params);
c10::ScalarType dtype_of(const NamedTensors& params);

/// The shape as "[a, b, c]".
std::string shape_string(at::IntArrayRef sizes);

} // namespace demix::detail

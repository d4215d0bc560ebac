#pragma once
// FNV-1a hashes of bytes and tensors: fingerprints that tie a checkpoint to the run that wrote it.

#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>

namespace demix::detail {

/// FNV-1a of bytes, continued from `h`.
inline std::uint64_t fnv1a(const void* data, std::size_t n,
                           std::uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/// FNV-1a of a tensor's values (on the CPU, contiguous); 0 for an undefined tensor.
inline std::uint64_t tensor_fnv1a(const at::Tensor& t) {
  if (!t.defined()) return 0;
  const at::Tensor c = t.detach().to(at::kCPU).contiguous();
  return fnv1a(c.data_ptr(), c.nbytes());
}

} // namespace demix::detail

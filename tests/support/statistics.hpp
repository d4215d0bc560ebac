#pragma once
// What the statistics' unit tests share: a float64 CPU context, smooth positive test maps (every
// class of every statistic non-zero, log defined) and the relative difference they compare with.

#include <demix/core/context.hpp>

#include <ATen/ATen.h>

#include <cstdint>

namespace demix::test {

inline const Context& cpu64() {
  static const Context c({.device = DeviceKind::Cpu, .precision = Precision::Float64});
  return c;
}

/// (batch, n, n) float64: exp of white noise of deviation 0.3, seeded.
inline at::Tensor positive_maps(int64_t batch, int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  return at::exp(0.3 * at::randn({batch, n, n}, at::kDouble));
}

/// max |a - b| / max |b|.
inline double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item<double>();
}

} // namespace demix::test

#pragma once
// Test fields with the character of the maps demix is for.

#include <ATen/ATen.h>

#include <cstdint>

namespace demix::test {

/// Log-normal fields (T, C, n, n), float64: exp of a smoothed Gaussian field, skewed and
/// intermittent as dust is, so that matching their statistics is not matching a Gaussian's.
inline at::Tensor lognormal(int64_t T, int64_t C, int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  const at::Tensor w = at::randn({T, C, n, n}, at::kDouble);
  const at::Tensor k = at::fft_fftfreq(n, 1.0, at::kDouble);
  const at::Tensor k2 = k.view({-1, 1}).square() + k.view({1, -1}).square();
  const at::Tensor amp = (k2 + 1e-2).pow(-0.75); // a steep spectrum: large-scale structure
  const at::Tensor g = at::real(at::fft_ifft2(at::fft_fft2(w) * amp));
  return (g / g.std()).exp();
}

} // namespace demix::test

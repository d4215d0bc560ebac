#pragma once
// Contamination drawn from a model, for component separation when the instrument team gives a
// noise description rather than realizations: white noise, inhomogeneous white noise (a deviation
// per pixel, as scanning strategies make), or a stationary Gaussian field of a given power
// spectrum. Realizations from a synthesis model of an observed example of c (Auclair et al. 2024)
// are drawn with synthesis/microcanonical.hpp.

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <variant>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// White Gaussian noise of one deviation, > 0.
struct WhiteNoise {
  double sigma = 1;
};
/// Inhomogeneous white noise: Gaussian, independent between pixels, of deviation sigma (C, H, W)
/// >= 0 at each pixel.
struct PixelNoise {
  at::Tensor sigma; // (C, H, W)
};
/// A stationary Gaussian field of the given power per Fourier mode, (C, H, W) >= 0, in the
/// convention E|fft2(c)|^2 / (H W) (white noise of deviation sigma has sigma^2 at every mode).
struct SpectrumNoise {
  at::Tensor power; // (C, H, W)
};
using ContaminationModel = std::variant<WhiteNoise, PixelNoise, SpectrumNoise>;

/// M realizations (M, C, H, W) float64 on the CPU of maps `shape` (C, H, W), from a CPU generator
/// seeded with `seed` (the same seed gives the same maps on every machine). ValueError for a
/// deviation or power that is negative or not finite, M < 1; ShapeError for a PixelNoise or
/// SpectrumNoise map not of `shape`.
at::Tensor draw_contamination(const ContaminationModel& model, int64_t M,
                              at::IntArrayRef shape /* (C, H, W) */,
                              std::uint64_t seed); // -> (M, C, H, W)

/// Power per Fourier mode (C, H, W) from a spectrum per integer-|k| annulus, (K) for every channel
/// or (C, K): each mode takes the value of its annulus round(|k|) (|k| in grid units). ShapeError
/// when K does not cover the grid's largest |k| (K >= round(sqrt((H/2)^2 + (W/2)^2)) + 1).
at::Tensor spectrum_per_mode(const at::Tensor& radial /* (K) or (C, K) */, int64_t channels,
                             int64_t height, int64_t width); // -> (C, H, W)

} // namespace demix
#pragma GCC visibility pop

#pragma once
// The real-DFT frequency grid on which galaxies and PSFs are drawn (shared by psf.cpp and
// galaxy.cpp): an L x L periodic image, L odd so that no Nyquist bin needs special treatment.

#include <demix/sim/psf.hpp>

#include <ATen/core/TensorBody.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>

namespace demix::detail {

/// Smallest odd 3-5-7-smooth integer >= n (fast FFT sizes without a Nyquist frequency).
int64_t odd_fft_size(int64_t n);

struct RfftGrid {
  int64_t size = 0; ///< L
  at::Tensor ky;    ///< (L, 1) cycles per pixel, fftfreq order
  at::Tensor kx;    ///< (1, L / 2 + 1) cycles per pixel, 0 .. (L - 1) / (2 L)
};

RfftGrid rfft_grid(int64_t size, const c10::TensorOptions& options);

/// OTF(|k| / pixel_scale) sinc(kx) sinc(ky) on the grid: what multiplies a profile's transform to
/// give the pixel-integrated, PSF-convolved image.
at::Tensor psf_pixel_kernel(const PsfSpec& psf, double pixel_scale_arcsec,
                            const RfftGrid& grid); // -> (L, L / 2 + 1)

/// exp(-2 pi i (kx x + ky y)) for each centre: puts a profile's centre at (x, y) pixels.
at::Tensor shift_phase(const RfftGrid& grid, const at::Tensor& x /* (N) */,
                       const at::Tensor& y /* (N) */); // -> (N, L, L / 2 + 1) complex

} // namespace demix::detail

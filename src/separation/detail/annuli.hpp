#pragma once
// The integer-|k| annuli of a grid: the isotropic binning that the Wiener filter, the signal
// spectrum estimate and spectrum-defined contamination share.

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

namespace demix::detail {

/// The annulus round(|k| / dk) of every mode of an H x W grid, (H, W) int64 with `opt`'s device,
/// and the number of annuli (the largest + 1).
inline std::pair<at::Tensor, int64_t> annuli(int64_t H, int64_t W, const at::TensorOptions& opt) {
  const auto real = opt.dtype(at::kDouble);
  const at::Tensor ky = at::fft_fftfreq(H, 1.0, real) * static_cast<double>(H);
  const at::Tensor kx = at::fft_fftfreq(W, 1.0, real) * static_cast<double>(W);
  const at::Tensor index =
      (ky.view({-1, 1}).square() + kx.view({1, -1}).square()).sqrt().round().to(at::kLong);
  return {index, index.max().item<int64_t>() + 1};
}

} // namespace demix::detail

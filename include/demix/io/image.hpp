#pragma once
// An image as demix passes it around: pixels plus the header keywords that derived outputs keep.

#include <demix/io/fits.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <string>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct Image {
  at::Tensor data;    // (H, W) or (C, H, W); float32/float64, or complex64/complex128 from npy
  FitsHeader header;  // keywords carried to outputs derived from this image (empty for npy)
  std::string source; // the path (and HDU selector) it was read from
  std::string format; // how it was stored, e.g. "FITS HDU 0, BITPIX -32" or "npy <f8, C order"
};

/// What to do with NaN and +-Inf pixels when an image is read.
enum class NonFinitePolicy {
  Reject, ///< throw ValueError giving their count (default: silent NaNs poison every statistic)
  Keep,   ///< leave them (for `info`, or previews that show them in grey)
  Zero,   ///< replace them by 0
  Mean,   ///< replace them by the mean of the finite pixels of the same image plane
};

/// Applies `policy` to `data` and returns the result (the input itself when nothing changes).
/// `what` names the data in the error message (usually the file name).
at::Tensor apply_non_finite_policy(const at::Tensor& data /* (..., H, W) */, NonFinitePolicy policy,
                                   const std::string& what);

/// Pixel statistics over the finite values (complex data: over the modulus).
struct PixelSummary {
  std::int64_t count = 0;   ///< all pixels
  std::int64_t nan = 0;     ///< NaN pixels
  std::int64_t inf = 0;     ///< +-Inf pixels
  double min = 0, max = 0;  ///< over finite pixels (0 when there are none)
  double mean = 0, std = 0; ///< population standard deviation, over finite pixels
};

PixelSummary summarize(const at::Tensor& data /* any shape, any device */);

} // namespace demix
#pragma GCC visibility pop

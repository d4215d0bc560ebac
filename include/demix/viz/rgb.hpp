#pragma once
// Colour pictures of multi-band images (three bands as red, green, blue) with the asinh stretch of
// Lupton et al. (2004, PASP 116, 133), which keeps the colours of bright objects instead of
// saturating them to white: each pixel's three values are scaled by one common factor
// asinh(Q I / stretch) / (Q I) of their mean intensity I.

#include <ATen/core/TensorBody.h>

#include <optional>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct RgbOptions {
  double q = 8.0;                ///< softening: linear for I << stretch / Q, log beyond; > 0
  std::optional<double> stretch; ///< intensity I shown at full brightness; default: the
                                 ///< largest I of the image (no pixel saturates in intensity)
  double minimum = 0.0;          ///< value shown black (images are sky-subtracted: 0)
  std::vector<double> scales;    ///< per-channel multipliers (R, G, B), default 1, 1, 1
  bool origin_lower = true;      ///< row 0 at the bottom (as ds9 and previews)
};

/// The 8-bit picture: channels r, g, b = image[0], image[1], image[2] (e.g. bands i, r, g).
/// I = mean of the three (minimum subtracted, scaled), f(I) = asinh(Q I / stretch) / asinh(Q),
/// each channel value x -> x f(I) / I, clipped to [0, 1] by dividing all three by the largest
/// when it exceeds 1 (a saturated pixel keeps its hue); negative values become 0; non-finite
/// pixels are drawn mid-grey. ShapeError unless (3, H, W) real; ValueError for bad options.
at::Tensor render_rgb(const at::Tensor& image /* (3, H, W) real, any device */,
                      const RgbOptions& options = {}); // -> (H, W, 3) uint8, CPU

/// render_rgb + write_png (preview.hpp), atomically.
void write_rgb_png(const std::string& path, const at::Tensor& image /* (3, H, W) */,
                   const RgbOptions& options = {});

} // namespace demix
#pragma GCC visibility pop

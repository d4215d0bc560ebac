#pragma once
// PNG previews of maps: a stretch maps pixel values to [0, 1], a perceptual colour map to RGB.

#include <ATen/core/TensorBody.h>

#include <optional>
#include <string>
#include <utility>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Value-to-brightness mapping applied after clipping to [vmin, vmax] and rescaling to x in [0, 1].
enum class Stretch {
  Linear, ///< y = x
  Sqrt,   ///< y = sqrt(x)
  Log,    ///< y = log(1 + a x) / log(1 + a), a = 1000: for maps spanning decades
  Asinh,  ///< y = asinh(x / b) / asinh(1 / b), b = 0.1: linear near vmin, logarithmic above
};

enum class Colormap {
  Viridis, ///< perceptually uniform, colour-blind safe (default)
  Magma,   ///< perceptually uniform, black to white through purple
  Gray,    ///< black to white
};

/// Which row of the map is drawn at the top of the picture.
enum class Origin {
  Lower, ///< row 0 at the bottom, as ds9 and astronomers show FITS images (default)
  Upper, ///< row 0 at the top, as matplotlib's imshow does by default
};

struct PreviewOptions {
  Stretch stretch = Stretch::Asinh;
  Colormap colormap = Colormap::Viridis;
  Origin origin = Origin::Lower;
  double lower_percentile =
      0.5; ///< vmin when not given: this percentile of finite pixels, [0, 100)
  double upper_percentile = 99.5; ///< vmax when not given: this percentile, (lower, 100]
  std::optional<double> vmin;     ///< explicit lower clip, overrides lower_percentile
  std::optional<double> vmax;     ///< explicit upper clip, overrides upper_percentile
};

/// Colours a 2D real map. Non-finite pixels are drawn mid-grey. ShapeError unless 2D real,
/// ValueError for inconsistent limits.
at::Tensor render_preview(const at::Tensor& map /* (H, W) real, any device */,
                          const PreviewOptions& options = {}); // -> (H, W, 3) uint8, CPU

/// The clip range [vmin, vmax] render_preview uses for `map` (explicit limits or percentiles of
/// the finite pixels; a constant map gets [v, v + 1]). ValueError for inconsistent limits.
std::pair<double, double> preview_range(const at::Tensor& map /* (H, W) real */,
                                        const PreviewOptions& options = {});

/// The stretch of x in [0, 1] (brightness in [0, 1]); for colour bars.
double apply_stretch(Stretch stretch, double x);

/// Writes an RGB image as an 8-bit PNG, atomically.
void write_png(const std::string& path, const at::Tensor& rgb /* (H, W, 3) uint8 */);

/// render_preview + write_png.
void write_preview(const std::string& path, const at::Tensor& map /* (H, W) real */,
                   const PreviewOptions& options = {});

/// Maps t in [0, 1] to a colour of `map`; exposed for colour bars and tests.
struct Rgb {
  unsigned char r, g, b;
};
Rgb colormap_lookup(Colormap map, double t);

} // namespace demix
#pragma GCC visibility pop

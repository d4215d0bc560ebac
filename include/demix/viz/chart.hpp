#pragma once
// Charts with axes, ticks, labels and legends, drawn with cairo (text through its font machinery:
// fontconfig and FreeType) and written as PNG: the figures of validation reports. A figure is a
// grid of panels; a panel holds line series, each optionally with a shaded band (a spread).

#include <demix/viz/preview.hpp> // Rgb

#include <ATen/core/TensorBody.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// One curve: y against x, drawn as a line (and markers), with an optional band [lo, hi].
struct ChartSeries {
  std::string label;          ///< legend entry ("" for none)
  std::vector<double> x, y;   ///< same length; non-finite points (and <= 0 on log axes) are gaps
  std::vector<double> lo, hi; ///< empty, or the band's edges at each x (same length as x)
  Rgb colour{31, 119, 180};
  bool dashed = false;
  bool markers = false;
};

/// A picture shown in a panel, in pixel coordinates: x the column and y the row, 0-based, each
/// pixel centred on its integer coordinates; optionally with a colour bar that maps the values
/// vmin..vmax to colours as the picture did (render_preview).
struct ChartImage {
  at::Tensor rgb;           ///< (H, W, 3) uint8, top row of the picture first (render_preview's)
  bool origin_lower = true; ///< the picture's bottom row is row 0 (y grows upwards)
  bool colour_bar = false;
  std::string colour_bar_label; ///< the values' name and unit
  Colormap colormap = Colormap::Viridis;
  Stretch stretch = Stretch::Linear;
  double vmin = 0, vmax = 1;
};

/// A vertical line at x labelled at the panel's top (e.g. where a class of coefficients starts).
struct ChartMark {
  double x = 0;
  std::string label;
};

struct ChartPanel {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<ChartSeries> series; ///< over the image, if any, in its pixel coordinates
  /// A horizontal reference line at this y (e.g. a ratio of 1); NaN for none.
  double reference_y = std::numeric_limits<double>::quiet_NaN();
  std::vector<ChartMark> marks;
  std::optional<ChartImage> image; ///< a picture panel: axes fit the picture, aspect kept
};

struct ChartOptions {
  int columns = 2;        ///< panels per row, >= 1
  int panel_width = 520;  ///< pixels, >= 160
  int panel_height = 380; ///< pixels, >= 120
  std::string title;      ///< above the grid ("" for none)
};

/// Whether this build draws charts (cairo was found when it was configured).
bool charts_available();

/// Draws the panels and writes a PNG, atomically. ValueError for no panel, options out of range
/// or a series whose lengths disagree; IoError if the file cannot be written; a build without
/// cairo throws ValueError saying so.
void write_chart_png(const std::string& path, const std::vector<ChartPanel>& panels,
                     const ChartOptions& options = {});

/// A map as a figure: its preview (render_preview with `options`) with axes in pixels, a title and
/// a colour bar labelled `values` (the quantity and its unit, e.g. "intensity [MJy/sr]"); the
/// picture is scaled to about `size` pixels on its longer side. Errors as write_chart_png.
void write_map_figure(const std::string& path, const at::Tensor& map /* (H, W) real */,
                      const PreviewOptions& options, const std::string& title,
                      const std::string& values, int size = 560);

/// An RGB picture (H, W, 3) uint8, top row first (render_rgb's), as a figure with axes in pixels
/// and a title (which should say what the colours are); `origin_lower` as ChartImage's.
void write_picture_figure(const std::string& path, const at::Tensor& rgb, bool origin_lower,
                          const std::string& title, int size = 560);

} // namespace demix
#pragma GCC visibility pop

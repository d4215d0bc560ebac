#pragma once
// Charts with axes, ticks, labels and legends, drawn with cairo (text through its font machinery:
// fontconfig and FreeType) and written as PNG: the figures of validation reports. A figure is a
// grid of panels; a panel holds line series, each optionally with a shaded band (a spread).

#include <demix/viz/preview.hpp> // Rgb

#include <limits>
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

struct ChartPanel {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<ChartSeries> series;
  /// A horizontal reference line at this y (e.g. a ratio of 1); NaN for none.
  double reference_y = std::numeric_limits<double>::quiet_NaN();
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

} // namespace demix
#pragma GCC visibility pop

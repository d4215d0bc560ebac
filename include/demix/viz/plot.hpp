#pragma once
// Minimal raster plots drawn straight into an RGB tensor (no text: legends go to the terminal).
// Used by `demix stats --compare` to show two sets of coefficients side by side.

#include <demix/viz/preview.hpp> // Rgb

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Colours of plotted series, in order (matplotlib's "tab10" blue, orange, green, red).
inline constexpr Rgb kSeriesColours[] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}};
/// Colour of the separators drawn by plot_series.
inline constexpr Rgb kSeparatorColour{200, 200, 200};
/// Blank border, in pixels, around the plotting area of plot_series.
inline constexpr int kPlotMargin = 4;

/// Scatter plot of one or more series on a white background, all on common axes:
///  - point i of a series sits at column  m + round(i (width - 1 - 2m) / (N - 1))  (N = the length
///    of the longest series, m = kPlotMargin; the middle column when N = 1),
///  - value y at row  m + round((hi - y) (height - 1 - 2m) / (hi - lo))  where [lo, hi] is the
///  range
///    of the finite values of all series (hi at the top; lo - 0.5 .. hi + 0.5 when lo = hi),
///  - each point is a 3 x 3 square of its series' colour, later series drawn over earlier ones;
///    non-finite values are skipped,
///  - each separator s (0 < s < N) is a vertical line of kSeparatorColour halfway between points
///    s - 1 and s (under the points): use them to mark groups such as coefficient classes.
/// ys: 1-D real tensors (any device); colours: one per series. width and height >= 16 pixels.
/// ValueError / ShapeError for anything else.
at::Tensor plot_series(const std::vector<at::Tensor>& ys /* each (N_i,) real */,
                       const std::vector<Rgb>& colours, const std::vector<int64_t>& separators,
                       int width,
                       int height); // -> (height, width, 3) uint8, CPU

} // namespace demix
#pragma GCC visibility pop

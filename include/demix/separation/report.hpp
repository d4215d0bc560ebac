#pragma once
// The figure of a separation, for a person to judge it at a glance: the power spectra of the
// observation, the estimate, the Wiener baseline, the contamination (its realizations and the
// residual d - s~) and, for simulations, the truth; with a truth, the cross-correlation of the
// estimate and of the Wiener map with it per scale, beside the Wiener bound.

#include <ATen/core/TensorBody.h>

#include <string>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// One channel of a separation; every map (H, W) real, the realizations (M, H, W).
struct SeparationFigureMaps {
  at::Tensor observation;  ///< d
  at::Tensor estimate;     ///< s~
  at::Tensor wiener;       ///< the Wiener filter of d (undefined: not drawn)
  at::Tensor realizations; ///< c_i
  at::Tensor truth;        ///< s, for simulations (undefined: no truth, one panel)
};

/// Writes the figure as PNG (viz/chart.hpp): power spectra against |k| in cycles per pixel in
/// `bins` log-spaced bins (fewer for small maps, until no bin is empty; log-log), and with a truth
/// the cross-correlation coefficient r(k) = P_xs / sqrt(P_x P_s) of the estimate and of the Wiener
/// map with it, beside the bound of a linear filter, sqrt(P_s / (P_s + P_c)). ShapeError for maps
/// of different sizes; the chart's errors (no cairo in this build, an unwritable path).
void write_separation_figure(const std::string& path, const SeparationFigureMaps& maps,
                             const std::string& title, int bins = 16);

} // namespace demix
#pragma GCC visibility pop

#pragma once
// Validation of generated maps as the synthesis papers do it: target maps and sample maps compared
// on statistics the generation did not constrain. Works on any two sets of maps (syntheses,
// separated components against references).
//
// Every measure is computed per map, then summarised per set (mean and standard deviation over
// its maps). Thresholds and PDF bins are in units of the targets: u = (x - mu_T) / sigma_T with
// mu_T, sigma_T the mean and deviation of all target pixels, the same u for the samples, so that
// a sample with the wrong mean or contrast shows it.
//  - Power spectrum: power_spectrum.hpp's isotropic spectrum of x, log-spaced bins; the ratio of
//    the sample mean to the target mean per bin. "Well sampled" bins hold >= 100 Fourier modes
//    (one map's relative error sqrt(2 / modes) <= 14 %).
//  - One-point PDF of u: histogram (density) over bins spanning the targets' range; skewness and
//    excess kurtosis per map; the two-sample Kolmogorov-Smirnov distance between all target
//    pixels and all sample pixels.
//  - Minkowski functionals of the excursion sets {u >= nu} (periodic maps, each pixel a closed
//    unit square): area fraction V0; boundary length per pixel V1 (edges between a pixel in the
//    set and one outside, over the pixel count); Euler characteristic per pixel V2 = (vertices -
//    edges + faces of the union of the squares) / pixel count, exact for the square lattice.
//  - Binned bispectrum (Scoccimarro's FFT estimator): with I_b(x) the inverse FFT of x_hat
//    restricted to the shell |k| in bin b, B(b1, b2, b3) = sum_x I_b1 I_b2 I_b3 / sum_x J_b1 J_b2
//    J_b3 (J: the same with x_hat = 1, the triangle count) / (H W): the mean over the triangles
//    of x_hat(k1) x_hat(k2) x_hat(k3) / (H W), of shells b of width dk = 1 / (4 bins) centred on
//    (b + 1) dk; reported reduced, Q = B(b1, b2, b3) / (P1 P2 + P2 P3 + P3 P1) with P_b the mean
//    of |x_hat|^2 / (H W) over shell b (per map), so that every scale reads on one axis (B itself
//    spans decades and is dominated by the largest scales); the equilateral (b, b, b) and
//    folded (b, b, 2b + 1), that is (k, k, 2k), configurations, k up to a quarter of the
//    sampling rate.
//  - Peak counts: pixels higher than their 8 neighbours (periodic), histogram of their heights u,
//    per map.

#include <ATen/core/TensorBody.h>

#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct ValidationOptions {
  int spectrum_bins = 24;                       ///< log-spaced power-spectrum bins, >= 2
  int pdf_bins = 40;                            ///< histogram bins of the PDF, >= 4
  double threshold_min = -3, threshold_max = 4; ///< Minkowski thresholds nu (units of sigma_T)
  int thresholds = 29;                          ///< number of thresholds, >= 2 (29: steps of 0.25)
  int bispectrum_bins = 8;                      ///< linear |k| bins up to 1/4 cycle per pixel, >= 2
  double peak_min = -2, peak_max = 6;           ///< peak height range (units of sigma_T)
  int peak_bins = 16;                           ///< >= 1
};

/// One measure of both sets along one axis: per point x, the mean and deviation over the maps of
/// each set.
struct MeasureCurve {
  std::string name;    ///< "power_spectrum", "pdf", "minkowski_v0", ...
  std::string x_label; ///< for figures: "k (cycles / pixel)", "threshold nu (sigma_T)"...
  std::string y_label;
  bool log_x = false, log_y = false;
  std::vector<double> x;
  std::vector<double> target_mean, target_std, sample_mean, sample_std;
  /// max over the compared points of |sample_mean - target_mean| / scale, where scale is
  /// |target_mean| (the power spectrum: relative) or the largest |target_mean| of the curve (the
  /// PDF, Minkowski functionals, bispectra and peak counts: relative to the curve's size, as
  /// zeros and sign changes make a pointwise ratio meaningless).
  double max_deviation = 0;
  std::vector<bool> compared; ///< which points count in max_deviation
};

struct MomentSummary {
  double target_mean = 0, target_std = 0, sample_mean = 0, sample_std = 0;
};

struct ValidationReport {
  int64_t target_maps = 0, sample_maps = 0, height = 0, width = 0;
  double mu = 0, sigma = 0; ///< of all target pixels: the units of u
  std::vector<MeasureCurve> curves;
  MomentSummary mean, std, skewness, kurtosis;              ///< per map, of u (kurtosis: excess)
  double ks_distance = 0;                                   ///< two-sample KS over all pixels
  const MeasureCurve& curve(const std::string& name) const; ///< ValueError when absent
};

/// Compares sample maps (S, H, W) with target maps (T, H, W), real, of one size (any device;
/// computed in float64 on the CPU). ValueError for options out of range or maps that are not
/// finite; ShapeError for maps that are not 3-D or of different sizes, or smaller than 16 x 16.
ValidationReport validate_maps(const at::Tensor& targets /* (T, H, W) */,
                               const at::Tensor& samples /* (S, H, W) */,
                               const ValidationOptions& options = {});

/// The report as JSON: sizes, units, moments, KS, and each curve (x, means, deviations, the
/// maximum deviation and which points it covers).
std::string validation_json(const ValidationReport& report);

/// The report as one figure (viz/chart.hpp): spectrum, PDF, the three Minkowski functionals,
/// the two bispectrum configurations and the peak counts, targets against samples with their
/// spreads. `title` above the panels. Errors as write_chart_png.
void write_validation_figure(const std::string& path, const ValidationReport& report,
                             const std::string& title);

} // namespace demix
#pragma GCC visibility pop

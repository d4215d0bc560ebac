#include <demix/core/errors.hpp>
#include <demix/stats/power_spectrum.hpp>

#include "stats/detail/map_batch.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace demix {

namespace {

/// Frequency of DFT index i on an n-point grid, in cycles per pixel (numpy's fftfreq).
double fftfreq(int64_t i, int64_t n) {
  return static_cast<double>(i < (n + 1) / 2 ? i : i - n) / n;
}

std::string num(double v) { return std::to_string(v); }

} // namespace

PowerSpectrumOperator::PowerSpectrumOperator(const PowerSpectrumOptions& options,
                                             const Grid2d& grid, const Context& context)
    : Statistic(grid, context), options_(options), tensor_options_(context.options()) {
  const int64_t height = grid.height, width = grid.width;
  if (grid.boundary != Boundary::Periodic)
    throw ValueError("power spectrum: the Fourier modes of a map assume it periodic; a "
                     "non-periodic grid is not supported (apodise the map first)");
  if (options.bins < 0)
    throw ValueError("power spectrum: bins must be >= 0 (0: one bin per integer |k|), got " +
                     std::to_string(options.bins));
  if (options.binning == PsBinning::Log && options.bins == 0)
    throw ValueError("power spectrum: log binning needs bins >= 1, got bins = 0");
  if (height < 2 || width < 2)
    throw ValueError("power spectrum: the map must be at least 2 x 2 pixels, got " +
                     std::to_string(height) + " x " + std::to_string(width));

  // |k| of every mode, row-major over (H, W) as FFT2's output.
  std::vector<double> kmod(static_cast<size_t>(height * width));
  for (int64_t i = 0; i < height; ++i)
    for (int64_t j = 0; j < width; ++j)
      kmod[i * width + j] = std::hypot(fftfreq(i, height), fftfreq(j, width));
  const double k_max = options.include_corners ? *std::max_element(kmod.begin(), kmod.end()) : 0.5;

  // Edges; mode k is in bin b when edges[b] <= |k| < edges[b + 1] (the last bin closed for the
  // explicit bins), k = 0 excluded for them.
  std::vector<double> edges, centres;
  const bool integer = options.binning == PsBinning::Linear && options.bins == 0;
  if (integer) {
    const double dk = 1.0 / static_cast<double>(std::min(height, width));
    const auto n = static_cast<int64_t>(std::floor(k_max / dk + 0.5));
    for (int64_t b = 0; b <= n + 1; ++b) edges.push_back((static_cast<double>(b) - 0.5) * dk);
    for (int64_t b = 0; b <= n; ++b) centres.push_back(static_cast<double>(b) * dk);
  } else if (options.binning == PsBinning::Linear) {
    for (int b = 0; b <= options.bins; ++b) edges.push_back(k_max * b / options.bins);
    for (int b = 0; b < options.bins; ++b) centres.push_back(k_max * (b + 0.5) / options.bins);
  } else {
    const double k_min = 1.0 / static_cast<double>(std::max(height, width));
    for (int b = 0; b <= options.bins; ++b)
      edges.push_back(k_min * std::pow(k_max / k_min, static_cast<double>(b) / options.bins));
    for (int b = 0; b < options.bins; ++b) centres.push_back(std::sqrt(edges[b] * edges[b + 1]));
  }
  const auto K = static_cast<int64_t>(centres.size());

  // Relative slack so that |k| equal to an outer edge up to rounding is counted in.
  constexpr double slack = 1e-12;
  std::vector<int64_t> index(kmod.size(), K);
  std::vector<int64_t> counts(static_cast<size_t>(K), 0);
  for (size_t m = 0; m < kmod.size(); ++m) {
    const double k = kmod[m];
    int64_t b = K;
    if (integer) {
      if (k < edges[K]) b = static_cast<int64_t>(std::floor(k / (edges[1] - edges[0]) + 0.5));
    } else if (k > 0 && k >= edges[0] * (1 - slack) && k <= edges[K] * (1 + slack)) {
      b = std::upper_bound(edges.begin(), edges.end(), k) - edges.begin() - 1;
      b = std::clamp<int64_t>(b, 0, K - 1);
    }
    index[m] = b;
    if (b < K) ++counts[b];
  }
  for (int64_t b = 0; b < K; ++b)
    if (counts[b] == 0)
      throw ValueError("power spectrum: bin " + std::to_string(b) + " [" + num(edges[b]) + ", " +
                       num(edges[b + 1]) + ") cycles/pixel holds no Fourier mode of a " +
                       std::to_string(height) + " x " + std::to_string(width) +
                       " map with bins = " + std::to_string(options.bins) + "; use fewer bins");

  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  edges_ = at::tensor(edges, f64);
  centres_ = at::tensor(centres, f64);
  counts_ = at::tensor(counts, i64);
  bin_index_ = at::tensor(index, i64).to(tensor_options_.device());
  inv_counts_ = (1.0 / counts_.to(at::kDouble))
                    .to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
  labels_.classes = {"P"};
  labels_.class_id = at::zeros({K}, at::kLong);
  labels_.label_names = {"bin"};
  labels_.labels = at::arange(K, at::kLong).unsqueeze(1);
}

at::Tensor PowerSpectrumOperator::check_input(const at::Tensor& x, const char* name) const {
  const std::string arg = std::string("power spectrum: input ") + name;
  const at::Tensor y = detail::map_batch(x, plane().height, plane().width, arg); // (B, H, W)
  if (!x.is_complex() && !at::isFloatingType(x.scalar_type()))
    throw ValueError(arg + " must be real or complex floating point, got " +
                     c10::toString(x.scalar_type()));
  const at::ScalarType real = tensor_options_.dtype().toScalarType();
  return y.to(tensor_options_.device(), x.is_complex() ? c10::toComplexType(real) : real);
}

at::Tensor PowerSpectrumOperator::bin_average(const at::Tensor& power) const {
  const int64_t B = power.size(0), K = num_bins();
  const at::Tensor flat = power.reshape({B, plane().pixels()}); // (B, H W) real
  // One extra column collects the modes in no bin; it is dropped.
  const at::Tensor sums = at::zeros({B, K + 1}, flat.options()).index_add(1, bin_index_, flat);
  return sums.narrow(1, 0, K) * inv_counts_; // (B, K) real
}

Coefficients PowerSpectrumOperator::make_coefficients(const at::Tensor& values,
                                                      const char* cls) const {
  Coefficients c = labels_;
  c.values = values;
  c.classes = {cls};
  return c;
}

std::vector<StatisticKeyword> PowerSpectrumOperator::keywords() const {
  return {{"BINS", "bins", static_cast<long long>(options_.bins),
           "number of bins (0: one per integer |k| / dk)"},
          {"BINNING", "binning", std::string(options_.binning == PsBinning::Log ? "log" : "linear"),
           "bins of equal width in |k| or in log |k|"},
          {"BOUNDARY", "boundary", std::string("periodic"), "boundary conditions"}};
}

namespace {

/// FFT2 of (B, H, W) maps as (B, H, W, 2) real (real and imaginary parts), optionally of the maps
/// minus their mean. The real view avoids |z|, whose gradient is undefined at z = 0.
at::Tensor spectrum(const at::Tensor& x, bool subtract_mean) {
  const at::Tensor y = subtract_mean ? x - x.mean({-2, -1}, /*keepdim=*/true) : x;
  return at::view_as_real(at::fft_fft2(y));
}

} // namespace

Coefficients PowerSpectrumOperator::forward(const at::Tensor& x_in, const Reference& ref) const {
  ref.require_empty("the power spectrum");
  const at::Tensor xh = spectrum(check_input(x_in, "x"), options_.subtract_mean); // (B, H, W, 2)
  const at::Tensor power = xh.square().sum(-1) / static_cast<double>(plane().pixels()); // (B, H, W)
  return make_coefficients(bin_average(power), "P");
}

Coefficients PowerSpectrumOperator::forward_cross(const at::Tensor& x_in, const at::Tensor& y_in,
                                                  const Reference& ref) const {
  ref.require_empty("the power spectrum");
  const at::Tensor x = check_input(x_in, "x"), y = check_input(y_in, "y");
  if (x.size(0) != y.size(0))
    throw ShapeError("power spectrum: cross-spectrum of batches of different sizes: " +
                     std::to_string(x.size(0)) + " and " + std::to_string(y.size(0)));
  const at::Tensor xh = spectrum(x, options_.subtract_mean); // (B, H, W, 2)
  const at::Tensor yh = spectrum(y, options_.subtract_mean); // (B, H, W, 2)
  // Re(x_hat conj(y_hat)) = Re x Re y + Im x Im y.
  const at::Tensor cross = (xh * yh).sum(-1) / static_cast<double>(plane().pixels()); // (B, H, W)
  return make_coefficients(bin_average(cross), "Pxy");
}

} // namespace demix

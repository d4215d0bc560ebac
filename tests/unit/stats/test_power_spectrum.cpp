// The isotropic power spectrum: white noise is flat at its variance, a cosine lands in the bin of
// its wavenumber, Parseval over the bins, bin layouts, cross-spectra, and option errors.

#include <demix/core/errors.hpp>
#include <demix/stats/power_spectrum.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <numbers>
#include <string>
#include <vector>

namespace {

const demix::Context& cpu64() {
  static const demix::Context c(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  return c;
}

/// Checks that every bin of the mean spectrum of `batch` white-noise maps of standard deviation
/// `sigma` is sigma^2 within 5 of its standard errors, sigma^2 sqrt(2 / (counts batch)) (real
/// Gaussian noise: |x_hat|^2 / (HW) is sigma^2 chi^2_2 / 2 per independent pair of modes +-k,
/// sigma^2 chi^2_1 for the self-conjugate ones; both give that variance). Returns the largest
/// deviation in standard errors.
double white_noise_worst_sigma(const demix::PowerSpectrumOperator& op, int64_t n, int64_t batch,
                               double sigma, uint64_t seed, int64_t first_bin) {
  at::manual_seed(seed);
  const at::Tensor x = sigma * at::randn({batch, n, n}, at::kDouble);
  const at::Tensor p = op.forward(x).values.mean(0); // (K,)
  const at::Tensor counts = op.counts().to(at::kDouble);
  const at::Tensor err = sigma * sigma * at::sqrt(2.0 / (counts * batch));
  const at::Tensor z = ((p - sigma * sigma) / err).narrow(0, first_bin, p.numel() - first_bin);
  for (int64_t b = 0; b < z.numel(); ++b)
    EXPECT_LT(std::abs(z[b].item<double>()), 5.0) << "bin " << b + first_bin;
  return z.abs().max().item<double>();
}

TEST(PowerSpectrum, WhiteNoiseIsFlatAtItsVariance) {
  const int64_t n = 64, batch = 16;
  const double sigma = 1.7;
  demix::PowerSpectrumOperator op({}, {n, n}, cpu64());
  ASSERT_EQ(op.num_bins(), n / 2 + 1);
  // Bin 0 is the mean, subtracted. Bins 1..32 are checked at 5 standard errors.
  const double worst = white_noise_worst_sigma(op, n, batch, sigma, 11, 1);
  at::manual_seed(11);
  const at::Tensor p = op.forward(sigma * at::randn({batch, n, n}, at::kDouble)).values.mean(0);
  // The mean is removed up to float64 rounding: |x_hat(0)|^2 / HW ~ HW (eps sigma)^2 ~ 1e-28.
  EXPECT_LT(p[0].item<double>(), 1e-20);
  const at::Tensor rel = (p.narrow(0, 1, n / 2) / (sigma * sigma) - 1).abs();
  std::cout << "[ measured ] white noise sigma^2 = " << sigma * sigma << ", 16 maps 64x64: bins 1-"
            << n / 2 << " within " << rel.max().item<double>() << " relative (mean "
            << rel.mean().item<double>() << "), worst " << worst << " standard errors\n";
}

TEST(PowerSpectrum, WhiteNoiseIsFlatWithLogBins) {
  const int64_t n = 64;
  demix::PowerSpectrumOperator op({.bins = 8, .binning = demix::PsBinning::Log}, {n, n}, cpu64());
  const double worst = white_noise_worst_sigma(op, n, 16, 0.3, 12, 0);
  std::cout << "[ measured ] white noise, 8 log bins: worst " << worst << " standard errors\n";
}

TEST(PowerSpectrum, WithoutMeanSubtractionBinZeroIsTheMeanSquared) {
  const int64_t n = 16;
  demix::PowerSpectrumOperator op({.subtract_mean = false}, {n, n}, cpu64());
  at::manual_seed(13);
  const at::Tensor x = at::randn({2, n, n}, at::kDouble) + 3.0;
  const at::Tensor p0 = op.forward(x).values.select(1, 0); // |x_hat(0)|^2 / (HW) = HW mean^2
  const at::Tensor expected = x.mean({1, 2}).square() * (n * n);
  EXPECT_LT((p0 - expected).abs().max().item<double>(), 1e-12 * expected.max().item<double>());
}

TEST(PowerSpectrum, CosineFallsInTheBinOfItsWavenumber) {
  const int64_t n = 32;
  demix::PowerSpectrumOperator op({}, {n, n}, cpu64());
  // cos(2 pi (3 u + 4 v) / n): |k| = 5 / n, bin 5; its mean square is 1/2 (Parseval).
  const at::Tensor u = at::arange(n, at::kDouble);
  const at::Tensor x =
      at::cos(2 * std::numbers::pi * (3 * u.view({-1, 1}) + 4 * u.view({1, -1})) / n);
  const at::Tensor p = op.forward(x).values[0];
  const double in_bin = p[5].item<double>() * op.counts()[5].item<double>() / (n * n);
  EXPECT_NEAR(in_bin, 0.5, 1e-12); // float64 rounding of a 1024-point FFT
  p[5] = 0;
  EXPECT_LT(p.abs().max().item<double>(), 1e-12); // float64 rounding leakage only
  EXPECT_NEAR(op.bin_centres()[5].item<double>(), 5.0 / n, 1e-15);
}

TEST(PowerSpectrum, ParsevalOverAllBinsWeightedByCounts) {
  const int64_t h = 24, w = 40; // non-square, to exercise both fftfreq grids
  at::manual_seed(14);
  const at::Tensor x = at::randn({3, h, w}, at::kDouble).cumsum(2) + 0.5; // red, with a mean
  const at::Tensor mean_sq = x.square().mean({1, 2});                     // (B,)
  // Integer bins with corners: every mode, k = 0 included, is in one bin.
  demix::PowerSpectrumOperator all({.subtract_mean = false, .include_corners = true}, {h, w},
                                   cpu64());
  EXPECT_EQ(all.counts().sum().item<int64_t>(), h * w);
  const at::Tensor counts = all.counts().to(at::kDouble);
  const at::Tensor total = (all.forward(x).values * counts).sum(1) / (h * w);
  EXPECT_LT(((total - mean_sq) / mean_sq).abs().max().item<double>(), 1e-12); // float64 rounding
  // Log bins with corners: every mode but k = 0, whose share is mean(x)^2.
  demix::PowerSpectrumOperator log(
      {.bins = 6, .binning = demix::PsBinning::Log, .include_corners = true}, {h, w}, cpu64());
  EXPECT_EQ(log.counts().sum().item<int64_t>(), h * w - 1);
  const at::Tensor log_total =
      (log.forward(x).values * log.counts().to(at::kDouble)).sum(1) / (h * w);
  const at::Tensor fluct = x.var({1, 2}, /*unbiased=*/false);
  EXPECT_LT(((log_total - fluct) / fluct).abs().max().item<double>(), 1e-12);
  // Complex maps: |x|^2.
  const at::Tensor z = at::complex(x, at::randn_like(x));
  const at::Tensor z_total = (all.forward(z).values * counts).sum(1) / (h * w);
  const at::Tensor z_sq = z.abs().square().mean({1, 2});
  EXPECT_LT(((z_total - z_sq) / z_sq).abs().max().item<double>(), 1e-12);
}

TEST(PowerSpectrum, BinsAreMonotonic) {
  const std::vector<demix::PowerSpectrumOptions> layouts = {
      {},
      {.include_corners = true},
      {.bins = 10},
      {.bins = 7, .binning = demix::PsBinning::Log},
      {.bins = 7, .binning = demix::PsBinning::Log, .include_corners = true},
  };
  for (const auto& o : layouts) {
    demix::PowerSpectrumOperator op(o, {32, 48}, cpu64());
    const at::Tensor c = op.bin_centres(), e = op.bin_edges();
    ASSERT_EQ(c.numel(), op.num_bins());
    ASSERT_EQ(e.numel(), op.num_bins() + 1);
    EXPECT_TRUE((c.diff() > 0).all().item<bool>()) << c;
    EXPECT_TRUE((e.diff() > 0).all().item<bool>()) << e;
    // Every centre lies inside its bin.
    EXPECT_TRUE((c >= e.narrow(0, 0, c.numel())).all().item<bool>());
    EXPECT_TRUE((c < e.narrow(0, 1, c.numel())).all().item<bool>());
    EXPECT_TRUE((op.counts() >= 1).all().item<bool>());
    const double k_max = o.include_corners ? std::hypot(0.5, 0.5) : 0.5;
    if (o.bins > 0) EXPECT_NEAR(e[-1].item<double>(), k_max, 1e-12);
  }
}

TEST(PowerSpectrum, LogBinsHaveEqualLogWidth) {
  demix::PowerSpectrumOperator op({.bins = 5, .binning = demix::PsBinning::Log}, {64, 64}, cpu64());
  const at::Tensor e = op.bin_edges();
  EXPECT_NEAR(e[0].item<double>(), 1.0 / 64, 1e-15); // the fundamental
  EXPECT_NEAR(e[-1].item<double>(), 0.5, 1e-15);     // Nyquist
  const at::Tensor ratio = e.narrow(0, 1, 5) / e.narrow(0, 0, 5);
  EXPECT_LT((ratio - std::pow(32.0, 0.2)).abs().max().item<double>(), 1e-12);
  const at::Tensor c = op.bin_centres();
  EXPECT_LT((c.square() - e.narrow(0, 0, 5) * e.narrow(0, 1, 5)).abs().max().item<double>(), 1e-15);
  // A cosine at |k| = 10 / 64 lands in the log bin containing 10 / 64.
  const at::Tensor u = at::arange(64, at::kDouble);
  const at::Tensor x =
      at::cos(2 * std::numbers::pi * (6 * u.view({-1, 1}) + 8 * u.view({1, -1})) / 64);
  const at::Tensor p = op.forward(x).values[0];
  const int64_t expected = (e.narrow(0, 1, 5) <= 10.0 / 64).sum().item<int64_t>();
  EXPECT_EQ(p.argmax().item<int64_t>(), expected);
  EXPECT_LT(p.sum().item<double>() - p[expected].item<double>(), 1e-12); // rounding leakage only
}

TEST(PowerSpectrum, CrossSpectrum) {
  const int64_t n = 32;
  demix::PowerSpectrumOperator op({}, {n, n}, cpu64());
  at::manual_seed(15);
  const at::Tensor x = at::randn({2, n, n}, at::kDouble), y = at::randn({2, n, n}, at::kDouble);
  const demix::Coefficients xx = op.forward_cross(x, x);
  EXPECT_EQ(xx.classes, std::vector<std::string>{"Pxy"});
  EXPECT_LT((xx.values - op.forward(x).values).abs().max().item<double>(), 1e-12);
  EXPECT_LT(
      (op.forward_cross(x, y).values - op.forward_cross(y, x).values).abs().max().item<double>(),
      1e-12); // symmetric: Re is even under conjugation
  // P(x + y) = P(x) + P(y) + 2 Pxy.
  const at::Tensor sum =
      op.forward(x).values + op.forward(y).values + 2 * op.forward_cross(x, y).values;
  EXPECT_LT((op.forward(x + y).values - sum).abs().max().item<double>(), 1e-12);
  // A cosine and a sine of the same wavevector are in quadrature: no cross power.
  const at::Tensor u = at::arange(n, at::kDouble);
  const at::Tensor phase = 2 * std::numbers::pi * (2 * u.view({-1, 1}) + u.view({1, -1})) / n;
  EXPECT_LT(op.forward_cross(at::cos(phase), at::sin(phase)).values.abs().max().item<double>(),
            1e-12);
}

TEST(PowerSpectrum, BadOptionsAndInputsThrowWithTheValue) {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const demix::ValueError& e) {
      return std::string("ValueError: ") + e.what();
    } catch (const demix::ShapeError& e) {
      return std::string("ShapeError: ") + e.what();
    }
    return std::string("no error");
  };
  using demix::PowerSpectrumOperator;
  EXPECT_NE(message([] {
              PowerSpectrumOperator({.bins = -3}, {32, 32}, cpu64());
            }).find("ValueError: power spectrum: bins must be >= 0"),
            std::string::npos);
  EXPECT_NE(message([] {
              PowerSpectrumOperator({.bins = -3}, {32, 32}, cpu64());
            }).find("-3"),
            std::string::npos);
  EXPECT_NE(message([] {
              PowerSpectrumOperator({.binning = demix::PsBinning::Log}, {32, 32}, cpu64());
            }).find("ValueError: power spectrum: log binning needs bins >= 1, got bins = 0"),
            std::string::npos);
  EXPECT_NE(message([] {
              PowerSpectrumOperator({}, {1, 32}, cpu64());
            }).find("got 1 x 32"),
            std::string::npos);
  // 200 log bins on a 16 x 16 grid: the first bins fall between 1/16 and sqrt(2)/16.
  const std::string empty = message([] {
    PowerSpectrumOperator({.bins = 200, .binning = demix::PsBinning::Log}, {16, 16}, cpu64());
  });
  EXPECT_NE(empty.find("ValueError"), std::string::npos) << empty;
  EXPECT_NE(empty.find("holds no Fourier mode"), std::string::npos) << empty;
  EXPECT_NE(empty.find("bins = 200"), std::string::npos) << empty;
  PowerSpectrumOperator op({}, {16, 16}, cpu64());
  EXPECT_NE(message([&] {
              op.forward(at::zeros({2, 16, 8}, at::kDouble));
            }).find("got 16 x 8"),
            std::string::npos);
  EXPECT_NE(message([&] { op.forward(at::zeros({16}, at::kDouble)); }).find("got 1 dimensions"),
            std::string::npos);
  EXPECT_NE(message([&] {
              op.forward(at::zeros({16, 16}, at::kInt));
            }).find("Int"),
            std::string::npos);
  EXPECT_NE(
      message([&] {
        op.forward_cross(at::zeros({2, 16, 16}, at::kDouble), at::zeros({3, 16, 16}, at::kDouble));
      }).find("ShapeError: power spectrum: cross-spectrum of batches of different sizes: 2 and 3"),
      std::string::npos);
}

TEST(PowerSpectrum, GradientOfZeroMeanMapsIsFinite) {
  // With subtract_mean the k = 0 mode is exactly 0; its gradient must not be NaN (no |z|).
  demix::PowerSpectrumOperator op({}, {8, 8}, cpu64());
  const at::Tensor x = at::ones({1, 8, 8}, at::kDouble).requires_grad_(true);
  op.forward(x).values.sum().backward();
  EXPECT_TRUE(at::isfinite(x.grad()).all().item<bool>());
}

} // namespace

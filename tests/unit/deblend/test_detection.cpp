// Peak detection: the significance map is N(0, 1) on white noise (edges included), isolated
// galaxies are found where they are, pure noise gives the number of false peaks that Gaussian
// random field theory predicts, and the separation and border rules.

#include <demix/core/errors.hpp>
#include <demix/deblend/detection.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <numbers>
#include <vector>

namespace {

const demix::Context& cpu64() {
  static const demix::Context c(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  return c;
}

/// A round Gaussian galaxy of total flux `flux`, centred at (x0, y0), sampled at pixel centres.
at::Tensor gaussian(int64_t H, int64_t W, double x0, double y0, double sigma, double flux) {
  const at::Tensor x = at::arange(W, at::kDouble).view({1, W}) - x0;
  const at::Tensor y = at::arange(H, at::kDouble).view({H, 1}) - y0;
  return flux / (2 * std::numbers::pi * sigma * sigma) *
         at::exp(-0.5 * (x.square() + y.square()) / (sigma * sigma));
}

const at::Tensor& sigmas3() {
  static const at::Tensor s = at::tensor({80.0, 40.0, 120.0}, at::kDouble);
  return s;
}

at::Tensor noise(int64_t N, int64_t H, int64_t W, uint64_t seed) {
  at::manual_seed(seed);
  return at::randn({N, 3, H, W}, at::kDouble) * sigmas3().view({1, 3, 1, 1});
}

TEST(PeakDetection, SignificanceIsUnitNormalOnNoiseEdgesIncluded) {
  const demix::PeakDetector det({}, cpu64());
  const at::Tensor nu = det.significance(noise(8, 96, 96, 1), sigmas3()); // (8, 96, 96)
  // ~2600 independent values (73728 pixels, correlation area 4 pi 1.5^2 = 28): standard errors
  // 0.02 on the mean, 0.03 on the variance; bounds at 5 of them.
  EXPECT_LT(std::abs(nu.mean().item<double>()), 0.1);
  EXPECT_NEAR(nu.var().item<double>(), 1.0, 0.14);
  // The outer 2-pixel frame: without the edge-corrected noise its variance would be ~0.3-0.6.
  const at::Tensor inner = at::zeros({96, 96}, at::kBool);
  inner.narrow(0, 2, 92).narrow(1, 2, 92).fill_(true);
  const at::Tensor frame = nu.masked_select(~inner); // 8 x 760 values, ~1500 independent
  EXPECT_NEAR(frame.var().item<double>(), 1.0, 0.2);
  std::cout << "[ measured ] significance on noise: mean " << nu.mean().item<double>()
            << ", variance " << nu.var().item<double>() << " (edge frame "
            << frame.var().item<double>() << ")\n";
}

TEST(PeakDetection, FindsIsolatedGalaxiesWhereTheyAre) {
  const int64_t H = 100, W = 110;
  const std::vector<std::pair<double, double>> truth = {{15, 12}, {60, 20}, {95, 30},
                                                        {30, 60}, {80, 75}, {50, 90}};
  at::Tensor img = at::zeros({1, 3, H, W}, at::kDouble);
  for (const auto& [x, y] : truth)
    for (int64_t b = 0; b < 3; ++b) img[0][b] += gaussian(H, W, x, y, 2.0, 3e4 * (b + 1));
  img = img + noise(1, H, W, 2);
  demix::DetectionOptions o;
  o.subpixel = false;
  const demix::Detections d = demix::PeakDetector(o, cpu64()).detect(img, sigmas3())[0];
  ASSERT_EQ(d.xy.size(0), 6);
  for (const auto& [x, y] : truth) {
    // Noise of ~1/100 of the peak cannot move an integer-centred peak to another pixel.
    const at::Tensor dist = (d.xy - at::tensor({x, y}, at::kDouble)).abs().sum(1);
    EXPECT_EQ(dist.min().item<double>(), 0.0) << x << ", " << y;
  }
  EXPECT_TRUE((d.significance > 5).all().item<bool>());
  // Decreasing significance.
  EXPECT_TRUE(
      (d.significance.narrow(0, 0, 5) >= d.significance.narrow(0, 1, 5)).all().item<bool>());

  // Off-centre galaxies: the parabola refines to a fraction of a pixel.
  at::Tensor off = at::zeros({1, 3, H, W}, at::kDouble);
  for (const auto& [x, y] : truth)
    for (int64_t b = 0; b < 3; ++b) off[0][b] += gaussian(H, W, x + 0.3, y - 0.2, 2.0, 3e4);
  const demix::Detections s = demix::PeakDetector({}, cpu64()).detect(off, sigmas3())[0];
  ASSERT_EQ(s.xy.size(0), 6);
  double worst = 0;
  for (const auto& [x, y] : truth) {
    const at::Tensor err =
        (s.xy - at::tensor({x + 0.3, y - 0.2}, at::kDouble)).square().sum(1).sqrt();
    worst = std::max(worst, err.min().item<double>());
  }
  // A parabola through a Gaussian of width 2.5 (galaxy and kernel) sampled at -1, 0, 1 pixels
  // is biased by a few hundredths of a pixel for offsets of 0.2-0.3.
  EXPECT_LT(worst, 0.1);
  std::cout << "[ measured ] sub-pixel position error (offset 0.3, -0.2): " << worst << " pixel\n";
}

TEST(PeakDetection, FalseDetectionsOnNoiseFollowTheThreshold) {
  const int64_t N = 16, S = 128;
  const at::Tensor pure = noise(N, S, S, 3);
  demix::DetectionOptions o;
  o.threshold = 3.0;
  o.min_separation = 0;
  const demix::PeakDetector det(o, cpu64());
  // The fraction of pixels above k is the normal tail Q(k) (~26000 independent values: 4%
  // standard error at k = 2, 10% at k = 3 given the clustering of exceedances; bounds 15%, 30%).
  const at::Tensor nu = det.significance(pure, sigmas3());
  for (const double k : {2.0, 3.0}) {
    const double q = 0.5 * std::erfc(k / std::sqrt(2.0));
    const double frac = (nu > k).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(frac, q, (k == 2.0 ? 0.15 : 0.3) * q) << "k = " << k;
  }
  int64_t found = 0;
  for (const auto& d : det.detect(pure, sigmas3())) found += d.xy.size(0);
  // Expected Euler characteristic of the excursion set above u of a unit Gaussian field with
  // Gaussian correlation exp(-d^2 / (4 s^2)) (white noise smoothed by a Gaussian of s = 1.5):
  // second spectral moment l = 1 / (2 s^2); per unit area l u e^{-u^2/2} / (2 pi)^{3/2}, per unit
  // edge length sqrt(l) e^{-u^2/2} / (2 pi). At high u it counts the field's maxima above u.
  const double s = 1.5, u = o.threshold, l = 1 / (2 * s * s);
  const double area = l * u * std::exp(-u * u / 2) / std::pow(2 * std::numbers::pi, 1.5);
  const double edge = std::sqrt(l) * std::exp(-u * u / 2) / (2 * std::numbers::pi);
  const double expected = N * (area * S * S + edge * 4 * S);
  std::cout << "[ measured ] peaks above 3 sigma on " << N << " noise images of " << S
            << "^2: " << found << " (continuous Gaussian field: " << expected << ")\n";
  // The pixel grid samples each maximum below its top, so it finds fewer: 85% of the continuous
  // count at u = 3 over 128 images (measured). Poisson scatter on ~110: 10%. Bounds 0.6 - 1.2.
  EXPECT_GT(static_cast<double>(found), 0.6 * expected);
  EXPECT_LT(static_cast<double>(found), 1.2 * expected);
  int64_t five = 0;
  for (const auto& d : demix::PeakDetector({}, cpu64()).detect(pure, sigmas3()))
    five += d.xy.size(0);
  EXPECT_LE(five, 2); // theory: 0.07 expected above 5 sigma; P(>= 3) ~ 6e-5
}

TEST(PeakDetection, NoiseEstimateFromPixelsIgnoresTheGalaxies) {
  const int64_t H = 64, W = 64;
  const at::Tensor pure = noise(4, H, W, 12);
  // 16384 pixels per band: the MAD's standard error is ~1.1% (1.36 / sqrt(n) relative).
  EXPECT_TRUE(at::allclose(demix::estimate_noise_sigmas(pure), sigmas3(), 0.05, 0));
  at::Tensor busy = pure.clone();
  for (int64_t n = 0; n < 4; ++n)
    for (const double x : {15.0, 40.0})
      for (int64_t b = 0; b < 3; ++b) busy[n][b] += gaussian(H, W, x, 20 + 8 * n, 3.0, 2e5);
  const at::Tensor est = demix::estimate_noise_sigmas(busy);
  std::cout << "[ measured ] noise from images with galaxies: " << est / sigmas3()
            << " of the truth\n";
  // The galaxies cover ~5% of the pixels; clipping keeps the bias of their faint wings to a few
  // percent (measured 3-4% high).
  EXPECT_TRUE(at::allclose(est, sigmas3(), 0.08, 0));
  EXPECT_THROW(demix::estimate_noise_sigmas(at::ones({2, 8, 8})), demix::ValueError);
}

TEST(PeakDetection, SeparationAndBorderRules) {
  const int64_t H = 40, W = 40;
  at::Tensor img = at::zeros({3, H, W}, at::kDouble);
  for (int64_t b = 0; b < 3; ++b)
    img[b] += gaussian(H, W, 15, 20, 1.0, 2e4) + gaussian(H, W, 20, 20, 1.0, 1e4) +
              gaussian(H, W, 1, 5, 1.0, 2e4);
  demix::DetectionOptions o;
  o.subpixel = false;
  o.min_separation = 3;
  EXPECT_EQ(demix::PeakDetector(o, cpu64()).detect(img, sigmas3())[0].xy.size(0), 3);
  o.min_separation = 6; // the fainter of the pair (5 pixels apart) goes
  const demix::Detections d = demix::PeakDetector(o, cpu64()).detect(img, sigmas3())[0];
  ASSERT_EQ(d.xy.size(0), 2);
  EXPECT_FALSE(((d.xy.select(1, 0) == 20) & (d.xy.select(1, 1) == 20)).any().item<bool>());
  o.border = 2; // the galaxy at x = 1 goes
  const demix::Detections e = demix::PeakDetector(o, cpu64()).detect(img, sigmas3())[0];
  ASSERT_EQ(e.xy.size(0), 1);
  EXPECT_TRUE(at::equal(e.xy, at::tensor({15.0, 20.0}, at::kDouble).view({1, 2})));
  EXPECT_THROW(demix::PeakDetector({.smoothing_sigma = 0}, cpu64()), demix::ValueError);
  EXPECT_THROW(demix::PeakDetector({}, cpu64()).detect(img, at::ones({2})), demix::ShapeError);
}

} // namespace

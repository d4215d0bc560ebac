// Contamination models (separation/contamination.hpp): each draws maps with the moments it
// promises (deviation per map, per pixel, power per annulus), a seed means the same maps, and bad
// models are refused.

#include <demix/core/errors.hpp>
#include <demix/separation/contamination.hpp>

#include "support/expect_error.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

namespace {

using demix::test::expect_error_naming;

TEST(Contamination, WhiteNoiseHasItsDeviationAndASeedGivesTheSameMaps) {
  const at::Tensor c = demix::draw_contamination(demix::WhiteNoise{0.3}, 8, {2, 32, 32}, 7);
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{8, 2, 32, 32}));
  // 16384 samples: the deviation's relative standard error is 1 / sqrt(2 * 16384) = 0.55 %.
  EXPECT_NEAR(c.std().item<double>(), 0.3, 0.3 * 0.03);
  EXPECT_TRUE(at::equal(c, demix::draw_contamination(demix::WhiteNoise{0.3}, 8, {2, 32, 32}, 7)));
  EXPECT_FALSE(at::equal(c, demix::draw_contamination(demix::WhiteNoise{0.3}, 8, {2, 32, 32}, 8)));
}

TEST(Contamination, PixelNoiseFollowsTheDeviationMap) {
  // Left half deviation 0.1, right half 1, one column 0 (a pixel that is not observed noisily).
  at::Tensor sigma = at::ones({1, 16, 16}, at::kDouble);
  sigma.narrow(2, 0, 8).fill_(0.1);
  sigma.select(2, 15).fill_(0);
  const at::Tensor c = demix::draw_contamination(demix::PixelNoise{sigma}, 400, {1, 16, 16}, 1);
  // 400 x 128 samples per half: relative standard error 0.3 %.
  EXPECT_NEAR(c.narrow(3, 0, 8).std().item<double>(), 0.1, 0.003);
  EXPECT_NEAR(c.narrow(3, 8, 7).std().item<double>(), 1.0, 0.03);
  EXPECT_EQ(c.select(3, 15).abs().max().item<double>(), 0.0);
}

TEST(Contamination, SpectrumNoiseHasThePowerOfEachAnnulus) {
  const int64_t n = 64, M = 200;
  // A red spectrum P(k) = 1 / (1 + k^2), per annulus up to |k| = 46 (the corner of 64 x 64).
  const at::Tensor k = at::arange(47, at::kDouble);
  const at::Tensor radial = 1 / (1 + k.square());
  const at::Tensor power = demix::spectrum_per_mode(radial, 1, n, n);
  ASSERT_EQ(power.sizes(), (std::vector<int64_t>{1, n, n}));
  EXPECT_DOUBLE_EQ(power[0][0][3].item<double>(), 0.1);      // |k| = 3
  EXPECT_DOUBLE_EQ(power[0][n - 4][3].item<double>(), 1.0 / 26); // |k| = 5
  const at::Tensor c = demix::draw_contamination(demix::SpectrumNoise{power}, M, {1, n, n}, 3);
  // Measured power per mode, averaged over the M maps: each mode is |Gaussian|^2 (exponential,
  // relative spread 1), so over 200 maps and the modes of an annulus the mean is within a few %.
  const at::Tensor measured = at::fft_fft2(c.select(1, 0)).abs().square().mean(0) / (n * n);
  for (const int64_t y : {1, 3, 10}) {
    // The 4 modes (y, 0), (0, y), (-y, 0), (0, -y): 800 exponential samples, 3.5 % standard error.
    const double m =
        (measured[y][0] + measured[0][y] + measured[n - y][0] + measured[0][n - y]).item<double>() /
        4;
    EXPECT_NEAR(m / radial[y].item<double>(), 1.0, 0.15) << "|k| = " << y;
  }
}

TEST(Contamination, BadModelsAreRefused) {
  expect_error_naming<demix::ValueError>(
      [] {
        demix::draw_contamination(demix::WhiteNoise{-1}, 2, {1, 8, 8}, 0);
      },
      {"sigma", "-1"});
  expect_error_naming<demix::ShapeError>(
      [] {
        demix::draw_contamination(demix::PixelNoise{at::ones({8, 8})}, 2, {1, 8, 8}, 0);
      },
      {"deviation map", "(1, 8, 8)", "(8, 8)"});
  at::Tensor negative = at::ones({1, 8, 8}, at::kDouble);
  negative[0][1][1] = -2;
  expect_error_naming<demix::ValueError>(
      [&] {
        demix::draw_contamination(demix::SpectrumNoise{negative}, 2, {1, 8, 8}, 0);
      },
      {"power", "1 negative"});
  expect_error_naming<demix::ShapeError>([] { demix::spectrum_per_mode(at::ones({3}), 1, 8, 8); },
                                         {"3 annuli", "7 values"});
}

} // namespace

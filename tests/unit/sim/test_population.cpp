// The galaxy population: reproducibility from the seed, and its distributions against the laws it
// is drawn from (number counts, size-magnitude relation, truncated Gaussian shapes, type mix),
// with tolerances of 4 standard errors of each estimate.

#include <demix/core/errors.hpp>
#include <demix/sim/population.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

namespace {

constexpr int64_t kCount = 20000;

const demix::Galaxies& sample() {
  static const demix::Galaxies g =
      demix::sample_galaxies(demix::Survey::lsst(), kCount, 42, demix::PopulationOptions{});
  return g;
}

at::Tensor magnitudes(const demix::Galaxies& g, const demix::Survey& s, int band) {
  at::Tensor m = at::empty({g.size()}, at::kDouble);
  for (int64_t i = 0; i < g.size(); ++i) m[i] = s.magnitude(band, g.flux[i][band].item<double>());
  return m;
}

} // namespace

TEST(Population, SameSeedSameGalaxiesOtherSeedOthers) {
  const demix::Survey s = demix::Survey::lsst();
  const demix::Galaxies a = demix::sample_galaxies(s, 50, 7);
  const demix::Galaxies b = demix::sample_galaxies(s, 50, 7);
  const demix::Galaxies c = demix::sample_galaxies(s, 50, 8);
  EXPECT_TRUE(at::equal(a.flux, b.flux));
  EXPECT_TRUE(at::equal(a.bulge_fraction, b.bulge_fraction));
  EXPECT_TRUE(at::equal(a.disk_hlr, b.disk_hlr));
  EXPECT_TRUE(at::equal(a.e2, b.e2));
  EXPECT_FALSE(at::equal(a.flux, c.flux));
  // A prefix of a longer draw is the shorter draw (galaxies are drawn one after the other).
  const demix::Galaxies d = demix::sample_galaxies(s, 80, 7);
  EXPECT_TRUE(at::equal(d.flux.slice(0, 0, 50), a.flux));
  a.check(6);
}

TEST(Population, MagnitudesFollowTheNumberCounts) {
  // CDF of dN/dm ~ 10^(0.31 m) on [20, 25.3]: (10^(0.31 (m - 25.3)) - r) / (1 - r),
  // r = 10^(0.31 (20 - 25.3)); binomial standard error sqrt(p (1 - p) / N) <= 0.0036.
  const demix::Survey s = demix::Survey::lsst();
  const at::Tensor m = magnitudes(sample(), s, s.band_index("i"));
  EXPECT_GE(m.min().item<double>(), 20.0 - 1e-9);
  EXPECT_LE(m.max().item<double>(), 25.3 + 1e-9);
  const double r = std::pow(10.0, 0.31 * (20 - 25.3));
  for (double mid : {22.0, 23.5, 24.5, 25.0}) {
    const double p = (std::pow(10.0, 0.31 * (mid - 25.3)) - r) / (1 - r);
    const double measured = (m < mid).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(measured, p, 4 * std::sqrt(p * (1 - p) / kCount)) << "m < " << mid;
  }
  EXPECT_NEAR(demix::galaxy_number_density(25.3), 46 * std::pow(10.0, 0.31 * 0.3), 1e-12);
  EXPECT_NEAR(demix::galaxy_number_density(25.3), 57.0, 0.05);
}

TEST(Population, SizesFollowTheSizeMagnitudeRelation) {
  // log(r_d / median(m)) has median 0 (Miller et al. 2013 relation, r_d = disk hlr / b_1); its
  // spread is ~0.6, so the sample median's standard error is ~1.25 x 0.6 / sqrt(N) = 0.005.
  // Clipping to [0.05", 2"] touches < 3% of galaxies, on the tails only.
  const demix::Survey s = demix::Survey::lsst();
  const demix::Galaxies& g = sample();
  const at::Tensor m = magnitudes(g, s, s.band_index("i"));
  const at::Tensor rd = g.disk_hlr / 1.678347;
  const at::Tensor log_ratio = (rd.log() - (-1.145 - 0.269 * (m - 23)));
  EXPECT_NEAR(log_ratio.median().item<double>(), 0.0, 0.03);
  // Fainter galaxies are smaller: median hlr at i < 22 vs i > 24.5.
  EXPECT_GT(g.disk_hlr.masked_select(m < 22).median().item<double>(),
            1.5 * g.disk_hlr.masked_select(m > 24.5).median().item<double>());
  EXPECT_GE(g.disk_hlr.min().item<double>(), 0.05);
  EXPECT_LE(g.bulge_hlr.max().item<double>(), 2.0);
  EXPECT_TRUE((g.bulge_hlr <= g.disk_hlr + 1e-12).all().item<bool>());
}

TEST(Population, ShapesAreTruncatedGaussians) {
  // e1, e2 ~ N(0, 0.25^2) cut at |e| < 0.7: E|e|^2 = 2 s^2 - R^2 q / (1 - q), q = exp(-R^2 / 2
  // s^2), so rms(e1) = 0.2399. Standard errors: mean 0.0017, rms ~0.0013; tolerances 4 of them.
  const demix::Galaxies& g = sample();
  const at::Tensor e = (g.e1.square() + g.e2.square()).sqrt();
  EXPECT_LT(e.max().item<double>(), 0.7);
  EXPECT_NEAR(g.e1.mean().item<double>(), 0.0, 0.007);
  EXPECT_NEAR(g.e2.mean().item<double>(), 0.0, 0.007);
  const double s2 = 0.0625, R2 = 0.49, q = std::exp(-R2 / (2 * s2));
  const double rms = std::sqrt(0.5 * (2 * s2 - R2 * q / (1 - q)));
  EXPECT_NEAR(std::sqrt(g.e1.square().mean().item<double>()), rms, 0.005);
  EXPECT_NEAR(std::sqrt(g.e2.square().mean().item<double>()), rms, 0.005);
}

TEST(Population, TypesAndColours) {
  // Half the red galaxies are pure bulges and half the blue ones pure disks; the red fraction
  // 0.35 - 0.03 (m - 20), clipped to [0.15, 0.35], averaged over the magnitude distribution.
  const demix::Survey s = demix::Survey::lsst();
  const demix::Galaxies& g = sample();
  const int i = s.band_index("i"), gb = s.band_index("g");
  const at::Tensor fb = g.bulge_fraction.select(1, i);
  const double r = std::pow(10.0, 0.31 * (20 - 25.3));
  double red = 0; // E[red fraction] by the midpoint rule on 5300 magnitude steps
  for (int k = 0; k < 5300; ++k) {
    const double m = 20 + (k + 0.5) * 1e-3;
    const double pdf = 0.31 * std::log(10.0) * std::pow(10.0, 0.31 * (m - 25.3)) / (1 - r);
    red += std::clamp(0.35 - 0.03 * (m - 20), 0.15, 0.35) * pdf * 1e-3;
  }
  const double p1 = 0.5 * red, p0 = 0.5 * (1 - red);
  const double pure_bulge = (fb == 1).to(at::kDouble).mean().item<double>();
  const double pure_disk = (fb == 0).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(pure_bulge, p1, 4 * std::sqrt(p1 * (1 - p1) / kCount));
  EXPECT_NEAR(pure_disk, p0, 4 * std::sqrt(p0 * (1 - p0) / kCount));
  EXPECT_TRUE((g.bulge_fraction >= 0).all().item<bool>());
  EXPECT_TRUE((g.bulge_fraction <= 1).all().item<bool>());
  // Bulges are red: g - i of pure bulges exceeds that of pure disks (templates: 1.6 to 1.9 vs
  // 0.55 to 1.2).
  const at::Tensor gi = -2.5 * (g.flux.select(1, gb) / g.flux.select(1, i)).log10() +
                        (s.bands[gb].zero_point_mag - s.bands[i].zero_point_mag) +
                        2.5 * std::log10(s.bands[gb].exposure_time_s / s.bands[i].exposure_time_s);
  EXPECT_GT(gi.masked_select(fb == 1).mean().item<double>(),
            gi.masked_select(fb == 0).mean().item<double>() + 0.5);
}

TEST(Population, RefusesBadOptions) {
  const demix::Survey s = demix::Survey::lsst();
  EXPECT_THROW(demix::sample_galaxies(s, 5, 0, {.limit_band = "V"}), demix::ValueError);
  EXPECT_THROW(demix::sample_galaxies(s, 5, 0, {.mag_limit = 20, .mag_bright = 21}),
               demix::ValueError);
  EXPECT_THROW(demix::sample_galaxies(s, 5, 0, {.ellipticity_max = 1.2}), demix::ValueError);
  EXPECT_THROW(demix::sample_galaxies(s, -1, 0), demix::ValueError);
  // Another limit band: the r-band magnitudes respect the limit.
  const demix::Galaxies g = demix::sample_galaxies(s, 200, 3, {.limit_band = "r", .mag_limit = 24});
  EXPECT_LE(magnitudes(g, s, s.band_index("r")).max().item<double>(), 24 + 1e-9);
}

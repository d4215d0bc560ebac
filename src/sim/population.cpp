// The simulated galaxy population. Choices and sources:
//
//  - Magnitudes (limit band, default i): cumulative counts N(< m) = 46 x 10^(0.31 (m - 25))
//    arcmin^-2 (LSST Science Book v2.0, arXiv:0912.0201, eq. 3.7, fitted to deep i-band counts
//    for 20.5 < i < 25.5), i.e. dN/dm ~ 10^(0.31 m), drawn by inverting its CDF between
//    mag_bright and mag_limit. The default limit i < 25.3 is LSST's "gold sample" (Ivezic et al.
//    2019; LSST Science Book sect. 3.7.2) and the BlendingToolKit's default cut (DefaultSampling:
//    max_mag = 25.3 on i_ab), which MADNESS's CatSim blends use.
//  - Sizes: median disk scale length ln(r_d / arcsec) = -1.145 - 0.269 (m - 23) and its scatter
//    p(r) ~ r exp(-(r / a)^(4/3)) (Miller et al. 2013, MNRAS 429, 2858, CFHTLenS, Appendix B1,
//    fitted to HST sizes over 18.5 < i < 25.5): r = a G^(3/4) with G ~ Gamma(3/2), a set so that
//    the median is r_d. Disk half-light radius = b_1 r_d = 1.678 r_d. Bulges are smaller than their
//    disks: bulge/disk half-light ratio uniform in [0.2, 0.5] (blue) or [0.5, 1.0] (red). All
//    radii clipped to [hlr_min, hlr_max].
//  - Types: the red (early-type) fraction falls from 0.35 at m = 20 to 0.19 at 25.3
//    (0.35 - 0.03 (m - 20), clipped to [0.15, 0.35]): a choice in the range of deep-field
//    morphological fractions, not a fit. Bulge share of the flux in the limit band: red galaxies
//    half pure bulges, half uniform in [0.5, 1]; blue galaxies half pure disks, half uniform in
//    [0, 0.5] (CatSim, like these draws, holds many pure disks and pure bulges).
//  - Shapes: e1, e2 ~ N(0, 0.25^2) each, redrawn while |e| >= 0.7; the rms per component of
//    intrinsic shapes of LSST-depth galaxies is ~0.26 (Chang et al. 2013, MNRAS 434, 2121).
//  - Colours: each component's magnitudes relative to the limit band follow a mixture
//    blue + t (red - blue) of two templates of m_band - m_i at the LSST effective wavelengths
//    (interpolated linearly in wavelength for other surveys' bands), plus 0.05 mag of scatter per
//    band: red ~ an old stellar population at z ~ 0.5 (u-i 3.0, g-i 1.9, r-i 0.8, z-i -0.35,
//    y-i -0.55), blue ~ a star-forming galaxy (u-i 0.9, g-i 0.55, r-i 0.2, z-i -0.1, y-i -0.15);
//    approximate template colours (to ~0.3 mag), enough to give bulges and disks different SEDs.
//    Bulges have t ~ U(0.75, 1); disks t ~ U(0, 0.5) in blue galaxies, U(0.4, 0.8) in red ones.
//    Hence the bulge fraction differs per band and galaxies have colour gradients.

#include <demix/core/errors.hpp>
#include <demix/sim/population.hpp>

#include "sim/detail/random.hpp"
#include "sim/detail/special.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace demix {

namespace {

constexpr std::array<double, 6> kTemplateWavelength = {368.141, 486.412, 624.976,
                                                       756.469, 870.164, 972.202};
constexpr std::array<double, 6> kRed = {3.0, 1.9, 0.8, 0.0, -0.35, -0.55};
constexpr std::array<double, 6> kBlue = {0.9, 0.55, 0.2, 0.0, -0.1, -0.15};
constexpr double kCountsSlope = 0.31;   // d log10 N / dm, LSST Science Book eq. 3.7
constexpr double kColourScatter = 0.05; // mag, per band and component

/// Template colour (m - m_i) at wavelength `nm`, interpolated linearly, constant beyond the ends.
double template_colour(const std::array<double, 6>& t, double nm) {
  if (nm <= kTemplateWavelength.front()) return t.front();
  if (nm >= kTemplateWavelength.back()) return t.back();
  std::size_t j = 1;
  while (kTemplateWavelength[j] < nm) ++j;
  const double w =
      (nm - kTemplateWavelength[j - 1]) / (kTemplateWavelength[j] - kTemplateWavelength[j - 1]);
  return t[j - 1] + w * (t[j] - t[j - 1]);
}

/// Median of the Gamma(3/2, 1) distribution, by bisection on P(3/2, x) = 1/2.
double gamma_three_halves_median() {
  static const double m = [] {
    double lo = 0.1, hi = 5;
    for (int i = 0; i < 80; ++i) {
      const double mid = 0.5 * (lo + hi);
      (detail::regularized_gamma_p(1.5, mid) < 0.5 ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
  }();
  return m;
}

} // namespace

double galaxy_number_density(double mag) {
  return 46.0 * std::pow(10.0, kCountsSlope * (mag - 25));
}

Galaxies sample_galaxies(const Survey& survey, int64_t count, uint64_t seed,
                         const PopulationOptions& o) {
  if (count < 0) throw ValueError("galaxy count must be >= 0, got " + std::to_string(count));
  const int lb = survey.band_index(o.limit_band);
  if (!(o.mag_bright < o.mag_limit))
    throw ValueError("population: mag_bright (" + std::to_string(o.mag_bright) +
                     ") must be brighter (smaller) than mag_limit (" + std::to_string(o.mag_limit) +
                     ")");
  if (!(o.hlr_min > 0 && o.hlr_min < o.hlr_max))
    throw ValueError("population: need 0 < hlr_min < hlr_max, got " + std::to_string(o.hlr_min) +
                     ", " + std::to_string(o.hlr_max));
  if (!(o.ellipticity_sigma >= 0 && o.ellipticity_max > 0 && o.ellipticity_max < 1))
    throw ValueError("population: need ellipticity_sigma >= 0 and 0 < ellipticity_max < 1");
  const int B = survey.n_bands();
  std::vector<double> red(B), blue(B);
  for (int b = 0; b < B; ++b) {
    const double nm = survey.bands[b].effective_wavelength_nm;
    red[b] = template_colour(kRed, nm);
    blue[b] = template_colour(kBlue, nm);
  }
  const double b1 = sersic_b(1), gamma_median = gamma_three_halves_median();
  const double ratio = std::pow(10.0, kCountsSlope * (o.mag_bright - o.mag_limit));

  const auto opt = at::TensorOptions().dtype(at::kDouble);
  Galaxies g;
  g.x = at::zeros({count}, opt);
  g.y = at::zeros({count}, opt);
  g.flux = at::empty({count, B}, opt);
  g.bulge_fraction = at::empty({count, B}, opt);
  g.disk_hlr = at::empty({count}, opt);
  g.bulge_hlr = at::empty({count}, opt);
  g.e1 = at::empty({count}, opt);
  g.e2 = at::empty({count}, opt);
  auto* flux = g.flux.data_ptr<double>();
  auto* frac = g.bulge_fraction.data_ptr<double>();
  auto* disk_hlr_out = g.disk_hlr.data_ptr<double>();
  auto* bulge_hlr_out = g.bulge_hlr.data_ptr<double>();
  auto* e1_out = g.e1.data_ptr<double>();
  auto* e2_out = g.e2.data_ptr<double>();

  detail::Rng rng(seed ^ 0xC0FFEE1234ull);
  for (int64_t i = 0; i < count; ++i) {
    // Magnitude: inverse CDF of dN/dm ~ 10^(0.31 m) on [mag_bright, mag_limit].
    const double m = o.mag_limit + std::log10(rng.uniform() * (1 - ratio) + ratio) / kCountsSlope;
    const bool is_red = rng.uniform() < std::clamp(0.35 - 0.03 * (m - 20), 0.15, 0.35);
    double fb = 0; // bulge share in the limit band
    if (is_red)
      fb = rng.uniform() < 0.5 ? 1.0 : rng.uniform(0.5, 1.0);
    else
      fb = rng.uniform() < 0.5 ? 0.0 : rng.uniform(0.0, 0.5);
    // Size: Miller et al. (2013) median scale length and its r exp(-(r/a)^(4/3)) scatter.
    const double median_rd = std::exp(-1.145 - 0.269 * (m - 23));
    double gamma = 0; // Gamma(3/2) = (chi-square with 3 degrees of freedom) / 2
    for (int k = 0; k < 3; ++k) gamma += 0.5 * std::pow(rng.normal(), 2);
    const double rd = median_rd * std::pow(gamma / gamma_median, 0.75);
    const double disk_hlr = b1 * rd;
    const double size_ratio = is_red ? rng.uniform(0.5, 1.0) : rng.uniform(0.2, 0.5);
    disk_hlr_out[i] = std::clamp(disk_hlr, o.hlr_min, o.hlr_max);
    bulge_hlr_out[i] = std::clamp(disk_hlr * size_ratio, o.hlr_min, o.hlr_max);
    // Shape.
    double e1 = 0, e2 = 0;
    do {
      e1 = o.ellipticity_sigma * rng.normal();
      e2 = o.ellipticity_sigma * rng.normal();
    } while (e1 * e1 + e2 * e2 >= o.ellipticity_max * o.ellipticity_max);
    e1_out[i] = e1;
    e2_out[i] = e2;
    // Colours of the two components, then fluxes per band.
    const double t_bulge = rng.uniform(0.75, 1.0);
    const double t_disk = is_red ? rng.uniform(0.4, 0.8) : rng.uniform(0.0, 0.5);
    std::vector<double> cb(B), cd(B);
    for (int b = 0; b < B; ++b) {
      cb[b] = blue[b] + t_bulge * (red[b] - blue[b]) + kColourScatter * rng.normal();
      cd[b] = blue[b] + t_disk * (red[b] - blue[b]) + kColourScatter * rng.normal();
    }
    for (int b = 0; b < B; ++b) {
      // Component magnitude in band b = its magnitude in the limit band + its colour difference.
      const double bulge = fb > 0 ? survey.flux(b, m - 2.5 * std::log10(fb) + cb[b] - cb[lb]) : 0.0;
      const double disk =
          fb < 1 ? survey.flux(b, m - 2.5 * std::log10(1 - fb) + cd[b] - cd[lb]) : 0.0;
      flux[i * B + b] = bulge + disk;
      frac[i * B + b] = b == lb ? fb : bulge / (bulge + disk);
    }
  }
  return g;
}

} // namespace demix

// The survey table and the photometric conversions of survey.hpp.

#include <demix/core/errors.hpp>
#include <demix/sim/survey.hpp>

#include <ATen/ATen.h>

#include <cmath>

namespace demix {

// ---- Rubin LSST, 10-year coadd ------------------------------------------------------------------
//
// Every number below is taken from the survey table of galcheat (github.com/aboucaud/galcheat,
// galcheat/data/LSST.yaml, the table the BlendingToolKit and MADNESS simulate with), which cites:
//  - pixel scale 0.2"/pixel: LSST camera, https://www.lsst.org/about/camera/features
//  - sky_brightness (AB mag / arcsec^2, dark sky): Ivezic et al. 2019, ApJ 873, 111
//    (arXiv:0805.2366 v5), Table 2, first row (m_sky)
//  - full exposure = mean number of visits x 30 s per visit: Ivezic et al. 2019, Table 1 and
//    Sect. 2.2.2; visits u 56, g 80, r 184, i 184, z 160, y 160
//  - zero point (AB magnitude giving 1 e-/s through the whole system, airmass 1.2): computed by
//    galcheat with speclite from the LSST throughput curves (scripts/check_zeropoints.py)
//  - PSF FWHM: Ivezic et al. 2019, Table 2, second row (theta_eff at zenith) x airmass^0.6 with
//    airmass 1.2
//  - effective wavelength: speclite, LSST filters (throughput-weighted mean)
// Moffat beta: 3.5, a common ground-based seeing profile; the Kolmogorov option of psf.hpp
// reproduces the turbulence-limited shape itself.
Survey Survey::lsst() {
  Survey s;
  s.name = "LSST";
  s.pixel_scale_arcsec = 0.2;
  s.psf_moffat_beta = 3.5;
  //        name  lambda_eff  zero point  sky mag  exposure     FWHM
  s.bands = {{"u", 368.141, 26.40, 22.99, 56 * 30.0, 0.90},
             {"g", 486.412, 28.26, 22.26, 80 * 30.0, 0.86},
             {"r", 624.976, 28.10, 21.20, 184 * 30.0, 0.81},
             {"i", 756.469, 27.78, 20.48, 184 * 30.0, 0.79},
             {"z", 870.164, 27.39, 19.60, 160 * 30.0, 0.77},
             {"y", 972.202, 26.56, 18.61, 160 * 30.0, 0.76}};
  return s;
}

namespace {

void check_band(const Survey& s, int band) {
  if (band < 0 || band >= s.n_bands())
    throw ValueError("band index " + std::to_string(band) + " out of range: survey '" + s.name +
                     "' has " + std::to_string(s.n_bands()) + " bands (0 to " +
                     std::to_string(s.n_bands() - 1) + ")");
}

} // namespace

int Survey::band_index(const std::string& band_name) const {
  std::string names;
  for (int b = 0; b < n_bands(); ++b) {
    if (bands[b].name == band_name) return b;
    names += (names.empty() ? "" : ", ") + bands[b].name;
  }
  throw ValueError("survey '" + name + "' has no band '" + band_name + "' (bands: " + names + ")");
}

double Survey::flux(int band, double mag) const {
  check_band(*this, band);
  const BandSpec& b = bands[band];
  return std::pow(10.0, -0.4 * (mag - b.zero_point_mag)) * b.exposure_time_s;
}

double Survey::magnitude(int band, double flux_e) const {
  check_band(*this, band);
  if (!(flux_e > 0))
    throw ValueError("magnitude of a non-positive flux (" + std::to_string(flux_e) +
                     " e-) in band " + bands[band].name);
  const BandSpec& b = bands[band];
  return b.zero_point_mag - 2.5 * std::log10(flux_e / b.exposure_time_s);
}

double Survey::sky_level(int band) const {
  check_band(*this, band);
  return flux(band, bands[band].sky_brightness_mag) * pixel_scale_arcsec * pixel_scale_arcsec;
}

double Survey::noise_sigma(int band) const { return std::sqrt(sky_level(band)); }

at::Tensor Survey::noise_sigmas(const c10::TensorOptions& options) const {
  at::Tensor s = at::empty({n_bands()}, at::TensorOptions().dtype(at::kDouble));
  for (int b = 0; b < n_bands(); ++b) s[b] = noise_sigma(b);
  return s.to(options);
}

} // namespace demix

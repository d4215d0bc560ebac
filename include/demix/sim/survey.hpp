#pragma once
// A survey's per-band observing conditions in one table: what the simulator renders with, what the
// VAE's noise-weighted loss and the deblender's likelihood use for the per-band noise.
//
// Pixel values throughout demix's deblending code are electrons collected over the whole survey
// exposure of that band (the 10-year coadd for LSST), with the sky already subtracted. Hence:
//   flux(mag)   = 10^(-0.4 (mag - zero_point)) * exposure_time          [e-]
//   sky level   = 10^(-0.4 (sky_brightness - zero_point)) * exposure_time * pixel_scale^2
//   [e-/pixel] noise sigma = sqrt(sky level)   (sky-dominated regime of faint, blended galaxies)

#include <ATen/core/TensorBody.h>
#include <c10/core/TensorOptions.h>

#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct BandSpec {
  std::string name;                   ///< "u", "g", ...
  double effective_wavelength_nm = 0; ///< for colour plots and documentation only
  double zero_point_mag = 0;          ///< AB magnitude giving 1 e-/s
  double sky_brightness_mag = 0;      ///< AB magnitude per arcsec^2 of the dark sky
  double exposure_time_s = 0;         ///< total exposure over the survey (coadd)
  double psf_fwhm_arcsec = 0;         ///< effective PSF FWHM (atmosphere + optics)
};

struct Survey {
  std::string name;
  double pixel_scale_arcsec = 0.2; ///< arcsec per pixel
  double psf_moffat_beta = 3.5;    ///< Moffat PSF exponent shared by all bands
  std::vector<BandSpec> bands;

  /// The Rubin Observatory LSST at 10-year depth, 6 bands u g r i z y (sources in survey.cpp).
  static Survey lsst();

  int n_bands() const { return static_cast<int>(bands.size()); }
  /// Index of the band called `name`; ValueError naming the bands when there is none.
  int band_index(const std::string& name) const;
  /// Electrons collected from a source of AB magnitude `mag` in band `band` over the exposure.
  double flux(int band, double mag) const;
  /// Inverse of flux(); ValueError for a non-positive flux.
  double magnitude(int band, double flux_e) const;
  /// Sky electrons per pixel in band `band`.
  double sky_level(int band) const;
  /// Standard deviation of the per-pixel noise in band `band` (sqrt of the sky level).
  double noise_sigma(int band) const;
  /// All bands' noise sigmas.
  at::Tensor noise_sigmas(const c10::TensorOptions& options) const; // -> (n_bands)
};

} // namespace demix
#pragma GCC visibility pop

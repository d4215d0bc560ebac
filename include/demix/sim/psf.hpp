#pragma once
// Point-spread functions of a survey's bands, as the simulator convolves galaxies with them and as
// a deblender sees them in images: the PSF convolved with the square pixel, sampled at pixel
// centres.
//
// All profiles are circular. Their Fourier transforms (optical transfer functions, OTF) are
// computed to ~1e-10 once and tabulated (src/sim/detail/radial_table.hpp); images are made from the
// OTF times the pixel's sinc response, so the pixel integration is exact rather than oversampled.

#include <demix/sim/survey.hpp>

#include <ATen/core/TensorBody.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

enum class PsfModel {
  Moffat,     ///< I(r) ~ (1 + (r / alpha)^2)^-beta, beta = Survey::psf_moffat_beta, untruncated
  Kolmogorov, ///< long-exposure turbulence-limited PSF, OTF exp(-(k / k0)^(5/3)) (Fried 1966)
  None,       ///< no PSF: only the pixel response (for intrinsic, well-resolved profiles)
};

/// One band's PSF.
struct PsfSpec {
  PsfModel model = PsfModel::Moffat;
  double fwhm_arcsec = 0.8; ///< full width at half maximum of the PSF itself (before pixels), > 0
  double moffat_beta = 3.5; ///< Moffat exponent, > 1.05 (Moffat only)
};

/// The PSF of band `band` of `survey` (its FWHM, the survey's Moffat beta) with model `model`.
PsfSpec band_psf(const Survey& survey, int band, PsfModel model);

/// Moffat scale radius alpha for a FWHM: FWHM / (2 sqrt(2^(1/beta) - 1)).
double moffat_alpha(double fwhm, double beta);

/// The OTF (Fourier transform of the unit-flux PSF, real, radial, 1 at k = 0) at spatial
/// frequencies |k| given in cycles per arcsec. ValueError for a bad FWHM or beta.
at::Tensor psf_transform(const PsfSpec& psf,
                         const at::Tensor& k /* any shape, >= 0, cycles/arcsec */); // -> same

/// The PSF in an image with pixels of `pixel_scale_arcsec`: convolved with the pixel and sampled
/// at pixel centres on a size x size grid (size odd >= 3), centred on pixel (size / 2, size / 2),
/// normalised to unit sum (the part outside the grid, ~1e-4 for 41 pixels at LSST, is dropped).
at::Tensor psf_image(const PsfSpec& psf, double pixel_scale_arcsec, int64_t size,
                     const c10::TensorOptions& options); // -> (size, size)

/// psf_image for every band of `survey`.
at::Tensor survey_psf_images(const Survey& survey, PsfModel model, int64_t size,
                             const c10::TensorOptions& options); // -> (n_bands, size, size)

} // namespace demix
#pragma GCC visibility pop

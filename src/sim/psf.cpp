// PSF transforms and images. Moffat: OTF from its Mellin-Barnes integral (sim/detail/special.hpp),
// tabulated per beta. Kolmogorov: OTF exp(-(k / k0)^(5/3)) (Fried 1966, the long-exposure
// transfer function exp(-3.44 (lambda k / r0)^(5/3))), with k0 set so that the PSF, the 2D Fourier
// transform of that OTF, has the requested FWHM exactly (solved once numerically instead of the
// usual approximation FWHM ~ 0.976 lambda / r0).

#include <demix/core/errors.hpp>
#include <demix/sim/psf.hpp>

#include "sim/detail/fourier_grid.hpp"
#include "sim/detail/radial_table.hpp"
#include "sim/detail/special.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>

namespace demix {

namespace {

void check_psf(const PsfSpec& p) {
  if (p.model == PsfModel::None) return;
  if (!(p.fwhm_arcsec > 0) || !std::isfinite(p.fwhm_arcsec))
    throw ValueError("PSF FWHM must be > 0 arcsec, got " + std::to_string(p.fwhm_arcsec));
  if (p.model == PsfModel::Moffat && (!(p.moffat_beta > 1.05) || !std::isfinite(p.moffat_beta)))
    throw ValueError("Moffat beta must be > 1.05 (finite flux), got " +
                     std::to_string(p.moffat_beta));
}

/// Unit Moffat (alpha = 1) OTF table for one beta, built on first use.
const detail::RadialTable& moffat_table(double beta) {
  static std::mutex mutex;
  static std::map<double, std::unique_ptr<detail::RadialTable>> tables;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& t = tables[beta];
  if (!t)
    t = std::make_unique<detail::RadialTable>(
        [beta](double k) { return detail::moffat_unit_transform(beta, k); }, 1e-4, 1e3, 48);
  return *t;
}

/// x such that the 2D transform of exp(-|u|^(5/3)) (unit flux) is half its peak at radius x:
/// the PSF of OTF exp(-(k / k0)^(5/3)) then has FWHM = 2 x / k0.
double kolmogorov_half_radius() {
  static const double half_radius = [] {
    // The transform of exp(-u^(1/n)) with n = 3/5 is the radial profile, normalised to 1 at 0.
    auto f = [](double r) { return detail::sersic_unit_transform(0.6, r) - 0.5; };
    // Illinois (modified regula falsi) on [0.01, 2], where f(lo) > 0 > f(hi): ~10 evaluations.
    double lo = 0.01, hi = 2.0, flo = f(lo), fhi = f(hi);
    int side = 0;
    for (int i = 0; i < 100 && hi - lo > 1e-13; ++i) {
      const double x = (lo * fhi - hi * flo) / (fhi - flo), fx = f(x);
      if (fx == 0) return x;
      if ((fx > 0) == (flo > 0)) {
        lo = x, flo = fx;
        if (side == -1) fhi *= 0.5;
        side = -1;
      } else {
        hi = x, fhi = fx;
        if (side == 1) flo *= 0.5;
        side = 1;
      }
      if (std::abs(fx) < 1e-15) return x;
    }
    return 0.5 * (lo + hi);
  }();
  return half_radius;
}

} // namespace

PsfSpec band_psf(const Survey& survey, int band, PsfModel model) {
  if (band < 0 || band >= survey.n_bands())
    throw ValueError("band index " + std::to_string(band) + " out of range (survey '" +
                     survey.name + "' has " + std::to_string(survey.n_bands()) + " bands)");
  return {.model = model,
          .fwhm_arcsec = survey.bands[band].psf_fwhm_arcsec,
          .moffat_beta = survey.psf_moffat_beta};
}

double moffat_alpha(double fwhm, double beta) {
  return fwhm / (2 * std::sqrt(std::pow(2.0, 1.0 / beta) - 1));
}

at::Tensor psf_transform(const PsfSpec& psf, const at::Tensor& k) {
  check_psf(psf);
  switch (psf.model) {
  case PsfModel::None: return at::ones_like(k);
  case PsfModel::Moffat:
    return moffat_table(psf.moffat_beta)(k * moffat_alpha(psf.fwhm_arcsec, psf.moffat_beta));
  case PsfModel::Kolmogorov: {
    const double k0 = 2 * kolmogorov_half_radius() / psf.fwhm_arcsec;
    return (-(k.clamp_min(0) / k0).pow(5.0 / 3.0)).exp();
  }
  }
  return k;
}

at::Tensor psf_image(const PsfSpec& psf, double pixel_scale_arcsec, int64_t size,
                     const c10::TensorOptions& options) {
  if (size < 3 || size % 2 == 0)
    throw ValueError("PSF image size must be odd and >= 3, got " + std::to_string(size));
  if (!(pixel_scale_arcsec > 0))
    throw ValueError("pixel scale must be > 0, got " + std::to_string(pixel_scale_arcsec));
  const detail::RfftGrid grid = detail::rfft_grid(detail::odd_fft_size(2 * size + 1), options);
  const at::Tensor kernel = detail::psf_pixel_kernel(psf, pixel_scale_arcsec, grid);
  const double c = static_cast<double>(size / 2);
  const at::Tensor centre = at::full({1}, c, options);
  const at::Tensor spectrum = kernel * detail::shift_phase(grid, centre, centre)[0];
  at::Tensor image = at::fft_irfft2(spectrum, c10::IntArrayRef{grid.size, grid.size});
  image = image.slice(0, 0, size).slice(1, 0, size);
  return (image / image.sum()).contiguous();
}

at::Tensor survey_psf_images(const Survey& survey, PsfModel model, int64_t size,
                             const c10::TensorOptions& options) {
  std::vector<at::Tensor> planes;
  for (int b = 0; b < survey.n_bands(); ++b)
    planes.push_back(
        psf_image(band_psf(survey, b, model), survey.pixel_scale_arcsec, size, options));
  return at::stack(planes);
}

// ---- Fourier grid -------------------------------------------------------------------------------

namespace detail {

int64_t odd_fft_size(int64_t n) {
  for (int64_t m = std::max<int64_t>(n, 1) | 1;; m += 2) {
    int64_t r = m;
    for (int64_t p : {3, 5, 7})
      while (r % p == 0) r /= p;
    if (r == 1) return m;
  }
}

RfftGrid rfft_grid(int64_t size, const c10::TensorOptions& options) {
  const int64_t half = size / 2; // size is odd: frequencies -half..half
  RfftGrid g;
  g.size = size;
  const at::Tensor idx = at::arange(size, options);
  g.ky = at::where(idx <= half, idx, idx - size).div(size).view({size, 1});
  g.kx = at::arange(half + 1, options).div(size).view({1, half + 1});
  return g;
}

at::Tensor psf_pixel_kernel(const PsfSpec& psf, double pixel_scale_arcsec, const RfftGrid& grid) {
  const at::Tensor k = (grid.kx.square() + grid.ky.square()).sqrt() / pixel_scale_arcsec;
  return psf_transform(psf, k) * at::sinc(grid.kx) * at::sinc(grid.ky);
}

at::Tensor shift_phase(const RfftGrid& grid, const at::Tensor& x, const at::Tensor& y) {
  // exp(-2 pi i (kx x + ky y)) = exp(-2 pi i kx x) exp(-2 pi i ky y): two small tables.
  const int64_t n = x.size(0);
  const at::Tensor ax = -2 * std::numbers::pi * grid.kx.unsqueeze(0) * x.view({n, 1, 1});
  const at::Tensor ay = -2 * std::numbers::pi * grid.ky.unsqueeze(0) * y.view({n, 1, 1});
  return at::polar(at::ones_like(ax), ax) * at::polar(at::ones_like(ay), ay);
}

} // namespace detail

} // namespace demix

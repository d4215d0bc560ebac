// The LSST band table (photometric conversions against hand computations and galcheat's documented
// example) and the PSF images (unit sum, symmetry, FWHM measured on finely sampled images, Moffat
// against a brute-force pixel integration and its closed-form Fourier transform).

#include <demix/core/errors.hpp>
#include <demix/sim/psf.hpp>
#include <demix/sim/survey.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

/// FWHM of a centred, symmetric image from its central row: twice the distance from the centre
/// to where the profile crosses half the central value (linear interpolation between pixels).
double measured_fwhm_pixels(const at::Tensor& image) {
  const int64_t c = image.size(1) / 2;
  const at::Tensor row = image[c].contiguous();
  const double* p = row.data_ptr<double>();
  const double half = 0.5 * p[c];
  for (int64_t j = c; j + 1 < image.size(1); ++j)
    if (p[j] >= half && p[j + 1] < half) return 2 * ((j - c) + (p[j] - half) / (p[j] - p[j + 1]));
  return -1;
}

} // namespace

TEST(Survey, FluxAndMagnitudeAreInverse) {
  const demix::Survey s = demix::Survey::lsst();
  ASSERT_EQ(s.n_bands(), 6);
  for (int b = 0; b < 6; ++b)
    for (double mag : {18.0, 22.5, 25.3, 28.0}) {
      const double f = s.flux(b, mag);
      EXPECT_NEAR(s.magnitude(b, f), mag, 1e-12) << s.bands[b].name; // rounding only
    }
  EXPECT_THROW(s.magnitude(0, 0.0), demix::ValueError);
  EXPECT_THROW(s.flux(6, 20.0), demix::ValueError);
}

TEST(Survey, MatchesHandComputationsAndGalcheat) {
  const demix::Survey s = demix::Survey::lsst();
  const int r = s.band_index("r");
  // r band by hand from the table (zero point 28.10, sky 21.20 mag/arcsec^2, 184 visits x 30 s,
  // 0.2"/pixel): sky = 10^(0.4 (28.10 - 21.20)) x 5520 x 0.04 e-/pixel.
  const double sky = std::pow(10.0, 0.4 * (28.10 - 21.20)) * 5520 * 0.04;
  EXPECT_NEAR(s.sky_level(r) / sky, 1.0, 1e-12);
  EXPECT_NEAR(s.noise_sigma(r), std::sqrt(sky), 1e-9);
  EXPECT_NEAR(s.noise_sigma(r), 356.45, 0.01); // the number itself, for the record
  // galcheat's documented example: mag2counts(24, "LSST", "g") = 121397 electrons (truncated).
  EXPECT_EQ(static_cast<long>(s.flux(s.band_index("g"), 24.0)), 121397);
  const at::Tensor sigmas = s.noise_sigmas(kF64);
  for (int b = 0; b < 6; ++b) EXPECT_DOUBLE_EQ(sigmas[b].item<double>(), s.noise_sigma(b));
  try {
    s.band_index("Y");
    FAIL() << "no error for an unknown band";
  } catch (const demix::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("u, g, r, i, z, y"), std::string::npos) << e.what();
  }
}

TEST(Psf, UnitSumAndSymmetric) {
  for (auto model : {demix::PsfModel::Moffat, demix::PsfModel::Kolmogorov}) {
    const demix::PsfSpec spec{.model = model, .fwhm_arcsec = 0.8, .moffat_beta = 3.5};
    const at::Tensor p = demix::psf_image(spec, 0.2, 41, kF64);
    ASSERT_EQ(p.sizes(), (std::vector<int64_t>{41, 41}));
    EXPECT_NEAR(p.sum().item<double>(), 1.0, 1e-12); // normalised; float64 rounding
    // The grid is symmetric about the centre pixel: both flips and the transpose leave it
    // unchanged up to FFT rounding (~1e-16 of the peak).
    EXPECT_LT((p - p.flip({0})).abs().max().item<double>(), 1e-13);
    EXPECT_LT((p - p.flip({1})).abs().max().item<double>(), 1e-13);
    EXPECT_LT((p - p.t()).abs().max().item<double>(), 1e-13);
    EXPECT_EQ(p.argmax().item<int64_t>(), 20 * 41 + 20);
    EXPECT_GT(p.min().item<double>(), -1e-12);
  }
}

TEST(Psf, FwhmMeasuredOnFinelySampledImages) {
  // 40 pixels per FWHM: the pixel response (a box of variance 1/12 pixel^2 per axis) lowers the
  // peak and moves the half-maximum crossing by ~(1/24) |laplacian P| / |P'| ~ 5e-4 of the FWHM
  // (measured 1.2e-3 at 25 pixels per FWHM, scaling as pixels^-2), and linear interpolation of
  // the crossing errs by < 1e-4.
  for (auto model : {demix::PsfModel::Moffat, demix::PsfModel::Kolmogorov}) {
    for (double beta : {2.5, 3.5, 4.765}) {
      const demix::PsfSpec spec{.model = model, .fwhm_arcsec = 0.7, .moffat_beta = beta};
      const double pixel = 0.7 / 40;
      const at::Tensor p = demix::psf_image(spec, pixel, 161, kF64);
      EXPECT_NEAR(measured_fwhm_pixels(p) / 40, 1.0, 1e-3)
          << (model == demix::PsfModel::Moffat ? "Moffat beta " + std::to_string(beta)
                                               : std::string("Kolmogorov"));
      if (model == demix::PsfModel::Kolmogorov) break;
    }
  }
}

TEST(Psf, MoffatMatchesBruteForcePixelIntegration) {
  // LSST r band: FWHM 0.81", 0.2" pixels. Brute force: the analytic Moffat integrated over each
  // pixel by the midpoint rule on 15 x 15 sub-pixels (error ~ h^2 / 24 |laplacian| ~ 1e-4 of the
  // peak), both images normalised on the same 21 x 21 grid. The Fourier image neglects the OTF
  // beyond the Nyquist frequency (~2e-4 there): 1e-3 of the peak covers both.
  const double fwhm = 0.81, pixel = 0.2, beta = 3.5;
  const double alpha = demix::moffat_alpha(fwhm, beta) / pixel; // in pixels
  const at::Tensor fourier =
      demix::psf_image({.model = demix::PsfModel::Moffat, .fwhm_arcsec = fwhm, .moffat_beta = beta},
                       pixel, 21, kF64);
  const int sub = 15;
  at::Tensor brute = at::zeros({21, 21}, kF64);
  auto* b = brute.data_ptr<double>();
  for (int i = 0; i < 21; ++i)
    for (int j = 0; j < 21; ++j) {
      double sum = 0;
      for (int u = 0; u < sub; ++u)
        for (int v = 0; v < sub; ++v) {
          const double y = i - 10 - 0.5 + (u + 0.5) / sub, x = j - 10 - 0.5 + (v + 0.5) / sub;
          sum += std::pow(1 + (x * x + y * y) / (alpha * alpha), -beta);
        }
      b[i * 21 + j] = sum;
    }
  brute /= brute.sum();
  const double peak = brute.max().item<double>();
  EXPECT_LT((fourier - brute).abs().max().item<double>() / peak, 1e-3);
}

TEST(Psf, MoffatTransformMatchesClosedForm) {
  // FT of the unit-flux Moffat: 2^(1 - nu) / Gamma(nu) u^nu K_nu(u), u = 2 pi k alpha, nu = beta
  // - 1. Table interpolation (cubic, 32 points per decade) is good to ~1e-6 where the OTF > 1e-8.
  for (double beta : {2.0, 3.5, 4.765}) {
    const demix::PsfSpec spec{
        .model = demix::PsfModel::Moffat, .fwhm_arcsec = 0.8, .moffat_beta = beta};
    const double alpha = demix::moffat_alpha(0.8, beta), nu = beta - 1;
    const at::Tensor k = at::tensor({0.0, 0.01, 0.1, 0.3, 0.7, 1.2, 2.0}, kF64);
    const at::Tensor otf = demix::psf_transform(spec, k);
    for (int64_t i = 0; i < k.numel(); ++i) {
      const double u = 2 * std::numbers::pi * k[i].item<double>() * alpha;
      const double expected = u == 0 ? 1.0
                                     : std::pow(2.0, 1 - nu) / std::tgamma(nu) * std::pow(u, nu) *
                                           std::cyl_bessel_k(nu, u);
      EXPECT_NEAR(otf[i].item<double>(), expected, 2e-6 * expected + 1e-12)
          << "beta " << beta << " k " << k[i].item<double>();
    }
  }
}

TEST(Psf, RefusesBadParameters) {
  EXPECT_THROW(demix::psf_image({.fwhm_arcsec = 0}, 0.2, 21, kF64), demix::ValueError);
  EXPECT_THROW(demix::psf_image({.fwhm_arcsec = 0.8, .moffat_beta = 1.0}, 0.2, 21, kF64),
               demix::ValueError);
  EXPECT_THROW(demix::psf_image({.fwhm_arcsec = 0.8}, 0.2, 20, kF64), demix::ValueError);
  EXPECT_THROW(demix::psf_image({.fwhm_arcsec = 0.8}, 0.0, 21, kF64), demix::ValueError);
  const demix::Survey s = demix::Survey::lsst();
  EXPECT_THROW(demix::band_psf(s, 7, demix::PsfModel::Moffat), demix::ValueError);
  EXPECT_EQ(demix::survey_psf_images(s, demix::PsfModel::Kolmogorov, 25, kF64).sizes(),
            (std::vector<int64_t>{6, 25, 25}));
}

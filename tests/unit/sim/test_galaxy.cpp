// Sersic profiles and the galaxy renderer against analytic oracles: b_n from an independent
// integration of the incomplete gamma function, the profile transforms against the exponential's
// closed form and a direct Hankel quadrature, and rendered images against enclosed fluxes,
// half-light radii, second-moment ellipticities and centroids computed from the formulas.

#include <demix/core/errors.hpp>
#include <demix/deblend/stamps.hpp>
#include <demix/sim/galaxy.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

/// One band, fine pixels (0.01"), so that profiles of r_e = 20 pixels are well resolved.
demix::Survey fine_survey(double psf_fwhm_arcsec = 0.03) {
  demix::Survey s;
  s.name = "fine";
  s.pixel_scale_arcsec = 0.01;
  s.bands = {{"r", 620, 28, 21, 100, psf_fwhm_arcsec}};
  return s;
}

demix::Galaxies galaxy(double x, double y, double disk_hlr, double bulge_hlr, double bulge_frac,
                       double e1 = 0, double e2 = 0, int bands = 1, double flux = 1.0) {
  demix::Galaxies g;
  g.x = at::full({1}, x, kF64);
  g.y = at::full({1}, y, kF64);
  g.flux = at::full({1, bands}, flux, kF64);
  g.bulge_fraction = at::full({1, bands}, bulge_frac, kF64);
  g.disk_hlr = at::full({1}, disk_hlr, kF64);
  g.bulge_hlr = at::full({1}, bulge_hlr, kF64);
  g.e1 = at::full({1}, e1, kF64);
  g.e2 = at::full({1}, e2, kF64);
  return g;
}

demix::Context cpu64() {
  return demix::Context({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
}

/// Squared distance of every pixel centre from (cx, cy).
at::Tensor radius2(int64_t size, double cx, double cy) {
  const at::Tensor i = at::arange(size, kF64);
  return (i.view({1, size}) - cx).square() + (i.view({size, 1}) - cy).square();
}

} // namespace

TEST(Sersic, BnSatisfiesTheHalfLightDefinition) {
  // Independent check: Simpson's rule on t^(2n-1) e^-t over [0, b_n] (smooth for n >= 1/2;
  // 20000 intervals give ~1e-14) must be Gamma(2n) / 2.
  for (double n : {0.5, 1.0, 2.0, 4.0, 6.0}) {
    const double b = demix::sersic_b(n), a = 2 * n;
    const int m = 20000;
    const double h = b / m;
    auto f = [&](double t) {
      return t == 0 ? (a == 1 ? 1.0 : 0.0) : std::pow(t, a - 1) * std::exp(-t);
    };
    double sum = f(0) + f(b);
    for (int i = 1; i < m; ++i) sum += (i % 2 ? 4 : 2) * f(i * h);
    EXPECT_NEAR(sum * h / 3 / std::tgamma(a), 0.5, 1e-10) << "n = " << n;
  }
  // Literature values (Ciotti & Bertin 1999): b_1 = 1.67835, b_4 = 7.66925.
  EXPECT_NEAR(demix::sersic_b(1), 1.678347, 1e-6);
  EXPECT_NEAR(demix::sersic_b(4), 7.669249, 1e-6);
  EXPECT_NEAR(demix::sersic_enclosed_fraction(4, 1.0), 0.5, 1e-12);
  EXPECT_THROW(demix::sersic_b(0.1), demix::ValueError);
}

TEST(Sersic, TransformMatchesClosedFormAndDirectQuadrature) {
  // n = 1: 2D FT of exp(-b r) (unit flux, r_e = 1) is (1 + (2 pi kappa / b)^2)^-3/2.
  const double b1 = demix::sersic_b(1);
  for (double kappa : {0.0, 1e-3, 0.05, 0.3, 1.0, 5.0, 50.0}) {
    const double expected = std::pow(1 + std::pow(2 * std::numbers::pi * kappa / b1, 2), -1.5);
    EXPECT_NEAR(demix::sersic_transform(1, kappa) / expected, 1.0, 1e-10) << kappa;
  }
  // n = 4: direct Hankel transform, int_0^inf e^-t t^7 J0(2 pi kappa (t / b)^4) dt / Gamma(8)
  // (r = (t / b)^4 r_e), Simpson with step 2e-4 up to t = 50 (the tail beyond is < 1e-12).
  const double b4 = demix::sersic_b(4);
  for (double kappa : {0.02, 0.1, 0.5}) {
    const double h = 2e-4;
    const int m = 250000;
    auto f = [&](double t) {
      return std::exp(-t) * std::pow(t, 7) *
             std::cyl_bessel_j(0.0, 2 * std::numbers::pi * kappa * std::pow(t / b4, 4));
    };
    double sum = f(0) + f(m * h);
    for (int i = 1; i < m; ++i) sum += (i % 2 ? 4 : 2) * f(i * h);
    const double direct = sum * h / 3 / 5040.0;
    EXPECT_NEAR(demix::sersic_transform(4, kappa) / direct, 1.0, 1e-8) << kappa;
  }
}

TEST(Sersic, HalfLightRadiusOfBulgePlusDisk) {
  demix::Galaxies g = galaxy(0, 0, 0.6, 0.2, 0.0);
  g = demix::Galaxies::concat(g, galaxy(0, 0, 0.6, 0.2, 1.0));
  g = demix::Galaxies::concat(g, galaxy(0, 0, 0.6, 0.2, 0.4));
  const at::Tensor r = demix::half_light_radius(g, 0);
  EXPECT_NEAR(r[0].item<double>(), 0.6, 1e-9); // pure disk
  EXPECT_NEAR(r[1].item<double>(), 0.2, 1e-9); // pure bulge
  const double rm = r[2].item<double>();
  EXPECT_GT(rm, 0.2);
  EXPECT_LT(rm, 0.6);
  EXPECT_NEAR(0.4 * demix::sersic_enclosed_fraction(4, rm / 0.2) +
                  0.6 * demix::sersic_enclosed_fraction(1, rm / 0.6),
              0.5, 1e-9);
}

TEST(GalaxyRender, EnclosedFluxAndHalfLightRadiusWithoutPsf) {
  // r_e = 20 pixels, no PSF: the image is the pixel-integrated profile. Apertures are the pixels
  // whose centres lie within R: their boundary misplaces ~ sqrt(2 pi R) pixels' worth of half a
  // pixel's flux, < 1e-3 of the total for R >= r_e (measured <= 2.5e-4). The 301 x 301 stamp
  // (7.5 r_e in radius) holds all but Q(2, 12.6) = 5e-5 of an exponential.
  const demix::Survey s = fine_survey();
  const demix::GalaxyRenderer r(s, {.stamp_size = 301, .psf = demix::PsfModel::None}, cpu64());
  const at::Tensor r2 = radius2(301, 150, 150);
  for (double n : {1.0, 4.0}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    const at::Tensor img = r.render(galaxy(150, 150, 0.2, 0.2, n == 4 ? 1.0 : 0.0))[0][0];
    if (n == 1) EXPECT_NEAR(img.sum().item<double>(), 1.0, 1e-4);
    for (double R : {1.0, 2.0, 4.0}) {
      const double inside = img.masked_select(r2 <= std::pow(20 * R, 2)).sum().item<double>();
      EXPECT_NEAR(inside, demix::sersic_enclosed_fraction(n, R), 1e-3) << "R = " << R << " r_e";
    }
    // Half-light radius: the curve of growth over pixels sorted by radius reaches 1/2 of the
    // total flux at r_e (total = 1: analytic, not the stamp's sum, which misses the n = 4 wings).
    const auto sorted = r2.flatten().sort();
    const at::Tensor cum = img.flatten().index_select(0, std::get<1>(sorted)).cumsum(0);
    const int64_t k = (cum < 0.5).sum().item<int64_t>();
    const double rk = std::sqrt(std::get<0>(sorted)[k].item<double>());
    EXPECT_NEAR(rk / 20, 1.0, 5e-3); // pixel-centre radii are spaced by < 0.1 pixel here
  }
}

TEST(GalaxyRender, PsfConvolutionConservesFlux) {
  // A galaxy (disk r_e = 10 pixels, bulge 5 pixels) in a 201-pixel stamp, with a PSF of 3 pixels
  // FWHM: convolution only moves light, so the stamp keeps the flux of the PSF-free image except
  // what the PSF's wings carry beyond the stamp edge ~100 pixels away: (1 + (R / alpha)^2)^(1-beta)
  // ~ 3e-8 for the Moffat, but ~2e-4 for the Kolmogorov PSF, whose wings fall as r^(-11/3).
  // The exponential disk alone holds all but 1e-6 of its flux within the stamp.
  const demix::Survey s = fine_survey();
  const demix::GalaxyRenderer none(s, {.stamp_size = 201, .psf = demix::PsfModel::None}, cpu64());
  const demix::Galaxies bulgy = galaxy(100.3, 99.6, 0.1, 0.05, 0.3, 0.2, 0.1, 1, 1e4);
  const double reference = none.render(bulgy).sum().item<double>();
  for (auto [psf, tolerance] :
       {std::pair{demix::PsfModel::None, 1e-5}, std::pair{demix::PsfModel::Moffat, 1e-5},
        std::pair{demix::PsfModel::Kolmogorov, 4e-4}}) {
    const demix::GalaxyRenderer r(s, {.stamp_size = 201, .psf = psf}, cpu64());
    const at::Tensor disk = r.render(galaxy(100.3, 99.6, 0.1, 0.05, 0.0, 0.2, 0.1, 1, 1e4));
    EXPECT_NEAR(disk.sum().item<double>() / 1e4, 1.0, tolerance) << static_cast<int>(psf);
    EXPECT_NEAR(r.render(bulgy).sum().item<double>() / reference, 1.0, tolerance)
        << static_cast<int>(psf);
  }
}

TEST(GalaxyRender, EllipticityFromSecondMoments) {
  // An exponential disk, no PSF, r_e = 8 pixels. Unweighted second moments about the centroid,
  // minus the pixel box's 1/12 per axis, give chi = 2 e / (1 + |e|^2) for the shear convention.
  // Truncation at 12 r_e and aliasing beyond the Nyquist frequency (the transform is 2e-4 there)
  // leave errors ~1e-4; tolerance 1e-3.
  const demix::Survey s = fine_survey();
  const demix::GalaxyRenderer r(s, {.stamp_size = 201, .psf = demix::PsfModel::None}, cpu64());
  for (auto [e1, e2] : {std::pair{0.3, -0.2}, std::pair{-0.1, 0.45}, std::pair{0.0, 0.0}}) {
    const at::Tensor img = r.render(galaxy(100, 100, 0.08, 0.05, 0.0, e1, e2))[0][0];
    const at::Tensor i = at::arange(201, kF64);
    const at::Tensor X = i.view({1, 201}).expand({201, 201}),
                     Y = i.view({201, 1}).expand({201, 201});
    const double f = img.sum().item<double>();
    const double mx = (img * X).sum().item<double>() / f, my = (img * Y).sum().item<double>() / f;
    EXPECT_NEAR(mx, 100, 1e-6);
    EXPECT_NEAR(my, 100, 1e-6);
    const double qxx = (img * (X - mx).square()).sum().item<double>() / f - 1.0 / 12;
    const double qyy = (img * (Y - my).square()).sum().item<double>() / f - 1.0 / 12;
    const double qxy = (img * (X - mx) * (Y - my)).sum().item<double>() / f;
    const double e2sum = e1 * e1 + e2 * e2;
    EXPECT_NEAR((qxx - qyy) / (qxx + qyy), 2 * e1 / (1 + e2sum), 1e-3) << e1 << ", " << e2;
    EXPECT_NEAR(2 * qxy / (qxx + qyy), 2 * e2 / (1 + e2sum), 1e-3) << e1 << ", " << e2;
  }
}

TEST(GalaxyRender, StampCentredOnNearestPixelWithSubPixelOffset) {
  // (22.6, 30.2) -> nearest pixel (23, 30): in the 45-pixel stamp the galaxy sits at
  // (22 - 0.4, 22 + 0.2). A circular PSF keeps the centroid, but the stamp (22 pixels from the
  // centre) cuts the Moffat PSF's wings, which hold (1 + (22 / 4.3)^2)^-2.5 = 2.6e-4 of the flux,
  // asymmetrically: the measured centroid moves by ~3e-4 pixel, the flux drops by ~3e-4.
  const demix::Survey s = demix::Survey::lsst();
  const demix::GalaxyRenderer r(s, {}, cpu64());
  const at::Tensor img = r.render(galaxy(22.6, 30.2, 0.3, 0.1, 0.0, 0, 0, 6, 1e5));
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{1, 6, 45, 45}));
  const at::Tensor i = at::arange(45, kF64);
  for (int b = 0; b < 6; ++b) {
    const at::Tensor p = img[0][b];
    const double f = p.sum().item<double>();
    EXPECT_NEAR((p * i.view({1, 45})).sum().item<double>() / f, 21.6, 1e-3) << b;
    EXPECT_NEAR((p * i.view({45, 1})).sum().item<double>() / f, 22.2, 1e-3) << b;
    EXPECT_NEAR(f / 1e5, 1.0, 6e-4);
  }
}

TEST(GalaxyRender, Float32StampsUseTheFloat64NearestPixel) {
  // x = 22.5 - 1e-9 has nearest pixel 22 (deblend/stamps.hpp's nearest_pixel, the pixel on which
  // the simulator places the stamp) but is 22.5 in float32, whose own rounding would pick 23: the
  // galaxy must sit half a pixel right of the stamp's centre pixel, not half a pixel left. The
  // float32 FFT moves the centroid by ~1e-6 pixel; the PSF's cut wings by ~3e-4 (as above).
  const demix::Survey s = demix::Survey::lsst();
  const double x = 22.5 - 1e-9;
  ASSERT_EQ(static_cast<float>(x), 22.5f);
  ASSERT_EQ(demix::nearest_pixel(x), 22);
  const demix::Context f32({.device = demix::DeviceKind::Cpu});
  const at::Tensor img =
      demix::GalaxyRenderer(s, {}, f32).render(galaxy(x, 22, 0.3, 0.1, 0.0, 0, 0, 6, 1e5))[0][2];
  const at::Tensor p = img.to(at::kDouble);
  const at::Tensor i = at::arange(45, kF64);
  EXPECT_NEAR((p * i.view({1, 45})).sum().item<double>() / p.sum().item<double>(), 22.5, 1e-3);
}

TEST(GalaxyRender, PeriodicWrapIsBelowItsDocumentedBound) {
  // The FFT grid is periodic (L = 105 for S = 45): compare with a 135-pixel stamp (L = 275),
  // cropped. galaxy.hpp documents the wrap for de Vaucouleurs bulges of hlr 1": <= 3e-6 of the
  // flux per pixel and <= 0.5% of it per stamp (measured 2.0e-6 and 0.34%).
  const demix::Survey s = demix::Survey::lsst();
  const demix::GalaxyRenderer small(s, {.stamp_size = 45}, cpu64());
  const demix::GalaxyRenderer large(s, {.stamp_size = 135}, cpu64());
  const at::Tensor a = small.render(galaxy(22, 22, 1.0, 1.0, 1.0, 0, 0, 6))[0];
  const at::Tensor b =
      large.render(galaxy(67, 67, 1.0, 1.0, 1.0, 0, 0, 6))[0].slice(1, 45, 90).slice(2, 45, 90);
  EXPECT_LT((a - b).abs().max().item<double>(), 3e-6);
  EXPECT_LT((a - b).sum({1, 2}).abs().max().item<double>(), 5e-3);
}

TEST(GalaxyRender, Float32AgreesWithFloat64AndBatchesDoNotMatter) {
  const demix::Survey s = demix::Survey::lsst();
  demix::Galaxies g = galaxy(22, 22, 0.5, 0.2, 0.3, 0.2, -0.3, 6, 1e5);
  for (int i = 0; i < 4; ++i)
    g = demix::Galaxies::concat(g, galaxy(22.3 - 0.2 * i, 21.8, 0.3 + 0.1 * i, 0.1, 0.1 * i,
                                          0.05 * i, 0.1, 6, 1e4 * (i + 1)));
  const at::Tensor ref = demix::GalaxyRenderer(s, {.batch_size = 5}, cpu64()).render(g);
  const at::Tensor batched = demix::GalaxyRenderer(s, {.batch_size = 2}, cpu64()).render(g);
  EXPECT_LT((ref - batched).abs().max().item<double>(), 1e-9); // same arithmetic, reordered
  const demix::Context f32({.device = demix::DeviceKind::Cpu});
  const at::Tensor single = demix::GalaxyRenderer(s, {}, f32).render(g);
  EXPECT_EQ(single.scalar_type(), at::kFloat);
  // float32 FFTs: ~1e-6 of the peak.
  EXPECT_LT((single.to(at::kDouble) - ref).abs().max().item<double>(),
            1e-5 * ref.abs().max().item<double>());
}

TEST(GalaxyRender, RefusesBadGalaxies) {
  const demix::Survey s = demix::Survey::lsst();
  const demix::GalaxyRenderer r(s, {}, cpu64());
  EXPECT_THROW(r.render(galaxy(22, 22, 0.5, 0.2, 0.3, 0.8, 0.8, 6)), demix::ValueError); // |e| >= 1
  EXPECT_THROW(r.render(galaxy(22, 22, 0.0, 0.2, 0.3, 0, 0, 6)), demix::ValueError);     // hlr 0
  EXPECT_THROW(r.render(galaxy(22, 22, 0.5, 0.2, 1.3, 0, 0, 6)), demix::ValueError);     // B/T > 1
  EXPECT_THROW(r.render(galaxy(22, 22, 0.5, 0.2, 0.3, 0, 0, 5)), demix::ShapeError);     // 5 bands
  EXPECT_THROW(demix::GalaxyRenderer(s, {.stamp_size = 44}, cpu64()), demix::ValueError);
  EXPECT_EQ(r.render(demix::Galaxies::concat({}, galaxy(1, 1, 0.3, 0.1, 0.5, 0, 0, 6))
                         .select(at::zeros({0}, at::kLong)))
                .sizes(),
            (std::vector<int64_t>{0, 6, 45, 45}));
}

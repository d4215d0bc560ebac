// Deblending metrics against analytic values and brute force: aperture fluxes of a constant image
// (the disk's and the ellipse's area), of a Gaussian (its enclosed flux) and of rendered elliptical
// disks (their half-light ellipse), elliptical apertures against a pixel loop and their
// symmetries, residual summaries of known samples, colour errors, SSIM against a pixel-loop
// implementation of Wang et al. (2004), cosine similarities of constructed vectors, ellipticities
// of analytic elliptical Gaussians, and the greedy matching of detections.

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/deblend/metrics.hpp>
#include <demix/sim/galaxy.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <numbers>
#include <utility>
#include <vector>

namespace {

constexpr double pi = std::numbers::pi;

TEST(DeblendMetrics, ApertureFluxOfAConstantImageIsTheDiskArea) {
  const at::Tensor ones = at::ones({4, 1, 40, 40}, at::kDouble);
  const at::Tensor centres =
      at::tensor({20.0, 20.0, 20.3, 19.6, 10.5, 25.25, 19.0, 21.0}, at::kDouble).view({4, 2});
  const at::Tensor radius = at::tensor({3.0, 5.5, 8.0, 12.2}, at::kDouble);
  for (const int64_t s : {5, 25}) {
    const at::Tensor f = demix::aperture_flux(ones, centres, radius, s).view({4});
    const at::Tensor rel = (f / (pi * radius.square()) - 1).abs();
    std::cout << "[ measured ] aperture area error, subsample " << s << ": "
              << rel.max().item<double>() << "\n";
    // Each pixel crossed by the circle gets its area fraction from s^2 points, wrong by up to
    // ~1/s of the pixel; the errors of the ~2 pi r crossed pixels partly cancel: measured 0.3%
    // (s = 5) and 0.04% (s = 25) at r = 3, less for larger disks.
    EXPECT_LT(rel.max().item<double>(), s == 5 ? 0.01 : 0.001);
  }
  // Per-band radii.
  const at::Tensor two = at::ones({1, 2, 40, 40}, at::kDouble);
  const at::Tensor f2 = demix::aperture_flux(two, centres.narrow(0, 0, 1),
                                             at::tensor({4.0, 9.0}, at::kDouble).view({1, 2}), 25);
  EXPECT_NEAR(f2[0][0].item<double>(), pi * 16, 0.001 * pi * 16);
  EXPECT_NEAR(f2[0][1].item<double>(), pi * 81, 0.001 * pi * 81);
}

TEST(DeblendMetrics, ApertureFluxOfAGaussianIsItsEnclosedFlux) {
  const double sigma = 2.5, F = 1e4;
  const at::Tensor x = at::arange(45, at::kDouble).view({1, 45}) - 22.3;
  const at::Tensor y = at::arange(45, at::kDouble).view({45, 1}) - 21.8;
  const at::Tensor g =
      F / (2 * pi * sigma * sigma) * at::exp(-0.5 * (x.square() + y.square()) / (sigma * sigma));
  const at::Tensor c = at::tensor({22.3, 21.8}, at::kDouble).view({1, 2});
  for (const double r : {2.5, 5.0, 10.0}) {
    const double f =
        demix::aperture_flux(g.view({1, 1, 45, 45}), c, at::tensor({r}, at::kDouble), 25)
            .item<double>();
    // The enclosed flux, plus the pixelisation's second-order term: a pixel's centre value is its
    // mean minus lap(I) / 24, and an edge pixel's share of its mean misses the profile's slope
    // across it by 1/12 of the outward derivative; together + flux_through_edge / 24, with
    // flux_through_edge = 2 pi r I'(r) = -(r^2 F / sigma^4) exp(-r^2 / (2 sigma^2)).
    const double g = std::exp(-r * r / (2 * sigma * sigma));
    const double expected = F * (1 - g) - r * r * F / std::pow(sigma, 4) * g / 24;
    // Next orders (fourth derivatives, the circle's curvature): measured < 0.1%.
    EXPECT_NEAR(f, expected, 0.001 * F) << "r = " << r;
    std::cout << "[ measured ] Gaussian aperture r = " << r << ": " << f << " against " << expected
              << " (enclosed flux without pixelisation " << F * (1 - g) << ")\n";
  }
}

/// Flux of image (H, W) inside the ellipse u^2 / a^2 + v^2 / b^2 <= 1 by its definition, pixel by
/// pixel: each pixel weighted by the share of its m x m evenly spread points inside. Also returns
/// the sum of |pixel| over the pixels that the ellipse's edge crosses (share strictly in (0, 1)).
std::pair<double, at::Tensor> loop_ellipse(const at::Tensor& image, double x0, double y0, double a,
                                           double b, double theta, int m) {
  const int64_t H = image.size(0), W = image.size(1);
  auto I = image.accessor<double, 2>();
  at::Tensor share = at::zeros({H, W}, at::kDouble);
  auto S = share.accessor<double, 2>();
  const double c = std::cos(theta), s = std::sin(theta);
  double flux = 0;
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j) {
      int in = 0;
      for (int p = 0; p < m; ++p)
        for (int q = 0; q < m; ++q) {
          const double x = j - 0.5 + (q + 0.5) / m - x0, y = i - 0.5 + (p + 0.5) / m - y0;
          const double u = x * c + y * s, v = -x * s + y * c;
          in += u * u / (a * a) + v * v / (b * b) <= 1;
        }
      S[i][j] = static_cast<double>(in) / (m * m);
      flux += S[i][j] * I[i][j];
    }
  return {flux, share};
}

/// Random images and per-band ellipses (some with a < b) shared by the elliptical tests.
struct EllipseCase {
  at::Tensor images, centres, a, b, theta; // (3, 2, 36, 40), (3, 2), (3, 2) x 3
  EllipseCase() {
    at::manual_seed(11);
    images = 2 * at::rand({3, 2, 36, 40}, at::kDouble) - 1;
    centres = at::tensor({17.37, 19.81, 21.13, 15.52, 12.64, 22.09}, at::kDouble).view({3, 2});
    a = at::tensor({6.31, 9.17, 11.43, 3.27, 2.71, 7.93}, at::kDouble).view({3, 2});
    b = at::tensor({2.87, 4.41, 3.19, 3.27, 5.83, 2.53}, at::kDouble).view({3, 2});
    theta = at::tensor({0.0, 0.731, -1.234, 2.9, 1.5708, 4.41}, at::kDouble).view({3, 2});
  }
  demix::EllipticalAperture aperture() const { return {a, b, theta}; }
};

TEST(DeblendMetrics, EllipticalApertureMatchesThePixelLoop) {
  const EllipseCase e;
  for (const int64_t s : {5, 25}) {
    const at::Tensor f = demix::aperture_flux(e.images, e.centres, e.aperture(), s);
    ASSERT_EQ(f.sizes(), (at::IntArrayRef{3, 2}));
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t k = 0; k < 2; ++k) {
        SCOPED_TRACE("galaxy " + std::to_string(n) + " band " + std::to_string(k) + " s " +
                     std::to_string(s));
        const at::Tensor img = e.images[n][k];
        const double x0 = e.centres[n][0].item<double>(), y0 = e.centres[n][1].item<double>();
        const double a = e.a[n][k].item<double>(), b = e.b[n][k].item<double>(),
                     th = e.theta[n][k].item<double>();
        const double got = f[n][k].item<double>();
        // Same points, another formula: only a point within rounding (~1e-15 pixel) of the edge
        // could change side, and none is for these random values; the sums differ by ~1e-14.
        const auto [same, share_s] = loop_ellipse(img, x0, y0, a, b, th, static_cast<int>(s));
        EXPECT_NEAR(got, same, 1e-10);
        // Against 60 x 60 points: each row of points in a pixel meets the ellipse in one interval
        // (convex), whose two ends its points place to within 1/2 of their spacing, so a crossed
        // pixel's share is within 1/s of its area (and the reference's within 1/60): the bound
        // sum |pixel| (1/s + 1/60) over the pixels either sampling sees crossed.
        const auto [fine, share_m] = loop_ellipse(img, x0, y0, a, b, th, 60);
        const at::Tensor crossed =
            ((share_s > 0) & (share_s < 1)) | ((share_m > 0) & (share_m < 1));
        const double bound = img.abs().masked_select(crossed).sum().item<double>() *
                             (1.0 / static_cast<double>(s) + 1.0 / 60);
        EXPECT_NEAR(got, fine, bound);
        std::cout << "[ measured ] ellipse " << n << "." << k << " s = " << s << ": |error| "
                  << std::abs(got - fine) << " <= bound " << bound << "\n";
      }
  }
}

TEST(DeblendMetrics, EllipticalApertureSymmetries) {
  const EllipseCase e;
  const at::Tensor f = demix::aperture_flux(e.images, e.centres, e.aperture());
  // a == b: the circular aperture, bit for bit, whatever theta.
  EXPECT_TRUE(at::equal(demix::aperture_flux(e.images, e.centres, {e.a, e.a, e.theta}),
                        demix::aperture_flux(e.images, e.centres, e.a)));
  EXPECT_TRUE(at::equal(demix::aperture_flux(e.images, e.centres, {e.b, e.b, 3 * e.theta + 1}, 25),
                        demix::aperture_flux(e.images, e.centres, e.b, 25)));
  // theta + pi and (b, a, theta + pi/2) are the same ellipse: cos and sin change by rounding
  // (~1e-16), which moves no point across the edge here; the flux sums are then identical up to
  // rounding, 1e-12 of the ~100 pixels summed.
  const auto near = [](const at::Tensor& x, const at::Tensor& y) {
    return at::allclose(x, y, 0, 1e-12 * 100);
  };
  EXPECT_TRUE(near(demix::aperture_flux(e.images, e.centres, {e.a, e.b, e.theta + pi}), f));
  EXPECT_TRUE(near(demix::aperture_flux(e.images, e.centres, {e.a, e.b, e.theta - 3 * pi}), f));
  EXPECT_TRUE(near(demix::aperture_flux(e.images, e.centres, {e.b, e.a, e.theta + pi / 2}), f));
  // ... but not another ellipse (the 5 entries with a != b).
  const at::Tensor turned = demix::aperture_flux(e.images, e.centres, {e.a, e.b, e.theta + 0.5});
  EXPECT_EQ(((turned - f).abs() > 1e-6).sum().item<int64_t>(), 5);
  // One aperture for all (1), one per galaxy (N): the same as expanded to (N, B).
  const at::Tensor one = at::tensor({5.3}, at::kDouble),
                   th = at::tensor({0.4, 1.1, 2.0}, at::kDouble);
  EXPECT_TRUE(at::equal(demix::aperture_flux(e.images, e.centres, {one, 0.5 * one, th}),
                        demix::aperture_flux(e.images, e.centres,
                                             {one.expand({3, 2}), 0.5 * one.expand({3, 2}),
                                              th.view({3, 1}).expand({3, 2})})));
  // Bad apertures.
  EXPECT_THROW(demix::aperture_flux(e.images, e.centres, {e.a, e.b, e.theta.narrow(0, 0, 2)}),
               demix::ShapeError);
  EXPECT_THROW(demix::aperture_flux(e.images, e.centres, {e.a, e.b.transpose(0, 1), e.theta}),
               demix::ShapeError);
  EXPECT_THROW(demix::aperture_flux(e.images, e.centres, {e.a, 0 * e.b, e.theta}),
               demix::ValueError);
  EXPECT_THROW(demix::aperture_flux(e.images, e.centres, {e.a, -e.b, e.theta}), demix::ValueError);
  EXPECT_THROW(demix::aperture_flux(e.images, e.centres, {e.a * NAN, e.b, e.theta}),
               demix::ValueError);
  EXPECT_THROW(demix::aperture_flux(e.images, e.centres, demix::EllipticalAperture{e.a, e.b, {}}),
               demix::ValueError);
}

TEST(DeblendMetrics, EllipticalApertureOfAConstantImageIsTheEllipseArea) {
  const EllipseCase e;
  const at::Tensor ones = at::ones_like(e.images);
  const at::Tensor area = pi * e.a * e.b;
  for (const int64_t s : {5, 25}) {
    const at::Tensor rel =
        (demix::aperture_flux(ones, e.centres, e.aperture(), s) / area - 1).abs();
    std::cout << "[ measured ] ellipse area error, subsample " << s << ": "
              << rel.max().item<double>() << "\n";
    // Each row of points (spacing 1/s, height 1/s) places each of its two crossings of the edge
    // to within 1/(2 s), in effect uniformly: for 2 y s rows (y the half-height) the area errs
    // by std sqrt(y / (3 s^3)), 0.09 pixel^2 (s = 5) and 0.008 (s = 25) for the smallest ellipse
    // here (y = 3.3, area 34): 0.3% and 0.025%. Tolerances 2% and 0.2%, ~7 sigma (rows near the
    // top and bottom tangents err alike); measured 0.5% and 0.04%.
    EXPECT_LT(rel.max().item<double>(), s == 5 ? 0.02 : 0.002);
  }
}

TEST(DeblendMetrics, EllipticalApertureFollowsTheRenderedGalaxy) {
  // Exponential disks of r_e = 8 pixels and |e| = 0.3 drawn by the simulator's renderer (no PSF,
  // fine pixels) at major-axis angles theta0, with the aperture built from (e1, e2) as
  // bench_deblend builds it: q = (1 - |e|) / (1 + |e|), theta = atan2(e2, e1) / 2, semi-axes
  // r_e / sqrt(q) and r_e sqrt(q) (the shear conserves area). That half-light ellipse holds half
  // the flux; turned by angle d it holds less, most of all at d = 90 degrees.
  demix::Survey survey;
  survey.name = "fine";
  survey.pixel_scale_arcsec = 0.01;
  survey.bands = {{"r", 620, 28, 21, 100, 0.03}};
  const demix::GalaxyRenderer renderer(
      survey, {.stamp_size = 71, .psf = demix::PsfModel::None},
      demix::Context({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64}));
  const std::vector<double> theta0 = {0.0, 0.5, 2.0}; // radians; 2.0 is 115 degrees
  const int64_t G = 3, D = 12;                        // turns d = 0, 15, ..., 165 degrees
  demix::Galaxies g;
  g.x = at::full({G}, 35.2, at::kDouble), g.y = at::full({G}, 34.9, at::kDouble);
  g.flux = at::ones({G, 1}, at::kDouble), g.bulge_fraction = at::zeros({G, 1}, at::kDouble);
  g.disk_hlr = at::full({G}, 0.08, at::kDouble), g.bulge_hlr = at::full({G}, 0.08, at::kDouble);
  g.e1 = 0.3 * at::cos(2 * at::tensor(theta0, at::kDouble));
  g.e2 = 0.3 * at::sin(2 * at::tensor(theta0, at::kDouble));
  const at::Tensor stamps = renderer.render(g); // (G, 1, 71, 71), galaxy at (35.2, 34.9)
  const at::Tensor e = at::sqrt(g.e1.square() + g.e2.square());
  const at::Tensor q = (1 - e) / (1 + e), theta = 0.5 * at::atan2(g.e2, g.e1);
  const at::Tensor d = at::arange(D, at::kDouble) * (pi / D);
  const auto rows = [&](const at::Tensor& t) { return t.repeat_interleave(D, 0); }; // (G D, ...)
  const at::Tensor f =
      demix::aperture_flux(
          rows(stamps), at::tensor({35.2, 34.9}, at::kDouble).view({1, 2}).expand({G * D, 2}),
          {rows(8 / q.sqrt()), rows(8 * q.sqrt()), rows(theta) + d.repeat({G})}, 11)
          .view({G, D});
  // Half the flux, less the pixelisation's second-order term (edge flux / 24 as for the Gaussian
  // above: -7e-4 here), aliasing of the disk's cusp (its transform is 3e-4 at the pixel Nyquist
  // frequency) and the 11 x 11 sampling: measured 0.4985 to 0.4987, tolerance 3e-3.
  std::cout << "[ measured ] rendered disks' half-light ellipse holds " << f.select(1, 0) << "\n";
  EXPECT_TRUE(at::allclose(f.select(1, 0), at::full({G}, 0.5, at::kDouble), 0, 3e-3));
  for (int64_t k = 0; k < G; ++k) {
    SCOPED_TRACE("theta0 = " + std::to_string(theta0[k]));
    EXPECT_EQ(f[k].argmax().item<int64_t>(), 0);                          // aligned holds most
    EXPECT_LT(f[k][D / 2].item<double>(), f[k][0].item<double>() - 0.05); // crossed: much less
  }
}

TEST(DeblendMetrics, ResidualSummariesOfKnownSamples) {
  std::vector<double> a, b;
  for (int k = 1; k <= 100; ++k) a.push_back(k / 100.0), b.push_back(-k / 100.0);
  for (int k = 0; k < 5; ++k) a.push_back(NAN), b.push_back(INFINITY); // left out
  const at::Tensor r = at::stack({at::tensor(a, at::kDouble), at::tensor(b, at::kDouble)}, 1);
  const demix::ResidualSummary s = demix::summarize_residuals(r);
  EXPECT_TRUE(at::equal(s.count, at::tensor({100, 100}, at::kLong)));
  // numpy's linear percentiles of 0.01 .. 1.00: position q (n - 1); 16% -> 0.1684, 84% -> 0.8416.
  EXPECT_NEAR(s.mean_abs[0].item<double>(), 0.505, 1e-12);
  EXPECT_NEAR(s.mean_abs[1].item<double>(), 0.505, 1e-12);
  EXPECT_NEAR(s.median[0].item<double>(), 0.505, 1e-12);
  EXPECT_NEAR(s.median[1].item<double>(), -0.505, 1e-12);
  EXPECT_NEAR(s.spread68[0].item<double>(), (0.8416 - 0.1684) / 2, 1e-12);
  EXPECT_NEAR(s.spread68[1].item<double>(), (0.8416 - 0.1684) / 2, 1e-12);
  const at::Tensor rel =
      demix::relative_residual(at::tensor({1.1, 2.0, 3.0}), at::tensor({1.0, 0.0, 4.0}));
  EXPECT_NEAR(rel[0].item<double>(), 0.1, 1e-6);
  EXPECT_TRUE(std::isnan(rel[1].item<double>()));
  EXPECT_NEAR(rel[2].item<double>(), -0.25, 1e-6);
}

TEST(DeblendMetrics, ColourErrors) {
  const at::Tensor truth =
      at::tensor({100.0, 200.0, 300.0, 50.0, 60.0, 70.0}, at::kDouble).view({2, 3});
  const at::Tensor same = demix::colour_error(3.0 * truth, truth, 1, 2); // grey factor: colour kept
  EXPECT_LT(same.abs().max().item<double>(), 1e-12);
  at::Tensor m = truth.clone();
  m[0][1] *= 2; // g twice brighter: g - r smaller by 2.5 log10 2
  m[1][2] = -1; // a negative flux has no magnitude
  const at::Tensor e = demix::colour_error(m, truth, 1, 2);
  EXPECT_NEAR(e[0].item<double>(), -2.5 * std::log10(2.0), 1e-12);
  EXPECT_TRUE(std::isnan(e[1].item<double>()));
  EXPECT_THROW(demix::colour_error(m, truth, 1, 3), demix::ValueError);
}

/// SSIM of two images by the definition, pixel by pixel: Gaussian-weighted local means,
/// variances and covariance (population), averaged over the centres whose window fits.
double loop_ssim(const at::Tensor& p_in, const at::Tensor& t_in, bool normalise) {
  at::Tensor p = p_in, t = t_in;
  double L = 1;
  if (normalise)
    p = p / p.max(), t = t / t.max();
  else
    L = 2.5;
  const int64_t H = p.size(0), W = p.size(1), r = 5;
  std::vector<double> w(11);
  double tot = 0;
  for (int k = 0; k < 11; ++k) tot += w[k] = std::exp(-0.5 * (k - 5) * (k - 5) / 2.25);
  auto P = p.accessor<double, 2>();
  auto T = t.accessor<double, 2>();
  const double c1 = std::pow(0.01 * L, 2), c2 = std::pow(0.03 * L, 2);
  double sum = 0;
  int count = 0;
  for (int64_t i = r; i < H - r; ++i)
    for (int64_t j = r; j < W - r; ++j) {
      double mp = 0, mt = 0, pp = 0, tt = 0, pt = 0;
      for (int a = -5; a <= 5; ++a)
        for (int b = -5; b <= 5; ++b) {
          const double k = w[a + 5] * w[b + 5] / (tot * tot);
          const double x = P[i + a][j + b], y = T[i + a][j + b];
          mp += k * x, mt += k * y, pp += k * x * x, tt += k * y * y, pt += k * x * y;
        }
      const double vp = pp - mp * mp, vt = tt - mt * mt, cov = pt - mp * mt;
      sum += (2 * mp * mt + c1) * (2 * cov + c2) / ((mp * mp + mt * mt + c1) * (vp + vt + c2));
      ++count;
    }
  return sum / count;
}

TEST(DeblendMetrics, SsimMatchesThePixelLoopDefinition) {
  at::manual_seed(7);
  const at::Tensor p = at::rand({2, 3, 16, 18}, at::kDouble);
  const at::Tensor t = 0.6 * p + 0.4 * at::rand({2, 3, 16, 18}, at::kDouble);
  const at::Tensor fast = demix::ssim(p, t);
  demix::SsimOptions raw;
  raw.normalise_by_max = false;
  raw.data_range = 2.5;
  const at::Tensor fast_raw = demix::ssim(p, t, raw);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t b = 0; b < 3; ++b) {
      // Same sums in another order: float64 rounding only.
      EXPECT_NEAR(fast[n][b].item<double>(), loop_ssim(p[n][b], t[n][b], true), 1e-12);
      EXPECT_NEAR(fast_raw[n][b].item<double>(), loop_ssim(p[n][b], t[n][b], false), 1e-12);
    }
  EXPECT_LT((demix::ssim(p, p) - 1).abs().max().item<double>(), 1e-14);
  EXPECT_LT((demix::ssim(p, 7.0 * p) - 1).abs().max().item<double>(), 1e-14); // max-normalised
  EXPECT_TRUE(at::allclose(demix::ssim(t, p), fast, 0, 1e-14));               // symmetric
  EXPECT_LT(fast.max().item<double>(), 1.0);
  const at::Tensor s0 = demix::ssim(at::zeros_like(p), p);
  EXPECT_EQ(s0.abs().max().item<double>(), 0.0);                                // nothing predicted
  EXPECT_TRUE(at::isnan(demix::ssim(p, at::zeros_like(p))).all().item<bool>()); // no truth
  EXPECT_THROW(demix::ssim(p.narrow(2, 0, 9), t.narrow(2, 0, 9)), demix::ShapeError);
}

TEST(DeblendMetrics, CosineSimilarityOfConstructedImages) {
  at::manual_seed(8);
  const at::Tensor t = at::randn({1, 1, 10, 10}, at::kDouble);
  at::Tensor u = at::randn_like(t);
  u = u - (u * t).sum() / (t * t).sum() * t; // orthogonal to t
  u = u * (std::sqrt(3.0) * t.norm() / u.norm());
  const at::Tensor p = at::cat({t, -2 * t, u, t + u}, 1);
  const at::Tensor tt = t.expand({1, 4, 10, 10});
  const at::Tensor c = demix::cosine_similarity(p, tt);
  // 1 (same), -1 (opposite), 0 (orthogonal), 1/2 (60 degrees: |u| = sqrt(3) |t|).
  const at::Tensor expected = at::tensor({1.0, -1.0, 0.0, 0.5}, at::kDouble).view({1, 4});
  EXPECT_TRUE(at::allclose(c, expected, 0, 1e-12));
  EXPECT_EQ(demix::cosine_similarity(at::zeros_like(t), t).item<double>(), 0.0);
  EXPECT_TRUE(std::isnan(demix::cosine_similarity(t, at::zeros_like(t)).item<double>()));
}

/// Elliptical Gaussian of covariance s^2 [[1 + e1, e2], [e2, 1 - e1]] centred at (x0, y0).
at::Tensor elliptical(int64_t n, double x0, double y0, double s, double e1, double e2) {
  const at::Tensor x = at::arange(n, at::kDouble).view({1, n}) - x0;
  const at::Tensor y = at::arange(n, at::kDouble).view({n, 1}) - y0;
  const double det = s * s * s * s * (1 - e1 * e1 - e2 * e2);
  const at::Tensor q =
      (s * s * ((1 - e1) * x.square() - 2 * e2 * x * y + (1 + e1) * y.square())) / det;
  return at::exp(-0.5 * q) * 1e3 / (2 * pi * std::sqrt(det));
}

TEST(DeblendMetrics, EllipticityOfAnalyticEllipticalGaussians) {
  const at::Tensor imgs =
      at::stack({elliptical(41, 20.4, 19.7, 3.0, 0.3, -0.2),
                 elliptical(41, 20.0, 20.0, 2.0, -0.5, 0.1), at::zeros({41, 41}, at::kDouble)});
  const demix::Shapes a = demix::measure_shapes(imgs);
  demix::ShapeOptions uo;
  uo.weight = demix::MomentWeight::Unweighted;
  const demix::Shapes u = demix::measure_shapes(imgs, uo);
  const at::Tensor e = at::tensor({0.3, -0.2, -0.5, 0.1}, at::kDouble).view({2, 2});
  // Pixel sampling of a Gaussian of width >= 1.4 pixels changes its moments by < 1e-12 (aliasing
  // ~exp(-2 pi^2 width^2)); the image edge 5.7 widths away truncates ~1e-7; 40 adaptive
  // iterations converge by 2^-40.
  EXPECT_TRUE(at::allclose(a.ellipticity.narrow(0, 0, 2), e, 0, 1e-6)) << a.ellipticity;
  EXPECT_TRUE(at::allclose(u.ellipticity.narrow(0, 0, 2), e, 0, 1e-5)) << u.ellipticity;
  EXPECT_TRUE(at::allclose(a.centroid[0], at::tensor({20.4, 19.7}, at::kDouble), 0, 1e-6));
  EXPECT_NEAR(a.moments[0][0].item<double>(), 9 * 1.3, 1e-5); // Q_xx = s^2 (1 + e1)
  EXPECT_TRUE(a.valid[0].item<bool>() && a.valid[1].item<bool>());
  EXPECT_FALSE(a.valid[2].item<bool>());
  EXPECT_TRUE(std::isnan(a.ellipticity[2][0].item<double>()));
}

TEST(DeblendMetrics, GreedyMatchingOfDetections) {
  const at::Tensor truth = at::tensor({0.0, 0.0, 10.0, 0.0, 20.0, 0.0}, at::kDouble).view({3, 2});
  const at::Tensor det =
      at::tensor({0.5, 0.0, 9.0, 0.0, 50.0, 50.0, 10.8, 0.0}, at::kDouble).view({4, 2});
  const demix::Matching m = demix::match_positions(truth, det, 2.0);
  // Pairs within 2: (t0, d0) 0.5, (t1, d3) 0.8, (t1, d1) 1.0 -- the last loses to the closer one.
  EXPECT_TRUE(at::equal(m.truth_to_detection, at::tensor({0, 3, -1}, at::kLong)));
  EXPECT_TRUE(at::equal(m.detection_to_truth, at::tensor({0, -1, -1, 1}, at::kLong)));
  EXPECT_EQ(m.matched, 2);
  EXPECT_EQ(m.spurious, 2);
  EXPECT_EQ(m.missed, 1);
}

} // namespace

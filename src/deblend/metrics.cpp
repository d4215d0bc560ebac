#include <demix/core/errors.hpp>
#include <demix/deblend/metrics.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

namespace demix {

using detail::sizes_text;

namespace {

void require_images(const at::Tensor& t, const char* what) {
  if (t.dim() != 4)
    throw ShapeError(std::string(what) + ": images must be (N, B, H, W), got " + sizes_text(t));
  if (!at::isFloatingType(t.scalar_type()))
    throw ValueError(std::string(what) + ": images must be real floating point, got " +
                     std::string(c10::toString(t.scalar_type())));
}

void require_same(const at::Tensor& a, const at::Tensor& b, const char* what) {
  if (a.sizes() != b.sizes())
    throw ShapeError(std::string(what) + ": predicted " + sizes_text(a) + " and true " +
                     sizes_text(b) + " images differ in shape");
}

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

} // namespace

// ---- Photometry -----------------------------------------------------------------------------

namespace {

/// An aperture parameter of shape (1), (N) or (N, B) as (N, 1) or (N, B).
at::Tensor per_galaxy(const at::Tensor& p, int64_t N, int64_t B, const char* name) {
  if (p.dim() == 1 && (p.size(0) == 1 || p.size(0) == N)) return p.reshape({-1, 1}).expand({N, 1});
  if (p.dim() == 2 && p.size(0) == N && p.size(1) == B) return p;
  throw ShapeError(std::string("aperture_flux: ") + name + " must be (1), (" + std::to_string(N) +
                   ") or (" + std::to_string(N) + ", " + std::to_string(B) + "), got " +
                   sizes_text(p));
}

/// Flux inside the ellipses d^2 + (a^2 / b^2 - 1) v^2 <= a^2 (d the distance from the centre, v
/// the coordinate along b's axis): u^2 / a^2 + v^2 / b^2 <= 1 written so that a == b gives bitwise
/// the circle's d^2 <= a^2. a, b: (N, R) alike, R = 1 or B; theta: (N, 1) or (N, R). circles: the
/// caller knows that a == b everywhere, and d^2 <= a^2 is evaluated alone (3x faster).
at::Tensor ellipse_flux(const at::Tensor& images, const at::Tensor& centres, const at::Tensor& a,
                        const at::Tensor& b, const at::Tensor& theta, int64_t subsample,
                        bool circles) {
  const int64_t N = images.size(0), B = images.size(1), H = images.size(2), W = images.size(3);
  if (centres.dim() != 2 || centres.size(0) != N || centres.size(1) != 2)
    throw ShapeError("aperture_flux: centres must be (" + std::to_string(N) + ", 2), got " +
                     sizes_text(centres));
  if (subsample < 1)
    throw ValueError("aperture_flux: subsample must be >= 1, got " + std::to_string(subsample));
  const auto opt = images.options();
  const int64_t s = subsample, R = a.size(1);
  // Sub-pixel sample points: pixel j covers [j - 1/2, j + 1/2).
  const at::Tensor offsets = (at::arange(s, opt) + 0.5) / static_cast<double>(s) - 0.5;
  const at::Tensor xs = (at::arange(W, opt).unsqueeze(1) + offsets).reshape({1, W * s});
  const at::Tensor ys = (at::arange(H, opt).unsqueeze(1) + offsets).reshape({1, H * s});
  const at::Tensor c = centres.to(opt);
  const at::Tensor a2 = a.to(opt).square();
  const at::Tensor stretch = a2 / b.to(opt).square() - 1; // exactly 0 where a == b
  const at::Tensor cos_t = theta.to(opt).cos(), sin_t = theta.to(opt).sin();
  // Maps computed in chunks to bound memory (a few (n, R, H s, W s) temporaries).
  const int64_t chunk =
      std::max<int64_t>(1, (int64_t{1} << 23) / std::max<int64_t>(1, H * W * s * s * R));
  std::vector<at::Tensor> fluxes;
  for (int64_t start = 0; start < N; start += chunk) {
    const int64_t n = std::min(chunk, N - start);
    const at::Tensor cc = c.narrow(0, start, n);
    const at::Tensor dx = xs - cc.select(1, 0).unsqueeze(1); // (n, W s)
    const at::Tensor dy = ys - cc.select(1, 1).unsqueeze(1); // (n, H s)
    const at::Tensor d2 = (dy.square().unsqueeze(2) + dx.square().unsqueeze(1)).unsqueeze(1);
    const auto col = [&](const at::Tensor& p) {
      return p.narrow(0, start, n).view({n, p.size(1), 1, 1});
    };
    at::Tensor inside; // (n, R, H s, W s)
    if (circles) {
      inside = (d2 <= col(a2)).to(opt.dtype());
    } else {
      const at::Tensor v = dy.view({n, 1, H * s, 1}) * col(cos_t) -
                           dx.view({n, 1, 1, W * s}) * col(sin_t); // (n, 1 or R, H s, W s)
      inside = (at::addcmul(d2, col(stretch), v.square()) <= col(a2)).to(opt.dtype());
    }
    const at::Tensor frac =
        at::avg_pool2d(inside.view({n * R, 1, H * s, W * s}), {s, s}).view({n, R, H, W});
    fluxes.push_back((images.narrow(0, start, n) * frac).sum({2, 3}));
  }
  return fluxes.empty() ? at::zeros({0, B}, opt) : at::cat(fluxes);
}

} // namespace

at::Tensor aperture_flux(const at::Tensor& images, const at::Tensor& centres,
                         const at::Tensor& radius, int64_t subsample) {
  require_images(images, "aperture_flux");
  const at::Tensor r = per_galaxy(radius, images.size(0), images.size(1), "radius");
  return ellipse_flux(images, centres, r, r, at::zeros({r.size(0), 1}, r.options()), subsample,
                      true);
}

at::Tensor aperture_flux(const at::Tensor& images, const at::Tensor& centres,
                         const EllipticalAperture& aperture, int64_t subsample) {
  require_images(images, "aperture_flux");
  if (!aperture.a.defined() || !aperture.b.defined() || !aperture.theta.defined())
    throw ValueError("aperture_flux: the elliptical aperture needs a, b and theta");
  const int64_t N = images.size(0), B = images.size(1);
  const auto opt = images.options();
  const at::Tensor a = per_galaxy(aperture.a, N, B, "a").to(opt),
                   b = per_galaxy(aperture.b, N, B, "b").to(opt),
                   theta = per_galaxy(aperture.theta, N, B, "theta").to(opt);
  const at::Tensor axes = at::cat({a.flatten(), b.flatten()});
  const at::Tensor bad = (~(at::isfinite(axes) & (axes > 0))).nonzero();
  if (bad.numel() > 0)
    throw ValueError("aperture_flux: semi-axes must be finite and > 0, got " +
                     std::to_string(axes[bad[0][0].item<int64_t>()].item<double>()));
  const int64_t R = std::max({a.size(1), b.size(1), theta.size(1)});
  return ellipse_flux(images, centres, a.expand({N, R}), b.expand({N, R}), theta, subsample, false);
}

at::Tensor relative_residual(const at::Tensor& measured, const at::Tensor& truth) {
  if (measured.sizes() != truth.sizes())
    throw ShapeError("relative_residual: measured " + sizes_text(measured) + " and truth " +
                     sizes_text(truth) + " differ in shape");
  return at::where(truth != 0, (measured - truth) / truth, at::full_like(truth, nan));
}

at::Tensor colour_error(const at::Tensor& measured, const at::Tensor& truth, int64_t a, int64_t b) {
  if (measured.dim() != 2 || measured.sizes() != truth.sizes())
    throw ShapeError("colour_error: fluxes must be (N, B) alike, got " + sizes_text(measured) +
                     " and " + sizes_text(truth));
  const int64_t B = measured.size(1);
  if (a < 0 || a >= B || b < 0 || b >= B)
    throw ValueError("colour_error: bands " + std::to_string(a) + ", " + std::to_string(b) +
                     " outside [0, " + std::to_string(B) + ")");
  const auto colour = [&](const at::Tensor& f) {
    const at::Tensor fa = f.select(1, a), fb = f.select(1, b);
    const at::Tensor ok = (fa > 0) & (fb > 0);
    return at::where(ok, -2.5 * at::log10(at::where(ok, fa / fb, at::ones_like(fa))),
                     at::full_like(fa, nan));
  };
  return colour(measured) - colour(truth);
}

ResidualSummary summarize_residuals(const at::Tensor& residuals) {
  at::Tensor r = residuals.to(at::kCPU, at::kDouble);
  if (r.dim() == 1) r = r.unsqueeze(1);
  if (r.dim() != 2)
    throw ShapeError("summarize_residuals: residuals must be (N, B) or (N), got " +
                     sizes_text(residuals));
  r = at::where(at::isfinite(r), r, at::full_like(r, nan));
  ResidualSummary s;
  s.count = at::isfinite(r).sum(0);
  if (r.size(0) == 0) {
    s.mean_abs = s.median = s.spread68 = at::full({r.size(1)}, nan, at::kDouble);
    return s;
  }
  s.mean_abs = at::nanmean(r.abs(), {0});
  const at::Tensor q = at::nanquantile(r, at::tensor({0.16, 0.5, 0.84}, at::kDouble), 0); // (3, B)
  s.median = q[1];
  s.spread68 = 0.5 * (q[2] - q[0]);
  return s;
}

// ---- Images ---------------------------------------------------------------------------------

at::Tensor ssim(const at::Tensor& predicted, const at::Tensor& truth, const SsimOptions& o) {
  require_images(predicted, "ssim");
  require_same(predicted, truth, "ssim");
  if (o.window < 1 || o.window % 2 == 0 || !(o.sigma > 0) || !(o.data_range > 0))
    throw ValueError(
        "ssim: window must be odd and positive, sigma and data_range > 0; got window " +
        std::to_string(o.window) + ", sigma " + std::to_string(o.sigma) + ", data_range " +
        std::to_string(o.data_range));
  const int64_t N = predicted.size(0), B = predicted.size(1), H = predicted.size(2),
                W = predicted.size(3);
  if (H < o.window || W < o.window)
    throw ShapeError("ssim: images of " + std::to_string(H) + " x " + std::to_string(W) +
                     " are smaller than the " + std::to_string(o.window) + "-pixel window");
  at::Tensor p = predicted, t = truth.to(predicted.options());
  double L = o.data_range;
  at::Tensor p_max, t_max;
  if (o.normalise_by_max) {
    p_max = p.amax({2, 3}, true), t_max = t.amax({2, 3}, true); // (N, B, 1, 1)
    p = p / at::where(p_max > 0, p_max, at::ones_like(p_max));
    t = t / at::where(t_max > 0, t_max, at::ones_like(t_max));
    L = 1.0;
  }
  const auto opt = p.options();
  const at::Tensor x = at::arange(o.window, opt) - static_cast<double>(o.window / 2);
  at::Tensor g = at::exp(-0.5 * (x / o.sigma).square());
  g = g / g.sum();
  const auto filter = [&](const at::Tensor& img) { // (N, B, H, W) -> valid (N B, 1, H', W')
    const at::Tensor v = img.reshape({N * B, 1, H, W});
    return at::conv2d(at::conv2d(v, g.view({1, 1, -1, 1})), g.view({1, 1, 1, -1}));
  };
  const at::Tensor ux = filter(p), uy = filter(t);
  const at::Tensor vx = filter(p * p) - ux * ux, vy = filter(t * t) - uy * uy;
  const at::Tensor vxy = filter(p * t) - ux * uy;
  const double c1 = (o.k1 * L) * (o.k1 * L), c2 = (o.k2 * L) * (o.k2 * L);
  const at::Tensor map =
      ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
  at::Tensor s = map.mean({1, 2, 3}).view({N, B});
  if (o.normalise_by_max) {
    s = at::where(p_max.view({N, B}) > 0, s, at::zeros_like(s));
    s = at::where(t_max.view({N, B}) > 0, s, at::full_like(s, nan));
  }
  return s;
}

at::Tensor cosine_similarity(const at::Tensor& predicted, const at::Tensor& truth) {
  require_images(predicted, "cosine_similarity");
  require_same(predicted, truth, "cosine_similarity");
  const at::Tensor t = truth.to(predicted.options());
  const at::Tensor dot = (predicted * t).sum({2, 3});
  const at::Tensor np = predicted.square().sum({2, 3}).sqrt(), nt = t.square().sum({2, 3}).sqrt();
  const at::Tensor den = np * nt;
  at::Tensor c = dot / at::where(den > 0, den, at::ones_like(den));
  c = at::where(np > 0, c, at::zeros_like(c));
  return at::where(nt > 0, c, at::full_like(c, nan));
}

// ---- Shapes ---------------------------------------------------------------------------------

Shapes measure_shapes(const at::Tensor& images, const ShapeOptions& o) {
  if (images.dim() != 3 || !at::isFloatingType(images.scalar_type()))
    throw ShapeError("measure_shapes: images must be real (N, H, W), got " + sizes_text(images));
  if (o.iterations < 1 || !(o.initial_sigma > 0))
    throw ValueError("measure_shapes: iterations must be >= 1 and initial_sigma > 0, got " +
                     std::to_string(o.iterations) + ", " + std::to_string(o.initial_sigma));
  const at::Tensor I = images.to(at::kDouble); // moments in float64 whatever the input
  const auto opt = I.options();
  const int64_t N = I.size(0), H = I.size(1), W = I.size(2);
  const at::Tensor X = at::arange(W, opt).view({1, 1, W}), Y = at::arange(H, opt).view({1, H, 1});
  const auto col = [](const at::Tensor& v) { return v.view({-1, 1, 1}); };
  const auto sum = [](const at::Tensor& v) { return v.sum({1, 2}); };

  at::Tensor cx, cy, mxx, myy, mxy, m0;
  if (o.weight == MomentWeight::Unweighted) {
    const at::Tensor P = I.clamp_min(0);
    m0 = sum(P);
    const at::Tensor safe = at::where(m0 > 0, m0, at::ones_like(m0));
    cx = sum(P * X) / safe, cy = sum(P * Y) / safe;
    const at::Tensor dx = X - col(cx), dy = Y - col(cy);
    mxx = sum(P * dx * dx) / safe, myy = sum(P * dy * dy) / safe, mxy = sum(P * dx * dy) / safe;
  } else {
    cx = at::full({N}, (W - 1) / 2.0, opt), cy = at::full({N}, (H - 1) / 2.0, opt);
    mxx = at::full({N}, o.initial_sigma * o.initial_sigma, opt), myy = mxx.clone();
    mxy = at::zeros({N}, opt);
    m0 = at::ones({N}, opt);
    for (int it = 0; it < o.iterations; ++it) {
      const at::Tensor det = mxx * myy - mxy * mxy;
      const at::Tensor dx = X - col(cx), dy = Y - col(cy);
      const at::Tensor q =
          (col(myy) * dx * dx - 2 * col(mxy) * dx * dy + col(mxx) * dy * dy) / col(det);
      const at::Tensor Iw = I * at::exp(-0.5 * q);
      const at::Tensor w0 = sum(Iw);
      const at::Tensor safe = at::where(w0 > 0, w0, at::ones_like(w0));
      const at::Tensor sx = sum(Iw * dx) / safe, sy = sum(Iw * dy) / safe;
      // Weighted moments about the weighted centroid; the fixed point of M = 2 M_w is the
      // covariance of a Gaussian profile.
      const at::Tensor nxx = 2 * (sum(Iw * dx * dx) / safe - sx * sx);
      const at::Tensor nyy = 2 * (sum(Iw * dy * dy) / safe - sy * sy);
      const at::Tensor nxy = 2 * (sum(Iw * dx * dy) / safe - sx * sy);
      const at::Tensor ok = (w0 > 0) & (nxx > 0) & (nyy > 0) & (nxx * nyy - nxy * nxy > 0);
      cx = at::where(ok, cx + sx, cx), cy = at::where(ok, cy + sy, cy);
      mxx = at::where(ok, nxx, mxx), myy = at::where(ok, nyy, myy), mxy = at::where(ok, nxy, mxy);
      m0 = w0;
    }
  }
  Shapes s;
  const at::Tensor trace = mxx + myy;
  s.valid = (m0 > 0) & (mxx * myy - mxy * mxy > 0) & (trace > 0);
  const at::Tensor safe = at::where(trace > 0, trace, at::ones_like(trace));
  s.ellipticity =
      at::where(s.valid.unsqueeze(1), at::stack({(mxx - myy) / safe, 2 * mxy / safe}, 1),
                at::full({N, 2}, nan, opt));
  s.centroid = at::stack({cx, cy}, 1);
  s.moments = at::stack({mxx, myy, mxy}, 1);
  return s;
}

// ---- Detection ------------------------------------------------------------------------------

Matching match_positions(const at::Tensor& truth, const at::Tensor& detected, double max_distance) {
  if (truth.dim() != 2 || truth.size(1) != 2 || detected.dim() != 2 || detected.size(1) != 2)
    throw ShapeError("match_positions: positions must be (T, 2) and (K, 2), got " +
                     sizes_text(truth) + " and " + sizes_text(detected));
  const at::Tensor t = truth.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor d = detected.to(at::kCPU, at::kDouble).contiguous();
  const int64_t T = t.size(0), K = d.size(0);
  const double* tp = t.data_ptr<double>();
  const double* dp = d.data_ptr<double>();
  std::vector<std::tuple<double, int64_t, int64_t>> pairs;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t k = 0; k < K; ++k) {
      const double dist = std::hypot(tp[2 * i] - dp[2 * k], tp[2 * i + 1] - dp[2 * k + 1]);
      if (dist <= max_distance) pairs.emplace_back(dist, i, k);
    }
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  Matching m;
  m.truth_to_detection = at::full({T}, -1, at::kLong);
  m.detection_to_truth = at::full({K}, -1, at::kLong);
  auto* t2d = m.truth_to_detection.data_ptr<int64_t>();
  auto* d2t = m.detection_to_truth.data_ptr<int64_t>();
  for (const auto& [dist, i, k] : pairs)
    if (t2d[i] < 0 && d2t[k] < 0) t2d[i] = k, d2t[k] = i, ++m.matched;
  m.spurious = K - m.matched;
  m.missed = T - m.matched;
  return m;
}

} // namespace demix

#include <demix/core/errors.hpp>
#include <demix/deblend/detection.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace demix {

using detail::sizes_text;

namespace {

/// Separable 2-D convolution of (N, 1, H, W) by k (x) k, zero padding, same size.
at::Tensor separable(const at::Tensor& x, const at::Tensor& k) {
  const int64_t r = (k.numel() - 1) / 2;
  const std::vector<int64_t> stride{1, 1}, pad_rows{r, 0}, pad_cols{0, r};
  const at::Tensor rows = at::conv2d(x, k.view({1, 1, -1, 1}), at::Tensor(), stride, pad_rows);
  return at::conv2d(rows, k.view({1, 1, 1, -1}), at::Tensor(), stride, pad_cols);
}

/// Parabolic offset of the maximum along the last axis, 0 on the edges and where not concave.
at::Tensor parabola_offset(const at::Tensor& v /* (N, H, W) */) {
  const int64_t n = v.size(-1);
  at::Tensor out = at::zeros_like(v);
  if (n < 3) return out;
  const at::Tensor l = v.narrow(-1, 0, n - 2), c = v.narrow(-1, 1, n - 2),
                   r = v.narrow(-1, 2, n - 2);
  const at::Tensor den = l - 2 * c + r;
  const at::Tensor off = at::where(
      den < 0, 0.5 * (l - r) / at::where(den < 0, den, at::ones_like(den)), at::zeros_like(den));
  out.narrow(-1, 1, n - 2).copy_(off.clamp(-0.5, 0.5));
  return out;
}

} // namespace

PeakDetector::PeakDetector(const DetectionOptions& o, const Context& context)
    : options_(o), tensor_options_(context.options()) {
  if (!(o.smoothing_sigma > 0) || !std::isfinite(o.smoothing_sigma))
    throw ValueError("DetectionOptions.smoothing_sigma must be > 0, got " +
                     std::to_string(o.smoothing_sigma));
  if (!std::isfinite(o.threshold))
    throw ValueError("DetectionOptions.threshold must be finite, got " +
                     std::to_string(o.threshold));
  if (!(o.min_separation >= 0))
    throw ValueError("DetectionOptions.min_separation must be >= 0, got " +
                     std::to_string(o.min_separation));
  if (o.border < 0)
    throw ValueError("DetectionOptions.border must be >= 0, got " + std::to_string(o.border));
  const auto r = static_cast<int64_t>(std::ceil(4 * o.smoothing_sigma));
  const at::Tensor x = at::arange(-r, r + 1, at::kDouble);
  const at::Tensor k = at::exp(-0.5 * (x / o.smoothing_sigma).square());
  kernel_ = (k / k.sum()).to(tensor_options_);
}

at::Tensor PeakDetector::significance(const at::Tensor& images, const at::Tensor& sigmas) const {
  const at::Tensor x4 = images.dim() == 3 ? images.unsqueeze(0) : images;
  if (x4.dim() != 4)
    throw ShapeError("peak detection: images must be (N, B, H, W) or (B, H, W), got " +
                     sizes_text(images));
  const int64_t B = x4.size(1);
  if (sigmas.dim() != 1 || sigmas.size(0) != B)
    throw ShapeError("peak detection: noise sigmas must be (" + std::to_string(B) + "), got " +
                     sizes_text(sigmas));
  const at::Tensor sig = sigmas.to(tensor_options_);
  if (!(at::isfinite(sig).all().item<bool>() && (sig > 0).all().item<bool>()))
    throw ValueError("peak detection: noise sigmas must be finite and > 0");
  const at::Tensor inv_var = sig.square().reciprocal(); // (B)
  const at::Tensor s = (x4.to(tensor_options_) * inv_var.view({1, B, 1, 1})).sum(1, true);
  const at::Tensor smooth = separable(s, kernel_); // (N, 1, H, W)
  // Noise of each smoothed pixel: the kernel's squared weights over the pixels inside the image.
  const at::Tensor inside = at::ones({1, 1, x4.size(2), x4.size(3)}, tensor_options_);
  const at::Tensor noise = (separable(inside, kernel_.square()) * inv_var.sum()).sqrt();
  return (smooth / noise).squeeze(1);
}

std::vector<Detections> PeakDetector::detect(const at::Tensor& images,
                                             const at::Tensor& sigmas) const {
  const at::Tensor nu = significance(images, sigmas); // (N, H, W)
  const int64_t N = nu.size(0), H = nu.size(1), W = nu.size(2), e = options_.border;
  const at::Tensor local_max = at::max_pool2d(nu.unsqueeze(1), {3, 3}, {1, 1}, {1, 1}).squeeze(1);
  at::Tensor candidate = (nu >= local_max) & (nu > options_.threshold);
  if (e > 0) {
    at::Tensor inner = at::zeros({H, W}, candidate.options());
    if (H > 2 * e && W > 2 * e) inner.narrow(0, e, H - 2 * e).narrow(1, e, W - 2 * e).fill_(true);
    candidate = candidate & inner;
  }
  const at::Tensor where = candidate.nonzero().cpu().contiguous(); // (C, 3): image, row, column
  const at::Tensor flat = (where.select(1, 0) * H + where.select(1, 1)) * W + where.select(1, 2);
  const auto gather = [&](const at::Tensor& map) {
    return map.reshape({-1}).index_select(0, flat.to(map.device())).to(at::kCPU, at::kDouble);
  };
  const at::Tensor value = gather(nu);
  at::Tensor dx = at::zeros_like(value), dy = at::zeros_like(value);
  if (options_.subpixel) {
    dx = gather(parabola_offset(nu));
    dy = gather(parabola_offset(nu.transpose(1, 2)).transpose(1, 2));
  }

  std::vector<Detections> out(static_cast<size_t>(N));
  const auto* w = where.data_ptr<int64_t>();
  const auto* v = value.data_ptr<double>();
  const auto* ox = dx.data_ptr<double>();
  const auto* oy = dy.data_ptr<double>();
  const int64_t C = where.size(0);
  const double min_sep2 = options_.min_separation * options_.min_separation;
  int64_t start = 0;
  for (int64_t n = 0; n < N; ++n) {
    int64_t end = start;
    while (end < C && w[3 * end] == n) ++end; // nonzero() lists image n's candidates together
    std::vector<int64_t> order(static_cast<size_t>(end - start));
    std::iota(order.begin(), order.end(), start);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
    std::vector<double> xs, ys, sig;
    for (const int64_t c : order) {
      const double x = static_cast<double>(w[3 * c + 2]) + ox[c];
      const double y = static_cast<double>(w[3 * c + 1]) + oy[c];
      bool keep = true;
      for (size_t k = 0; k < xs.size() && keep; ++k)
        keep = (x - xs[k]) * (x - xs[k]) + (y - ys[k]) * (y - ys[k]) >= min_sep2;
      if (keep) xs.push_back(x), ys.push_back(y), sig.push_back(v[c]);
    }
    const auto K = static_cast<int64_t>(xs.size());
    Detections d;
    d.xy = at::stack({at::tensor(xs, at::kDouble), at::tensor(ys, at::kDouble)}, 1).view({K, 2});
    d.significance = at::tensor(sig, at::kDouble).view({K});
    out[static_cast<size_t>(n)] = d;
    start = end;
  }
  return out;
}

at::Tensor estimate_noise_sigmas(const at::Tensor& images, double clip, int iterations) {
  const at::Tensor x4 = images.dim() == 3 ? images.unsqueeze(0) : images;
  if (x4.dim() != 4 || !at::isFloatingType(x4.scalar_type()))
    throw ShapeError("noise estimate: images must be real (N, B, H, W) or (B, H, W), got " +
                     sizes_text(images));
  if (!(clip > 0) || iterations < 1)
    throw ValueError("noise estimate: clip must be > 0 and iterations >= 1, got " +
                     std::to_string(clip) + ", " + std::to_string(iterations));
  const int64_t B = x4.size(1);
  const at::Tensor bands = x4.transpose(0, 1).reshape({B, -1}).to(at::kCPU, at::kDouble);
  std::vector<double> sigma(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    at::Tensor v = bands[b];
    v = v.masked_select(at::isfinite(v));
    double s = 0;
    for (int it = 0; it < iterations && v.numel() > 0; ++it) {
      const at::Tensor med = v.median();
      s = 1.4826 * (v - med).abs().median().item<double>();
      if (!(s > 0)) break;
      v = v.masked_select((v - med).abs() <= clip * s);
    }
    if (!(s > 0))
      throw ValueError("noise estimate: band " + std::to_string(b) +
                       " has no pixel scatter (constant or empty); give the noise levels");
    sigma[static_cast<size_t>(b)] = s;
  }
  return at::tensor(sigma, at::kDouble);
}

} // namespace demix

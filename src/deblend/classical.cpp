#include <demix/core/errors.hpp>
#include <demix/deblend/classical.hpp>
#include <demix/deblend/detection.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>
#include <vector>

namespace demix {

using detail::sizes_text;

at::Tensor ClassicalResult::stamps(int64_t stamp_size) const {
  const int64_t M = galaxies.size();
  const BlendGalaxies own{galaxies.xy, at::arange(M, at::kLong), M};
  const StampPlacer placer(own, children.size(1), children.size(2), children.size(3), stamp_size,
                           children.device());
  return placer.extract_each(children);
}

ClassicalDeblender::ClassicalDeblender(const ClassicalDeblendOptions& o, const Context& context)
    : options_(o), tensor_options_(context.options()),
      footprint_({.smoothing_sigma = o.footprint_smoothing > 0 ? o.footprint_smoothing : 1.0},
                 context) {
  if (!(o.ridge >= 0))
    throw ValueError("ClassicalDeblendOptions.ridge must be >= 0, got " + std::to_string(o.ridge));
  if (!(o.footprint_smoothing > 0))
    throw ValueError("ClassicalDeblendOptions.footprint_smoothing must be > 0, got " +
                     std::to_string(o.footprint_smoothing));
  if (o.max_blends_per_batch < 1)
    throw ValueError("ClassicalDeblendOptions.max_blends_per_batch must be >= 1, got " +
                     std::to_string(o.max_blends_per_batch));
}

ClassicalResult ClassicalDeblender::deblend(const at::Tensor& images, const BlendGalaxies& galaxies,
                                            const at::Tensor& noise_sigmas) const {
  if (images.dim() != 4)
    throw ShapeError("classical deblend: images must be (N, B, H, W), got " + sizes_text(images));
  if (!at::isFloatingType(images.scalar_type()))
    throw ValueError("classical deblend: images must be real floating point, got " +
                     std::string(c10::toString(images.scalar_type())));
  galaxies.check("classical deblend");
  const int64_t N = images.size(0), chunk = options_.max_blends_per_batch;
  if (galaxies.num_blends != N)
    throw ShapeError("classical deblend: the galaxy list is for " +
                     std::to_string(galaxies.num_blends) + " blends, the images hold " +
                     std::to_string(N));
  if (noise_sigmas.defined() && (noise_sigmas.dim() != 1 || noise_sigmas.size(0) != images.size(1)))
    throw ShapeError("classical deblend: noise sigmas must be (" + std::to_string(images.size(1)) +
                     "), got " + sizes_text(noise_sigmas));
  if (N <= chunk) return deblend_chunk(images, galaxies, noise_sigmas);
  std::vector<at::Tensor> children, templates, amplitudes;
  for (int64_t start = 0; start < N; start += chunk) {
    const int64_t n = std::min(chunk, N - start);
    const ClassicalResult r = deblend_chunk(
        images.narrow(0, start, n), galaxies.select_blends(at::arange(start, start + n, at::kLong)),
        noise_sigmas);
    children.push_back(r.children), templates.push_back(r.templates);
    amplitudes.push_back(r.amplitudes);
  }
  ClassicalResult r;
  r.galaxies = galaxies;
  r.children = at::cat(children), r.templates = at::cat(templates);
  r.amplitudes = at::cat(amplitudes);
  return r;
}

ClassicalResult ClassicalDeblender::deblend_chunk(const at::Tensor& images,
                                                  const BlendGalaxies& galaxies,
                                                  const at::Tensor& noise_sigmas) const {
  const auto opt = tensor_options_;
  const auto dev = opt.device();
  const auto lopt = at::TensorOptions().dtype(at::kLong).device(dev);
  const int64_t N = images.size(0), B = images.size(1), H = images.size(2), W = images.size(3);
  const int64_t M = galaxies.size(), HW = H * W;
  ClassicalResult r;
  r.galaxies = galaxies;
  if (M == 0) {
    r.children = at::zeros({0, B, H, W}, opt);
    r.templates = at::zeros({0, B, H, W}, opt);
    r.amplitudes = at::zeros({0, B}, opt);
    return r;
  }
  const at::Tensor y = images.to(opt).transpose(0, 1).reshape({B, N * HW}); // (B, N H W)
  const at::Tensor blend = galaxies.blend.to(dev);                          // (M)
  const at::Tensor pix = galaxies.pixel().to(dev);                          // (M, 2)
  const at::Tensor xy = galaxies.xy.to(opt);                                // (M, 2)

  // 1. Symmetric templates. Mirror of pixel (row, col) through p: (2 py - row, 2 px - col);
  // mirrors outside the image read the zero slot past the last frame, so the template is 0 there.
  const at::Tensor rows = 2 * pix.select(1, 1).unsqueeze(1) - at::arange(H, lopt); // (M, H)
  const at::Tensor cols = 2 * pix.select(1, 0).unsqueeze(1) - at::arange(W, lopt); // (M, W)
  const at::Tensor inside = ((rows >= 0) & (rows < H)).unsqueeze(2) &
                            ((cols >= 0) & (cols < W)).unsqueeze(1); // (M, H, W)
  at::Tensor mirror = blend.view({-1, 1, 1}) * HW + rows.unsqueeze(2) * W + cols.unsqueeze(1);
  mirror = at::where(inside, mirror, at::full_like(mirror, N * HW)).view({-1}); // (M H W)
  const at::Tensor src = options_.symmetry == SymmetryImage::PerBand ? y : y.sum(0, true);
  const int64_t C = src.size(0);
  const at::Tensor mirrored =
      at::cat({src, at::zeros({C, 1}, opt)}, 1).index_select(1, mirror).view({C, M, HW});
  const at::Tensor direct = src.view({C, N, HW}).index_select(1, blend); // (C, M, HW)
  at::Tensor templates = at::minimum(direct, mirrored).clamp_min(0);     // (C, M, HW)
  if (noise_sigmas.defined()) {
    // Footprint: both the pixel and its mirror above the significance threshold.
    const at::Tensor in =
        (footprint_.significance(images, noise_sigmas) > options_.footprint_threshold)
            .to(opt.dtype())
            .reshape({1, N * HW}); // (1, N H W)
    const at::Tensor both =
        in.view({N, HW}).index_select(0, blend) *
        at::cat({in, at::zeros({1, 1}, opt)}, 1).index_select(1, mirror).view({M, HW});
    templates = templates * both.unsqueeze(0);
  }
  if (C != B) templates = templates.expand({B, M, HW});

  // 2. Amplitudes: per blend and band, least squares of the image on its galaxies' templates,
  // as G x G normal equations padded to the largest G (padded rows: identity, zero right side).
  at::Tensor w = at::ones({B, M}, opt);
  if (options_.sharing == FluxSharing::Fitted) {
    const at::Tensor counts = galaxies.counts();
    const int64_t G = counts.max().item<int64_t>();
    const at::Tensor slot = at::arange(M, lopt) - galaxies.first().to(dev).index_select(0, blend);
    const at::Tensor where_in = blend * G + slot; // (M) row in the padded (N G) layout
    const at::Tensor padded =
        at::zeros({B, N * G, HW}, opt).index_copy(1, where_in, templates).view({B, N, G, HW});
    // The G x G systems in float64 whatever the precision: the ridge must stay above rounding
    // (two galaxies on one pixel have identical templates).
    at::Tensor A = at::matmul(padded, padded.transpose(2, 3)).to(at::kDouble); // (B, N, G, G)
    const at::Tensor rhs =
        at::matmul(padded, y.view({B, N, HW, 1})).to(at::kDouble); // (B, N, G, 1)
    const at::Tensor diag = A.diagonal(0, 2, 3);                   // (B, N, G)
    const at::Tensor mean_diag =
        diag.sum(-1, true) / counts.to(dev, at::kDouble).clamp_min(1).view({1, N, 1});
    // Empty rows (padding, templates that are 0 everywhere) get 1 on the diagonal: amplitude 0.
    const at::Tensor add = at::where(diag > 0, options_.ridge * mean_diag, at::ones_like(diag));
    A = A + at::diag_embed(add);
    const at::Tensor sol = at::linalg_solve(A, rhs).view({B, N * G});
    w = sol.index_select(1, where_in).clamp_min(0).to(opt.dtype()); // (B, M)
  }
  r.amplitudes = w.t().contiguous();

  // 3. Flux sharing in proportion to w T; uncovered pixels by inverse squared distance.
  const at::Tensor wt = w.unsqueeze(2) * templates; // (B, M, HW)
  const at::Tensor den = at::zeros({B, N, HW}, opt).index_add(1, blend, wt).index_select(1, blend);
  const at::Tensor gx = at::arange(W, opt).view({1, 1, W}), gy = at::arange(H, opt).view({1, H, 1});
  const at::Tensor near = (1.0 / (1.0 + (gx - xy.select(1, 0).view({-1, 1, 1})).square() +
                                  (gy - xy.select(1, 1).view({-1, 1, 1})).square()))
                              .view({M, HW});
  const at::Tensor near_den =
      at::zeros({N, HW}, opt).index_add(0, blend, near).index_select(0, blend);
  const at::Tensor covered = den > 0;
  const at::Tensor share = at::where(covered, wt / at::where(covered, den, at::ones_like(den)),
                                     (near / near_den).unsqueeze(0));
  const at::Tensor parent = y.view({B, N, HW}).index_select(1, blend); // (B, M, HW)
  r.children = (parent * share).view({B, M, H, W}).transpose(0, 1).contiguous();
  r.templates = templates.reshape({B, M, H, W}).transpose(0, 1).contiguous();
  return r;
}

} // namespace demix

#include <demix/core/errors.hpp>
#include <demix/deblend/madness.hpp>
#include <demix/optim/step_graph.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace demix {

using detail::sizes_text;

namespace {

void require(bool ok, const std::string& field, double value, const std::string& allowed) {
  if (!ok)
    throw ValueError("MadnessOptions." + field + " = " + std::to_string(value) + ": must be " +
                     allowed);
}

/// Sum of per-galaxy values (M) over each blend: (K).
at::Tensor per_blend(const at::Tensor& values /* (M) */, const at::Tensor& blend /* (M) */,
                     int64_t K) {
  return at::zeros({K}, values.options()).index_add(0, blend, values);
}

/// Row-wise <a, b> summed over each blend's galaxies: (M, D), (M, D) -> (K).
at::Tensor blend_dot(const at::Tensor& a, const at::Tensor& b, const at::Tensor& blend, int64_t K) {
  return per_blend((a * b).sum(1), blend, K);
}

/// Per-blend scalars (K) broadcast to the galaxies' rows: (M, 1).
at::Tensor to_rows(const at::Tensor& per_blend_values /* (K) */, const at::Tensor& blend) {
  return per_blend_values.index_select(0, blend).unsqueeze(1);
}

} // namespace

double MadnessResult::converged_fraction() const {
  if (!converged.defined() || converged.numel() == 0) return 1.0;
  return converged.to(at::kDouble).mean().item<double>();
}

struct MadnessDeblender::Problem {
  BlendGalaxies galaxies;
  int64_t N = 0, B = 0, H = 0, W = 0, M = 0;
  at::Tensor y;      // (B, N, H, W) on the device, context dtype
  at::Tensor weight; // (B, N or 1, H or 1, W or 1): sqrt(mask) / sigma; chi^2 = |(y - model) w|^2
  at::Tensor mask;   // (1 or B, N, H, W) or undefined
  at::Tensor blend;  // (M) int64 on the device
  std::optional<StampPlacer> placer;

  /// The sub-problem of blends `keep` (K) int64 on the device.
  Problem select(const at::Tensor& keep) const {
    Problem p;
    p.galaxies = galaxies.select_blends(keep.cpu());
    p.N = keep.numel();
    p.B = B, p.H = H, p.W = W, p.M = p.galaxies.size();
    p.y = y.index_select(1, keep);
    p.weight = weight.size(1) == 1 ? weight : weight.index_select(1, keep);
    if (mask.defined()) p.mask = mask.index_select(1, keep);
    p.blend = p.galaxies.blend.to(y.device());
    p.placer.emplace(p.galaxies, B, H, W, placer->stamp_size(), y.device());
    return p;
  }
};

MadnessDeblender::MadnessDeblender(std::shared_ptr<const GalaxyPrior> prior,
                                   const MadnessOptions& o, const Context& context)
    : prior_(std::move(prior)), options_(o), tensor_options_(context.options()) {
  if (!prior_) throw ValueError("MadnessDeblender: no galaxy prior given (null pointer)");
  require(o.max_steps >= 0, "max_steps", o.max_steps, ">= 0");
  require(o.learning_rate > 0, "learning_rate", o.learning_rate, "> 0");
  require(o.lr_decay > 0 && o.lr_decay <= 1, "lr_decay", o.lr_decay, "in (0, 1]");
  require(o.lr_decay_steps >= 1, "lr_decay_steps", o.lr_decay_steps, ">= 1");
  require(o.adam_beta1 >= 0 && o.adam_beta1 < 1, "adam_beta1", o.adam_beta1, "in [0, 1)");
  require(o.adam_beta2 >= 0 && o.adam_beta2 < 1, "adam_beta2", o.adam_beta2, "in [0, 1)");
  require(o.adam_epsilon > 0, "adam_epsilon", o.adam_epsilon, "> 0");
  require(o.window >= 1, "window", o.window, ">= 1");
  require(o.min_steps >= o.window, "min_steps", o.min_steps,
          ">= window (" + std::to_string(o.window) + ")");
  require(o.rtol >= 0, "rtol", o.rtol, ">= 0");
  require(o.atol >= 0, "atol", o.atol, ">= 0");
  require(o.check_every >= 1, "check_every", o.check_every, ">= 1");
  require(o.shrink_fraction >= 0 && o.shrink_fraction <= 1, "shrink_fraction", o.shrink_fraction,
          "in [0, 1]");
  require(o.lbfgs_steps >= 0, "lbfgs_steps", o.lbfgs_steps, ">= 0");
  require(o.lbfgs_history >= 1, "lbfgs_history", o.lbfgs_history, ">= 1");
  require(o.lbfgs_max_backtracks >= 1, "lbfgs_max_backtracks", o.lbfgs_max_backtracks, ">= 1");
  require(o.lbfgs_rtol >= 0, "lbfgs_rtol", o.lbfgs_rtol, ">= 0");
  require(o.prior_weight >= 0, "prior_weight", o.prior_weight, ">= 0");
  require(o.init_passes == 1 || o.init_passes == 2, "init_passes", o.init_passes, "1 or 2");
  require(o.max_blends_per_batch >= 0, "max_blends_per_batch",
          static_cast<double>(o.max_blends_per_batch), ">= 0");
  const int64_t S = prior_->stamp_size();
  if (S < 1 || S % 2 == 0)
    throw ValueError("MadnessDeblender: the prior's stamp size must be odd, got " +
                     std::to_string(S));
}

MadnessDeblender::Problem MadnessDeblender::prepare(const at::Tensor& images,
                                                    const BlendGalaxies& galaxies,
                                                    const at::Tensor& sigmas,
                                                    const at::Tensor& mask) const {
  const int64_t nb = prior_->n_bands();
  if (images.dim() != 4 || images.size(1) != nb)
    throw ShapeError("deblend: images must be (N, " + std::to_string(nb) +
                     ", H, W) (the prior's bands), got " + sizes_text(images));
  if (!at::isFloatingType(images.scalar_type()))
    throw ValueError("deblend: images must be real floating point, got " +
                     std::string(c10::toString(images.scalar_type())));
  galaxies.check("deblend");
  Problem p;
  p.galaxies = galaxies;
  p.N = images.size(0), p.B = nb, p.H = images.size(2), p.W = images.size(3);
  p.M = galaxies.size();
  if (galaxies.num_blends != p.N)
    throw ShapeError("deblend: the galaxy list is for " + std::to_string(galaxies.num_blends) +
                     " blends, the images hold " + std::to_string(p.N));
  const bool per_blend_sigma = sigmas.dim() == 2;
  if (!((sigmas.dim() == 1 && sigmas.size(0) == nb) ||
        (per_blend_sigma && sigmas.size(0) == p.N && sigmas.size(1) == nb)))
    throw ShapeError("deblend: noise sigmas must be (" + std::to_string(nb) + ") or (" +
                     std::to_string(p.N) + ", " + std::to_string(nb) + "), got " +
                     sizes_text(sigmas));
  const at::Tensor sig = sigmas.to(at::kCPU, at::kDouble);
  if (!(at::isfinite(sig).all().item<bool>() && (sig > 0).all().item<bool>()))
    throw ValueError("deblend: noise sigmas must be finite and > 0, got min " +
                     std::to_string(sig.min().item<double>()));
  if (!at::isfinite(images).all().item<bool>())
    throw ValueError("deblend: the images hold NaN or infinite pixels");

  const auto dev = tensor_options_.device();
  p.y = images.to(tensor_options_).transpose(0, 1).contiguous(); // (B, N, H, W)
  // (B, 1 or N, 1, 1) variances of the noise.
  at::Tensor var = sigmas.to(tensor_options_).square();
  var = per_blend_sigma ? var.t().reshape({nb, p.N, 1, 1}) : var.view({nb, 1, 1, 1});
  if (options_.source_variance) var = var + p.y.clamp_min(0);
  p.weight = var.rsqrt();
  if (mask.defined() && mask.numel() > 0) {
    if (mask.dim() != 4 || mask.size(0) != p.N || (mask.size(1) != 1 && mask.size(1) != nb) ||
        mask.size(2) != p.H || mask.size(3) != p.W)
      throw ShapeError("deblend: mask must be (" + std::to_string(p.N) + ", 1 or " +
                       std::to_string(nb) + ", " + std::to_string(p.H) + ", " +
                       std::to_string(p.W) + "), got " + sizes_text(mask));
    p.mask = mask.to(tensor_options_).transpose(0, 1).contiguous(); // (1 or B, N, H, W)
    if ((p.mask < 0).any().item<bool>()) throw ValueError("deblend: mask values must be >= 0");
    p.weight = p.weight * p.mask.sqrt();
  }
  p.blend = galaxies.blend.to(dev);
  p.placer.emplace(galaxies, nb, p.H, p.W, prior_->stamp_size(), dev);
  return p;
}

namespace {

/// Checks what a GalaxyPrior returned against what the interface promises.
void check_prior_output(const at::Tensor& t, std::vector<int64_t> expected, const char* what) {
  bool ok = t.defined() && t.dim() == static_cast<int64_t>(expected.size());
  for (size_t d = 0; ok && d < expected.size(); ++d)
    ok = t.size(static_cast<int64_t>(d)) == expected[d];
  if (!ok) {
    std::string e = "(";
    for (size_t d = 0; d < expected.size(); ++d) e += (d ? ", " : "") + std::to_string(expected[d]);
    throw ShapeError(std::string("galaxy prior: ") + what + " returned " +
                     (t.defined() ? sizes_text(t) : "nothing") + ", expected " + e + ")");
  }
}

} // namespace

at::Tensor MadnessDeblender::encode_init(const Problem& p) const {
  c10::AutoGradMode no_grad(false);
  const int64_t D = prior_->latent_dim(), S = prior_->stamp_size();
  const at::Tensor seen = p.mask.defined() ? p.y * p.mask : p.y; // (B, N, H, W)
  at::Tensor cutouts = p.placer->extract_channels_first(seen).transpose(0, 1).contiguous();
  at::Tensor z = prior_->encode(cutouts).to(tensor_options_);
  check_prior_output(z, {p.M, D}, "encode");
  if (options_.init_passes == 2 && p.M > 0) {
    const at::Tensor models = prior_->decode(z).to(tensor_options_); // (M, B, S, S)
    check_prior_output(models, {p.M, p.B, S, S}, "decode");
    const at::Tensor models_cf = models.transpose(0, 1);
    const at::Tensor residual = seen - p.placer->render_channels_first(models_cf);
    cutouts = (p.placer->extract_channels_first(residual) + models_cf).transpose(0, 1).contiguous();
    z = prior_->encode(cutouts).to(tensor_options_);
  }
  return z;
}

namespace {

/// chi^2 / 2 of each blend, 0.5 sum_{b, pixels} ((y - model) w)^2, with a gradient for the model
/// only (y and w are data): one saved tensor and two kernels in backward, where autograd takes
/// five. First derivatives only.
struct HalfChi2 : torch::autograd::Function<HalfChi2> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const at::Tensor& model /* (B, N, H, W) */,
                                                const at::Tensor& y /* (B, N, H, W) */,
                                                const at::Tensor& w /* broadcast to y */) {
    at::Tensor r = at::sub(model, y).mul_(w); // minus the weighted residual: the same square
    ctx->save_for_backward({r, w});
    return {at::mul(r, r).sum({0, 2, 3}).mul_(0.5)}; // (N)
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    if (c10::GradMode::is_enabled())
      throw ValueError("the deblending loss has first derivatives only (create_graph was asked "
                       "for)");
    const auto saved = ctx->get_saved_variables();
    // d/dmodel = (model - y) w^2 = r w, per blend times its output gradient.
    at::Tensor grad = at::mul(saved[0], saved[1]).mul_(grads[0].view({1, -1, 1, 1}));
    return {grad, at::Tensor(), at::Tensor()};
  }
};

/// L per blend of a problem's blends at latents z (differentiable when z requires grad).
struct LossFn {
  const GalaxyPrior& prior;
  double prior_weight;

  template <class P> at::Tensor operator()(const P& p, const at::Tensor& z) const {
    const at::Tensor stamps = prior.decode(z); // (M, B, S, S)
    check_prior_output(stamps, {p.M, p.B, p.placer->stamp_size(), p.placer->stamp_size()},
                       "decode");
    const at::Tensor model =
        p.placer->render_channels_first(stamps.transpose(0, 1).to(p.y.dtype()));
    const at::Tensor chi2 = p.y.requires_grad() || p.weight.requires_grad() // (N)
                                ? 0.5 * ((p.y - model) * p.weight).square().sum({0, 2, 3})
                                : HalfChi2::apply(model, p.y, p.weight)[0];
    if (prior_weight == 0) return chi2;
    const at::Tensor log_p = prior.log_prob(z);
    check_prior_output(log_p, {p.M}, "log_prob");
    // chi2 - prior_weight per_blend(log_p), in one kernel (chi2 is ours: nothing saved it).
    return chi2.index_add_(0, p.blend, log_p.to(chi2.dtype()), -prior_weight);
  }

  /// L (K) and its gradient with respect to z (M, D).
  template <class P>
  std::pair<at::Tensor, at::Tensor> with_grad(const P& p, const at::Tensor& z) const {
    c10::AutoGradMode grad_on(true);
    const at::Tensor zl = z.detach().requires_grad_(true);
    const at::Tensor L = (*this)(p, zl);
    const at::Tensor g = torch::autograd::grad({L}, {zl}, {at::ones_like(L)})[0];
    return {L.detach(), g.detach()};
  }

  template <class P> at::Tensor value(const P& p, const at::Tensor& z) const {
    c10::AutoGradMode no_grad(false);
    return (*this)(p, z);
  }
};

} // namespace

at::Tensor MadnessDeblender::initial_latents(const at::Tensor& images,
                                             const BlendGalaxies& galaxies,
                                             const at::Tensor& mask) const {
  const at::Tensor ones = at::ones({prior_->n_bands()}, at::kDouble);
  return encode_init(prepare(images, galaxies, ones, mask));
}

at::Tensor MadnessDeblender::loss(const at::Tensor& images, const BlendGalaxies& galaxies,
                                  const at::Tensor& noise_sigmas, const at::Tensor& latents,
                                  const at::Tensor& mask) const {
  const Problem p = prepare(images, galaxies, noise_sigmas, mask);
  check_prior_output(latents, {p.M, prior_->latent_dim()}, "loss: latents (input)");
  return LossFn{*prior_, options_.prior_weight}(p, latents);
}

MadnessResult MadnessDeblender::deblend(const at::Tensor& images, const BlendGalaxies& galaxies,
                                        const at::Tensor& noise_sigmas,
                                        const at::Tensor& mask) const {
  const int64_t N = images.dim() == 4 ? images.size(0) : 0;
  const int64_t chunk = options_.max_blends_per_batch;
  if (chunk == 0 || N <= chunk) return run(images, galaxies, noise_sigmas, mask);
  galaxies.check("deblend");
  if (galaxies.num_blends != N)
    throw ShapeError("deblend: the galaxy list is for " + std::to_string(galaxies.num_blends) +
                     " blends, the images hold " + std::to_string(N));
  std::vector<MadnessResult> parts;
  for (int64_t start = 0; start < N; start += chunk) {
    const int64_t n = std::min(chunk, N - start);
    const at::Tensor keep = at::arange(start, start + n, at::kLong);
    const at::Tensor sig =
        noise_sigmas.dim() == 2 ? noise_sigmas.narrow(0, start, n) : noise_sigmas;
    const at::Tensor m = mask.defined() && mask.numel() > 0 ? mask.narrow(0, start, n) : mask;
    parts.push_back(run(images.narrow(0, start, n), galaxies.select_blends(keep), sig, m));
  }
  MadnessResult r;
  r.galaxies = galaxies;
  std::vector<at::Tensor> lat, st, res, lo, ste, conv;
  for (const auto& q : parts) {
    lat.push_back(q.latents), st.push_back(q.stamps), res.push_back(q.residuals);
    lo.push_back(q.loss), ste.push_back(q.steps), conv.push_back(q.converged);
  }
  r.latents = at::cat(lat), r.stamps = at::cat(st), r.residuals = at::cat(res);
  r.loss = at::cat(lo), r.steps = at::cat(ste), r.converged = at::cat(conv);
  return r;
}

MadnessResult MadnessDeblender::run(const at::Tensor& images, const BlendGalaxies& galaxies,
                                    const at::Tensor& noise_sigmas, const at::Tensor& mask) const {
  const Problem all = prepare(images, galaxies, noise_sigmas, mask);
  const LossFn loss_fn{*prior_, options_.prior_weight};
  const int64_t D = prior_->latent_dim(), S = prior_->stamp_size();
  const auto dev = tensor_options_.device();
  const auto lopt = at::TensorOptions().dtype(at::kLong).device(dev);
  const auto bopt = at::TensorOptions().dtype(at::kBool).device(dev);
  const MadnessOptions& o = options_;

  at::Tensor z_out = encode_init(all);                     // (M, D)
  at::Tensor steps_out = at::zeros({all.N}, lopt);         // (N)
  at::Tensor conv_out = at::zeros({all.N}, bopt);          // (N)
  const at::Tensor counts = all.galaxies.counts().to(dev); // (N)
  conv_out.masked_fill_(counts == 0, true);                // nothing to fit: trivially converged

  // ---- Adam on a shrinking working set of the blends still running ----
  if (o.max_steps > 0 && all.M > 0) {
    at::Tensor act = (counts > 0).nonzero().view({-1}); // (K) global blend index
    Problem work = all.select(act);
    at::Tensor gal = at::arange(all.M, lopt); // (M_w) global galaxy index, all galaxies are active
    at::Tensor z = z_out.clone(), m1 = at::zeros_like(z), m2 = at::zeros_like(z);
    at::Tensor z_best = z.clone();
    const auto dopt = tensor_options_;
    at::Tensor best = at::full({work.N}, std::numeric_limits<double>::infinity(), dopt);
    at::Tensor prev = at::zeros({work.N}, dopt), ema = at::zeros({work.N}, dopt);
    at::Tensor ema0 = at::zeros({work.N}, dopt);
    // Adam's step count on the device: its bias corrections and the decayed step size change at
    // every step, and a recorded step must read them from a tensor.
    const at::Tensor t_dev = at::zeros({}, dopt.dtype(at::kDouble));
    // Blends of the working set already stored (shrink_fraction keeps them until enough are).
    at::Tensor finished = at::zeros({work.N}, bopt);
    int64_t n_finished = 0;

    // One step at step count t (t only selects the moving average's start: from t = window + 1 on
    // every step is the same ops on the same tensors, updated in place, so it can be replayed).
    const auto adam_step = [&](int t) {
      at::Tensor L, g;
      std::tie(L, g) = loss_fn.with_grad(work, z); // (K), (M_w, D)
      // In place where a buffer is ours: on a GPU, late steps of few blends cost their launches.
      const at::Tensor better = L < best;
      at::where_out(best, better, L, best);
      at::where_out(z_best, to_rows(better, work.blend), z, z_best);
      if (t == 1) ema.copy_(prev - L);
      if (t > 1) // ema <- (window - 1) / window ema + (prev - L) / window
        ema.lerp_(prev - L, 1.0 / o.window);
      if (t == o.window) ema0.copy_(ema);
      prev.copy_(L);
      // Adam step, with bias correction and MADNESS's staircase decay of the step size:
      // z -= lr (m1 / c1) / (sqrt(m2 / c2) + eps), written as
      // z -= (lr sqrt(c2) / c1) m1 / (sqrt(m2) + eps sqrt(c2)).
      const at::Tensor lr =
          at::pow(o.lr_decay, at::floor(t_dev / o.lr_decay_steps)).mul_(o.learning_rate);
      const at::Tensor c1 = 1 - at::pow(o.adam_beta1, t_dev + 1);
      const at::Tensor sqrt_c2 = (1 - at::pow(o.adam_beta2, t_dev + 1)).sqrt_();
      m1.lerp_(g, 1 - o.adam_beta1); // beta1 m1 + (1 - beta1) g
      m2.mul_(o.adam_beta2).addcmul_(g, g, 1 - o.adam_beta2);
      z.addcdiv_(m1 * (-lr * sqrt_c2 / c1), m2.sqrt().add_(o.adam_epsilon * sqrt_c2));
      t_dev.add_(1);
    };
    // The recording of the uniform step for the present working set (dropped when it shrinks).
    const bool replay = o.cuda_graphs && prior_->replayable();
    std::optional<StepGraph> recorded;

    for (int t = 0; t < o.max_steps && work.N > 0; ++t) {
      if (replay && t > o.window) {
        if (!recorded) recorded.emplace([&adam_step, &o] { adam_step(o.window + 1); }, dev);
        (*recorded)();
      } else {
        adam_step(t);
      }
      // Convergence, on the loss bookkeeping of the step just taken (its z_best predates the
      // update, which done blends drop).
      const bool last = t + 1 == o.max_steps;
      if ((t + 1) % o.check_every == 0 || last) {
        at::Tensor conv = at::zeros({work.N}, bopt);
        if (t + 1 >= o.min_steps) conv = ema <= at::clamp_min(o.rtol * ema0.clamp_min(0), o.atol);
        // Blends finished at this test; those finished earlier (still in the set) are stored.
        const at::Tensor done = (last ? at::ones({work.N}, bopt) : conv) & ~finished;
        const at::Tensor done_idx = done.nonzero().view({-1}); // (a host synchronisation)
        bool all_done = false;
        if (done_idx.numel() > 0) {
          const at::Tensor done_gal = done.index_select(0, work.blend).nonzero().view({-1});
          const at::Tensor blends = act.index_select(0, done_idx);
          z_out.index_copy_(0, gal.index_select(0, done_gal), z_best.index_select(0, done_gal));
          steps_out.index_fill_(0, blends, t + 1);
          conv_out.index_copy_(0, blends, conv.index_select(0, done_idx));
          finished.logical_or_(done);
          n_finished += done_idx.numel();
          all_done = n_finished == work.N;
          if (!all_done &&
              static_cast<double>(n_finished) >= o.shrink_fraction * static_cast<double>(work.N)) {
            const at::Tensor keep = (~finished).nonzero().view({-1});
            const at::Tensor keep_gal =
                (~finished).index_select(0, work.blend).nonzero().view({-1});
            recorded.reset(); // it reads the tensors replaced below
            work = work.select(keep);
            act = act.index_select(0, keep);
            gal = gal.index_select(0, keep_gal);
            for (at::Tensor* v : {&z, &m1, &m2, &z_best}) *v = v->index_select(0, keep_gal);
            for (at::Tensor* v : {&best, &prev, &ema, &ema0, &finished})
              *v = v->index_select(0, keep);
            n_finished = 0;
          }
        }
        if (o.progress) o.progress({t + 1, work.N - n_finished, work.M, all.N});
        if (all_done) break;
      }
    }
  }

  // ---- L-BFGS refinement, per blend, on all blends with galaxies ----
  if (o.lbfgs_steps > 0 && all.M > 0) {
    const at::Tensor act = (counts > 0).nonzero().view({-1});
    const Problem p = all.select(act);
    const at::Tensor& blend = p.blend;
    const int64_t K = p.N;
    at::Tensor z = z_out; // the active blends' galaxies are all the galaxies, in order
    at::Tensor f, g;
    std::tie(f, g) = loss_fn.with_grad(p, z);
    std::deque<at::Tensor> hs, hy, hrho; // (M, D), (M, D), (K)
    at::Tensor done = at::zeros({K}, bopt);
    // Without curvature pairs, a first step of length learning_rate in each blend's latents.
    const auto steepest_scale = [&](const at::Tensor& grad) {
      return o.learning_rate / blend_dot(grad, grad, blend, K).sqrt().clamp_min(1e-30);
    };
    for (int it = 0; it < o.lbfgs_steps; ++it) {
      at::Tensor q = g;
      std::vector<at::Tensor> alphas(hs.size());
      for (int i = static_cast<int>(hs.size()) - 1; i >= 0; --i) {
        alphas[i] = hrho[i] * blend_dot(hs[i], q, blend, K);
        q = q - to_rows(alphas[i], blend) * hy[i];
      }
      at::Tensor gamma = steepest_scale(g);
      if (!hs.empty()) {
        const at::Tensor yy = blend_dot(hy.back(), hy.back(), blend, K);
        const at::Tensor sy = blend_dot(hs.back(), hy.back(), blend, K);
        gamma = at::where((hrho.back() > 0) & (yy > 0), sy / yy.clamp_min(1e-300), gamma);
      }
      at::Tensor r = to_rows(gamma, blend) * q;
      for (size_t i = 0; i < hs.size(); ++i) {
        const at::Tensor beta = hrho[i] * blend_dot(hy[i], r, blend, K);
        r = r + to_rows(alphas[i] - beta, blend) * hs[i];
      }
      at::Tensor d = -r;
      at::Tensor gd = blend_dot(g, d, blend, K);
      const at::Tensor uphill = ~(gd < 0);
      d = at::where(to_rows(uphill, blend), -to_rows(steepest_scale(g), blend) * g, d);
      d = at::where(to_rows(done, blend), at::zeros_like(d), d);
      gd = blend_dot(g, d, blend, K);

      // Armijo backtracking, each blend with its own step length.
      at::Tensor alpha = at::ones({K}, f.options());
      at::Tensor accepted = done.clone(), z_new = z, f_new = f;
      for (int k = 0; k < o.lbfgs_max_backtracks; ++k) {
        const at::Tensor z_try = z + to_rows(alpha, blend) * d;
        const at::Tensor f_try = loss_fn.value(p, z_try);
        const at::Tensor ok = (~accepted) & at::isfinite(f_try) & (f_try <= f + 1e-4 * alpha * gd);
        z_new = at::where(to_rows(ok, blend), z_try, z_new);
        f_new = at::where(ok, f_try, f_new);
        accepted = accepted | ok;
        alpha = at::where(accepted, alpha, 0.5 * alpha);
        if (accepted.all().item<bool>()) break;
      }
      at::Tensor f2, g2;
      std::tie(f2, g2) = loss_fn.with_grad(p, z_new);
      const at::Tensor s = z_new - z, yv = g2 - g;
      const at::Tensor sy = blend_dot(s, yv, blend, K);
      const at::Tensor scale = (blend_dot(s, s, blend, K) * blend_dot(yv, yv, blend, K)).sqrt();
      hs.push_back(s), hy.push_back(yv);
      hrho.push_back(at::where(sy > 1e-12 * scale, 1.0 / sy, at::zeros_like(sy)));
      if (static_cast<int>(hs.size()) > o.lbfgs_history)
        hs.pop_front(), hy.pop_front(), hrho.pop_front();
      // No acceptable step (a minimum to rounding) or too small a decrease: that blend is done.
      done = done | ~accepted | ((f - f2) <= o.lbfgs_rtol * f2.abs());
      z = z_new, f = f2, g = g2;
      if (done.all().item<bool>()) break;
    }
    z_out = z;
    conv_out.index_copy_(0, act, conv_out.index_select(0, act) | done);
  }

  // ---- Outputs ----
  MadnessResult r;
  r.galaxies = galaxies;
  r.latents = z_out;
  {
    c10::AutoGradMode no_grad(false);
    const at::Tensor stamps = all.M > 0 ? prior_->decode(z_out).to(tensor_options_)
                                        : at::zeros({0, all.B, S, S}, tensor_options_);
    check_prior_output(stamps, {all.M, all.B, S, S}, "decode");
    const at::Tensor model = all.placer->render_channels_first(stamps.transpose(0, 1));
    r.stamps = stamps;
    r.residuals = (all.y - model).transpose(0, 1).contiguous();
    r.loss = loss_fn.value(all, z_out).to(at::kCPU, at::kDouble);
  }
  r.steps = steps_out.cpu();
  r.converged = conv_out.cpu();
  (void)D;
  return r;
}

FieldResult MadnessDeblender::deblend_field(const at::Tensor& image, const at::Tensor& positions,
                                            const at::Tensor& noise_sigmas,
                                            const FieldTiling& tiling) const {
  const int64_t nb = prior_->n_bands(), S = prior_->stamp_size();
  if (image.dim() != 3 || image.size(0) != nb)
    throw ShapeError("deblend_field: the field must be (" + std::to_string(nb) + ", H, W), got " +
                     sizes_text(image));
  if (positions.dim() != 2 || positions.size(1) != 2)
    throw ShapeError("deblend_field: positions must be (G, 2) (x, y), got " +
                     sizes_text(positions));
  if (tiling.tile < 1 || tiling.margin < -1)
    throw ValueError("deblend_field: tile must be >= 1 and margin >= 0 (or -1: stamp size - 1), "
                     "got tile " +
                     std::to_string(tiling.tile) + ", margin " + std::to_string(tiling.margin));
  const int64_t H = image.size(1), W = image.size(2), T = tiling.tile;
  const int64_t m = tiling.margin == -1 ? S - 1 : tiling.margin;
  const int64_t R = T + 2 * m, ny = (H + T - 1) / T, nx = (W + T - 1) / T;
  const int64_t G = positions.size(0);
  const at::Tensor xy = positions.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor pix = at::floor(xy + 0.5).to(at::kLong);
  for (int64_t i = 0; i < G; ++i) {
    const int64_t px = pix[i][0].item<int64_t>(), py = pix[i][1].item<int64_t>();
    if (px < 0 || px >= W || py < 0 || py >= H)
      throw ValueError("deblend_field: galaxy " + std::to_string(i) + " at (" +
                       std::to_string(xy[i][0].item<double>()) + ", " +
                       std::to_string(xy[i][1].item<double>()) + ") is outside the " +
                       std::to_string(W) + " x " + std::to_string(H) + " field");
  }

  // Galaxies of each tile: those of its core, then the others within its margins (context).
  struct Entry {
    int64_t galaxy;
    bool core;
  };
  std::vector<std::vector<Entry>> members(static_cast<size_t>(ny * nx));
  const auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
  for (int64_t i = 0; i < G; ++i) {
    const int64_t px = pix[i][0].item<int64_t>(), py = pix[i][1].item<int64_t>();
    members[static_cast<size_t>((py / T) * nx + px / T)].push_back({i, true});
  }
  for (int64_t i = 0; i < G; ++i) {
    const int64_t px = pix[i][0].item<int64_t>(), py = pix[i][1].item<int64_t>();
    // Tile ty's region holds rows [ty T - m, ty T + T + m).
    for (int64_t ty = std::max<int64_t>(0, floor_div(py - T - m, T) + 1);
         ty <= std::min(ny - 1, floor_div(py + m, T)); ++ty)
      for (int64_t tx = std::max<int64_t>(0, floor_div(px - T - m, T) + 1);
           tx <= std::min(nx - 1, floor_div(px + m, T)); ++tx)
        if (ty != py / T || tx != px / T)
          members[static_cast<size_t>(ty * nx + tx)].push_back({i, false});
  }

  // The used tiles as a batch of R x R images (zero and masked beyond the field).
  const at::Tensor padded = at::zeros({nb, ny * T + 2 * m, nx * T + 2 * m}, image.options());
  padded.narrow(1, m, H).narrow(2, m, W).copy_(image);
  const at::Tensor inside = at::zeros({1, ny * T + 2 * m, nx * T + 2 * m}, image.options());
  inside.narrow(1, m, H).narrow(2, m, W).fill_(1);
  std::vector<at::Tensor> tiles, masks, tile_positions;
  std::vector<int64_t> used;
  for (int64_t ty = 0; ty < ny; ++ty)
    for (int64_t tx = 0; tx < nx; ++tx) {
      const auto& list = members[static_cast<size_t>(ty * nx + tx)];
      if (list.empty() || !list.front().core) continue;
      used.push_back(ty * nx + tx);
      tiles.push_back(padded.narrow(1, ty * T, R).narrow(2, tx * T, R));
      masks.push_back(inside.narrow(1, ty * T, R).narrow(2, tx * T, R));
      at::Tensor local = at::empty({static_cast<int64_t>(list.size()), 2}, at::kDouble);
      for (size_t k = 0; k < list.size(); ++k) {
        local[static_cast<int64_t>(k)][0] = xy[list[k].galaxy][0].item<double>() - (tx * T - m);
        local[static_cast<int64_t>(k)][1] = xy[list[k].galaxy][1].item<double>() - (ty * T - m);
      }
      tile_positions.push_back(local);
    }

  FieldResult out;
  out.tiles_used = static_cast<int64_t>(used.size());
  out.latents = at::zeros({G, prior_->latent_dim()}, tensor_options_);
  out.stamps = at::zeros({G, nb, S, S}, tensor_options_);
  out.tile = at::full({G}, -1, at::kLong);
  out.converged = at::zeros({G}, at::kBool);
  if (!used.empty()) {
    const BlendGalaxies tile_galaxies = BlendGalaxies::from_list(tile_positions);
    const MadnessResult r =
        deblend(at::stack(tiles), tile_galaxies, noise_sigmas, at::stack(masks));
    std::vector<int64_t> rows, ids;
    int64_t row = 0;
    for (size_t t = 0; t < used.size(); ++t) {
      for (const Entry& e : members[static_cast<size_t>(used[t])]) {
        if (e.core) {
          rows.push_back(row), ids.push_back(e.galaxy);
          out.tile[e.galaxy] = used[t];
          out.converged[e.galaxy] = r.converged[static_cast<int64_t>(t)].item<bool>();
        }
        ++row;
      }
    }
    const auto dev = tensor_options_.device();
    const at::Tensor rows_t = at::tensor(rows, at::kLong).to(dev);
    const at::Tensor ids_t = at::tensor(ids, at::kLong).to(dev);
    out.latents.index_copy_(0, ids_t, r.latents.index_select(0, rows_t));
    out.stamps.index_copy_(0, ids_t, r.stamps.index_select(0, rows_t));
  }
  const BlendGalaxies whole{xy, at::zeros({G}, at::kLong), 1};
  const StampPlacer placer(whole, nb, H, W, S, tensor_options_.device());
  out.residual = image.to(tensor_options_) - placer.render(out.stamps)[0];
  return out;
}

} // namespace demix

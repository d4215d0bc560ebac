#include <demix/core/errors.hpp>
#include <demix/deblend/madness.hpp>
#include <demix/optim/adam.hpp>
#include <demix/optim/lbfgs.hpp>
#include <demix/optim/step_graph.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace demix {

using detail::sizes_text;

namespace {

void require(bool ok, const std::string& field, double value, const std::string& allowed) {
  if (!ok)
    throw ValueError("MadnessOptions." + field + " = " + std::to_string(value) + ": must be " +
                     allowed);
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

namespace {

/// The Adam phase's bookkeeping for each blend of the working set (K blends, M_w galaxies): the
/// lowest loss and its latents, and the moving average of the loss decrease behind tfp's
/// LossNotDecreasing test. Updated in place, so that a recorded step replays the updates.
struct LossTrack {
  at::Tensor best;   // (K) lowest loss seen
  at::Tensor z_best; // (M_w, D) latents of that loss
  at::Tensor prev;   // (K) loss of the previous step
  at::Tensor ema;    // (K) moving average of the per-step decrease
  at::Tensor ema0;   // (K) ema at step `window`: the scale of the test

  LossTrack(const at::Tensor& z /* (M_w, D) */, int64_t K, const at::TensorOptions& options)
      : best(at::full({K}, std::numeric_limits<double>::infinity(), options)), z_best(z.clone()),
        prev(at::zeros({K}, options)), ema(at::zeros({K}, options)), ema0(at::zeros({K}, options)) {
  }

  /// Records step t (0-based): losses L (K) at latents z (M_w, D) of the blends `blend` (M_w).
  void record(const at::Tensor& L, const at::Tensor& z, const at::Tensor& blend, int t,
              int window) {
    const at::Tensor better = L < best;
    at::where_out(best, better, L, best);
    at::where_out(z_best, better.index_select(0, blend).unsqueeze(1), z, z_best);
    if (t == 1) ema.copy_(prev - L);
    if (t > 1) // ema <- (window - 1) / window ema + (prev - L) / window
      ema.lerp_(prev - L, 1.0 / window);
    if (t == window) ema0.copy_(ema);
    prev.copy_(L);
  }

  /// The blends whose average decrease fell to rtol times its value at step `window`, or to
  /// atol: (K) bool.
  at::Tensor converged(double rtol, double atol) const {
    return ema <= at::clamp_min(rtol * ema0.clamp_min(0), atol);
  }

  /// Keeps the blends `blends` (K') and the galaxies `galaxies` (M_w') of the working set.
  void keep(const at::Tensor& blends, const at::Tensor& galaxies) {
    z_best = z_best.index_select(0, galaxies);
    for (at::Tensor* v : {&best, &prev, &ema, &ema0}) *v = v->index_select(0, blends);
  }
};

} // namespace

struct MadnessDeblender::Fit {
  at::Tensor latents;   // (M, D) the encoder's, then each phase's
  at::Tensor steps;     // (N) int64: Adam steps of each blend
  at::Tensor converged; // (N) bool: blends without galaxies are (nothing to fit)
  at::Tensor active;    // (K) int64: the blends with galaxies, increasing

  /// Stores what the Adam phase reached for the blends `blends` (global indices, (k)) after
  /// `step_count` steps: latents z (m, D) of their galaxies `galaxies` (global indices, (m)).
  void store(const at::Tensor& blends, const at::Tensor& galaxies, const at::Tensor& z,
             int64_t step_count, const at::Tensor& conv /* (k) bool */) {
    latents.index_copy_(0, galaxies, z);
    steps.index_fill_(0, blends, step_count);
    converged.index_copy_(0, blends, conv);
  }
};

MadnessResult MadnessDeblender::run(const at::Tensor& images, const BlendGalaxies& galaxies,
                                    const at::Tensor& noise_sigmas, const at::Tensor& mask) const {
  const Problem all = prepare(images, galaxies, noise_sigmas, mask);
  const auto dev = tensor_options_.device();
  const at::Tensor counts = all.galaxies.counts().to(dev); // (N)
  Fit fit;
  fit.latents = encode_init(all);
  fit.steps = at::zeros({all.N}, at::TensorOptions().dtype(at::kLong).device(dev));
  fit.converged = counts == 0;
  fit.active = (counts > 0).nonzero().view({-1});
  if (options_.max_steps > 0 && all.M > 0) fit_adam(all, fit);
  if (options_.lbfgs_steps > 0 && all.M > 0) fit_lbfgs(all, fit);
  return outputs(all, fit);
}

// Adam on a working set of the blends still running: finished blends are stored (the latents of
// their lowest loss) and, once they are shrink_fraction of the set, leave it.
void MadnessDeblender::fit_adam(const Problem& all, Fit& fit) const {
  const MadnessOptions& o = options_;
  const LossFn loss_fn{*prior_, o.prior_weight};
  const auto dev = tensor_options_.device();
  const auto bopt = at::TensorOptions().dtype(at::kBool).device(dev);
  at::Tensor act = fit.active;                               // (K) global blend index
  Problem work = all.select(act);                            // its galaxies are all galaxies
  at::Tensor gal = at::arange(all.M, bopt.dtype(at::kLong)); // (M_w) global galaxy index
  at::Tensor z = fit.latents.clone();                        // (M_w, D)
  Adam adam({z}, {.learning_rate = o.learning_rate,
                  .lr_decay = o.lr_decay,
                  .lr_decay_steps = o.lr_decay_steps,
                  .beta1 = o.adam_beta1,
                  .beta2 = o.adam_beta2,
                  .epsilon = o.adam_epsilon});
  LossTrack track(z, work.N, tensor_options_);
  // Blends of the working set already stored (they stay until shrink_fraction of it are).
  at::Tensor finished = at::zeros({work.N}, bopt);
  int64_t n_finished = 0;

  // One step at step t (t only selects the moving average's start: from t = window + 1 on every
  // step is the same ops on the same tensors, updated in place, so it can be replayed). Adam
  // reads its step count and step size from the device.
  const auto adam_step = [&](int t) {
    const auto [L, g] = loss_fn.with_grad(work, z); // (K), (M_w, D)
    track.record(L, z, work.blend, t, o.window);
    adam.step({z}, {g});
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
    const bool last = t + 1 == o.max_steps;
    if ((t + 1) % o.check_every != 0 && !last) continue;
    // Convergence, on the loss bookkeeping of the step just taken (its z_best predates the update,
    // which finished blends drop).
    const at::Tensor conv =
        t + 1 >= o.min_steps ? track.converged(o.rtol, o.atol) : at::zeros({work.N}, bopt);
    // Blends finished at this test; those finished earlier (still in the set) are stored.
    const at::Tensor done = (last ? at::ones({work.N}, bopt) : conv) & ~finished;
    const at::Tensor done_idx = done.nonzero().view({-1}); // (a host synchronisation)
    bool all_done = false;
    if (done_idx.numel() > 0) {
      const at::Tensor done_gal = done.index_select(0, work.blend).nonzero().view({-1});
      fit.store(act.index_select(0, done_idx), gal.index_select(0, done_gal),
                track.z_best.index_select(0, done_gal), t + 1, conv.index_select(0, done_idx));
      finished.logical_or_(done);
      n_finished += done_idx.numel();
      all_done = n_finished == work.N;
      if (!all_done &&
          static_cast<double>(n_finished) >= o.shrink_fraction * static_cast<double>(work.N)) {
        const at::Tensor keep = (~finished).nonzero().view({-1});
        const at::Tensor keep_gal = (~finished).index_select(0, work.blend).nonzero().view({-1});
        recorded.reset(); // it reads the tensors replaced below
        work = work.select(keep);
        act = act.index_select(0, keep);
        gal = gal.index_select(0, keep_gal);
        z = z.index_select(0, keep_gal);
        adam.keep_rows(keep_gal);
        track.keep(keep, keep_gal);
        finished = finished.index_select(0, keep);
        n_finished = 0;
      }
    }
    if (o.progress) o.progress({t + 1, work.N - n_finished, work.M, all.N});
    if (all_done) break;
  }
}

// L-BFGS from the latents of the Adam phase, each blend its own problem (minimize_lbfgs).
void MadnessDeblender::fit_lbfgs(const Problem& all, Fit& fit) const {
  const MadnessOptions& o = options_;
  const LossFn loss_fn{*prior_, o.prior_weight};
  const Problem p = all.select(fit.active); // its galaxies are all galaxies, in order
  const LbfgsObjective objective{[&](const at::Tensor& z) { return loss_fn.with_grad(p, z); },
                                 [&](const at::Tensor& z) { return loss_fn.value(p, z); }};
  const LbfgsResult r = minimize_lbfgs(objective, fit.latents, {p.blend, p.N},
                                       {.history = o.lbfgs_history,
                                        .max_iterations = o.lbfgs_steps,
                                        .max_backtracks = o.lbfgs_max_backtracks,
                                        .rtol = o.lbfgs_rtol,
                                        .first_step_length = o.learning_rate});
  fit.latents = r.x;
  fit.converged.index_copy_(0, fit.active, fit.converged.index_select(0, fit.active) | r.converged);
}

MadnessResult MadnessDeblender::outputs(const Problem& all, const Fit& fit) const {
  c10::AutoGradMode no_grad(false);
  const int64_t S = prior_->stamp_size();
  MadnessResult r;
  r.galaxies = all.galaxies;
  r.latents = fit.latents;
  r.stamps = all.M > 0 ? prior_->decode(fit.latents).to(tensor_options_)
                       : at::zeros({0, all.B, S, S}, tensor_options_);
  check_prior_output(r.stamps, {all.M, all.B, S, S}, "decode");
  const at::Tensor model = all.placer->render_channels_first(r.stamps.transpose(0, 1));
  r.residuals = (all.y - model).transpose(0, 1).contiguous();
  r.loss = LossFn{*prior_, options_.prior_weight}.value(all, fit.latents).to(at::kCPU, at::kDouble);
  r.steps = fit.steps.cpu();
  r.converged = fit.converged.cpu();
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
  const BlendGalaxies whole{xy, at::zeros({G}, at::kLong), 1}; // the field as one blend
  const at::Tensor pix = whole.pixel();                        // (G, 2) nearest pixels
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
  const StampPlacer placer(whole, nb, H, W, S, tensor_options_.device());
  out.residual = image.to(tensor_options_) - placer.render(out.stamps)[0];
  return out;
}

} // namespace demix

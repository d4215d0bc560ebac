#include <demix/core/errors.hpp>
#include <demix/optim/step_graph.hpp>
#include <demix/synthesis/microcanonical.hpp>

#include "core/detail/hash.hpp"
#include "core/detail/sizes_text.hpp"
#include "io/detail/tensor_archive.hpp"
#include "optim/detail/lbfgs_archive.hpp"
#include "optim/detail/require_option.hpp"
#include "stats/detail/keywords_text.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace demix {

using detail::sizes_text;

StatisticSpec default_synthesis_statistic(const Grid2d& grid) {
  CommonOptions common;
  common.kind = StatisticKind::Wph;
  common.norm = CommonNorm::Auto;
  return resolve(common, grid);
}

const char* synthesis_init_name(SynthesisInit init) {
  return init == SynthesisInit::Gaussian ? "gaussian" : "noise";
}

namespace {

void check_options(const SynthesisOptions& o) {
  const detail::OptionCheck require{"SynthesisOptions"};
  require(o.samples >= 1, "samples", o.samples, ">= 1");
  require(o.iterations >= 0, "iterations", o.iterations, ">= 0");
  require(o.init == SynthesisInit::Noise || o.init == SynthesisInit::Gaussian, "init",
          static_cast<double>(o.init), "Noise or Gaussian");
}

/// Everything that decides a run's iterates, as text: a checkpoint resumes only the run it was
/// written by.
std::string fingerprint(const at::Tensor& targets, const SynthesisOptions& o,
                        const MatchingLoss& loss, const Context& context) {
  const at::Tensor t = targets.detach().to(at::kCPU).contiguous();
  std::ostringstream s;
  s << "targets " << sizes_text(t) << " " << c10::toString(t.scalar_type()) << " fnv "
    << detail::fnv1a(t.data_ptr(), t.nbytes()) << "; samples " << o.samples << " seed " << o.seed
    << " log " << o.log << " standardize " << o.standardize << " init "
    << synthesis_init_name(o.init) << " scale " << term_scale_name(o.matching.scale) << " floor "
    << o.matching.scale_floor << " cross " << o.matching.cross << "; lbfgs "
    << detail::lbfgs_options_text(o.lbfgs) << "; " << context.describe() << "; terms";
  for (const MatchTerm& term : loss.terms())
    s << " " << term.name << "*" << term.weight << "{" << detail::keywords_text(*term.statistic)
      << "}";
  return s.str();
}

} // namespace

struct Synthesizer::State {
  SynthesisOptions options; ///< as given, with the default statistic and first step filled in
  Context context;
  bool complex = false;
  at::Tensor mean, std; // (C) per channel, of the log-transformed targets (complex mean if complex)
  at::Tensor targets;   // (T, C, H, W) preprocessed
  std::unique_ptr<MatchingLoss> loss;
  std::string fingerprint;
};

Synthesizer::Synthesizer(const at::Tensor& targets, const SynthesisOptions& options,
                         const Grid2d& grid, const Context& context)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.options = options, s.context = context;
  check_options(options);
  if (!targets.defined() || targets.dim() != 4)
    throw ShapeError("synthesis: targets must be (T, C, H, W), got " +
                     (targets.defined() ? sizes_text(targets) : std::string("nothing")));
  s.complex = targets.is_complex();
  if (!s.complex && !at::isFloatingType(targets.scalar_type()))
    throw ValueError("synthesis: targets must be floating point or complex, got " +
                     std::string(c10::toString(targets.scalar_type())));
  const at::Tensor t = context.to(targets.detach());
  if (!at::isfinite(t).all().item<bool>())
    throw ValueError("synthesis: the targets hold " +
                     std::to_string((~at::isfinite(t)).sum().item<int64_t>()) +
                     " NaN or infinite pixels");
  if (options.log) {
    if (s.complex) throw ValueError("synthesis: log transform of complex maps");
    const double lo = t.min().item<double>();
    if (!(lo > 0))
      throw ValueError("synthesis: the log transform needs targets > 0, their minimum is " +
                       std::to_string(lo));
  }
  s.mean = at::zeros({t.size(1)}, t.options());
  s.std = at::ones({t.size(1)}, context.options());
  const at::Tensor logged = options.log ? t.log() : t;
  if (options.standardize) {
    s.mean = logged.mean({0, 2, 3});
    s.std = (logged - s.mean.view({1, -1, 1, 1})).abs().square().mean({0, 2, 3}).sqrt();
    if (!(s.std > 0).all().item<bool>())
      throw ValueError("synthesis: a target channel is constant; it cannot be standardised");
  }
  s.targets = prepare(t);
  if (s.options.matching.statistics.empty())
    s.options.matching.statistics.push_back({default_synthesis_statistic(grid), 1.0});
  s.loss =
      std::make_unique<MatchingLoss>(match_targets(s.targets, s.options.matching, grid, context));
  s.options.lbfgs.max_iterations = options.iterations;
  // Per sample, a tenth of the targets' deviation per variable.
  const double variables = static_cast<double>(s.targets[0].numel()) * (s.complex ? 2 : 1);
  const double spread =
      (s.targets - s.targets.mean({0, 2, 3}, true)).abs().square().mean().sqrt().item<double>();
  if (!(s.options.lbfgs.first_step_length > 0))
    s.options.lbfgs.first_step_length = 0.1 * std::sqrt(variables) * (spread > 0 ? spread : 1.0);
  s.fingerprint = fingerprint(targets, s.options, *s.loss, context);
}

Synthesizer::~Synthesizer() = default;
Synthesizer::Synthesizer(Synthesizer&&) noexcept = default;

const at::Tensor& Synthesizer::prepared_targets() const { return state_->targets; }
const MatchingLoss& Synthesizer::loss() const { return *state_->loss; }
const SynthesisOptions& Synthesizer::options() const { return state_->options; }

at::Tensor Synthesizer::prepare(const at::Tensor& maps) const {
  const State& s = *state_;
  const at::Tensor y = s.options.log ? maps.log() : maps;
  return (y - s.mean.view({1, -1, 1, 1})) / s.std.view({1, -1, 1, 1});
}

at::Tensor Synthesizer::restore(const at::Tensor& maps) const {
  const State& s = *state_;
  const at::Tensor y = maps * s.std.view({1, -1, 1, 1}) + s.mean.view({1, -1, 1, 1});
  return s.options.log ? y.exp() : y;
}

namespace {

/// Standard normal noise (S, C, H, W) from the seed, drawn in float64 on the CPU so that every
/// device starts from the same maps; complex noise has unit variance in all (half per part).
at::Tensor seeded_noise(std::uint64_t seed, at::IntArrayRef shape, bool complex) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Tensor re = at::normal(0, 1, shape, gen, at::TensorOptions().dtype(at::kDouble));
  if (!complex) return re;
  const at::Tensor im = at::normal(0, 1, shape, gen, at::TensorOptions().dtype(at::kDouble));
  return at::complex(re, im) / std::sqrt(2.0);
}

} // namespace

at::Tensor Synthesizer::initial_maps() const {
  const State& s = *state_;
  const at::Tensor& t = s.targets; // (T, C, H, W)
  const int64_t C = t.size(1), H = t.size(2), W = t.size(3);
  const at::Tensor w = s.context.to(seeded_noise(s.options.seed, {s.options.samples, C, H, W},
                                                 s.complex)); // (S, C, H, W)
  const at::Tensor mean = t.mean({0, 2, 3}, true);            // (1, C, 1, 1)
  at::Tensor x;
  if (s.options.init == SynthesisInit::Noise) {
    const at::Tensor sd = (t - mean).abs().square().mean({0, 2, 3}, true).sqrt();
    x = mean + sd * w;
  } else {
    // E |fft(w)_k|^2 = H W for unit white noise: scaled by sqrt(P_k / (H W)), its spectrum is
    // P_k = the targets' mean |fft(t - mean)_k|^2. P is symmetric for real maps, so the field is.
    const at::Tensor P = at::fft_fft2(t - mean).abs().square().mean(0, true); // (1, C, H, W)
    const at::Tensor f = at::fft_ifft2(at::fft_fft2(w) * (P / static_cast<double>(H * W)).sqrt());
    x = mean + (s.complex ? f : at::real(f));
  }
  return restore(x);
}

namespace {

/// The optimiser's variables: real maps as they are, complex maps as (..., 2) real pairs.
at::Tensor to_variables(const at::Tensor& maps) {
  return maps.is_complex() ? at::view_as_real(maps.contiguous()) : maps;
}
at::Tensor from_variables(const at::Tensor& x, bool complex) {
  return complex ? at::view_as_complex(x.contiguous()) : x;
}

void save_checkpoint(const std::string& path, const std::string& fingerprint, const LbfgsState& st,
                     const std::vector<at::Tensor>& history) {
  detail::TensorArchive a;
  a.put_text("format", "demix synthesis checkpoint 2");
  a.put_text("fingerprint", fingerprint);
  detail::put_lbfgs_state(a, st);
  a.put("loss_history", at::stack(history));
  a.save(path);
}

LbfgsState load_checkpoint(const std::string& path, const std::string& fingerprint,
                           const Context& context, std::vector<at::Tensor>& history) {
  const detail::TensorArchive a = detail::TensorArchive::load(path);
  if (!a.has("format") || a.text("format") != "demix synthesis checkpoint 2")
    throw FormatError(path + ": not a demix synthesis checkpoint (of this version)");
  if (a.text("fingerprint") != fingerprint)
    throw ValueError(path +
                     ": the checkpoint was written by another synthesis (other targets, "
                     "options, seed or device); it holds\n  " +
                     a.text("fingerprint") + "\nthis run is\n  " + fingerprint);
  LbfgsState st = detail::get_lbfgs_state(a, context);
  const at::Tensor h = a.tensor("loss_history");
  history.clear();
  for (int64_t i = 0; i < h.size(0); ++i) history.push_back(h[i]);
  return st;
}

} // namespace

SynthesisResult Synthesizer::run(const SynthesisRun& run) const {
  const State& s = *state_;
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  if (run.checkpoint_every < 0)
    throw ValueError("SynthesisRun.checkpoint_every = " + std::to_string(run.checkpoint_every) +
                     ": must be >= 0");
  const MatchingLoss& loss = *s.loss;
  const bool complex = s.complex;
  const int64_t S = s.options.samples;
  const RowGroups groups{at::arange(S, s.context.options().dtype(at::kLong)), S};

  std::vector<at::Tensor> history; // (S) float64 CPU each
  LbfgsState st;
  at::Tensor x0;
  if (!run.resume.empty())
    st = load_checkpoint(run.resume, s.fingerprint, s.context, history);
  else
    x0 = to_variables(prepare(initial_maps()));

  // The loss and gradient read the point from a buffer at a fixed address and leave their results
  // in tensors the step assigns, so that on CUDA every evaluation after the second replays one
  // recording (StepGraph): at 256^2 the host's dispatch of the loss's ops costs more than their
  // kernels. The outputs are copied out, as the next replay overwrites them.
  at::Tensor x_in = at::empty_like(x0.defined() ? x0 : st.x), loss_out, grad_out;
  StepGraph evaluate(
      [&] {
        MatchingResult r = loss.evaluate(from_variables(x_in, complex), true);
        loss_out = r.loss, grad_out = to_variables(r.grad);
      },
      s.context.device(), s.options.cuda_graphs);
  LbfgsObjective objective;
  objective.value_and_grad = [&](const at::Tensor& x) {
    x_in.copy_(x);
    evaluate();
    return std::make_pair(loss_out.clone(), grad_out.clone());
  };
  if (x0.defined()) {
    st = lbfgs_start(objective, x0, groups, s.options.lbfgs);
    history.push_back(st.value.to(at::kCPU, at::kDouble));
  }
  const int first_iteration = st.iteration;
  int saved = -1; // the iteration the checkpoint file holds
  lbfgs_run(objective, st, groups, s.options.lbfgs, [&](const LbfgsState& now) {
    history.push_back(now.value_host.clone());
    if (!run.checkpoint.empty() && run.checkpoint_every > 0 &&
        now.iteration % run.checkpoint_every == 0) {
      save_checkpoint(run.checkpoint, s.fingerprint, now, history);
      saved = now.iteration;
    }
    if (run.progress) {
      const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
      const double rate = (now.iteration - first_iteration) / std::max(elapsed, 1e-9);
      run.progress({now.iteration, s.options.iterations, history.back().mean().item<double>(),
                    (~now.done_host).sum().item<int64_t>(), rate,
                    (s.options.iterations - now.iteration) / std::max(rate, 1e-12)});
    }
  });
  if (!run.checkpoint.empty() && saved != st.iteration)
    save_checkpoint(run.checkpoint, s.fingerprint, st, history);

  SynthesisResult out;
  const at::Tensor x = from_variables(st.x, complex);
  out.samples = restore(x);
  out.loss_history = at::stack(history);
  const MatchingResult final_loss = loss.evaluate(x, false);
  out.term_losses = final_loss.terms.to(at::kCPU, at::kDouble);
  for (const MatchTerm& term : loss.terms()) out.term_names.push_back(term.name);
  out.converged = st.done.to(at::kCPU);
  out.iterations = st.iteration;
  out.evaluations = st.evaluations;
  out.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return out;
}

} // namespace demix

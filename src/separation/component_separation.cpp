#include <demix/core/errors.hpp>
#include <demix/separation/component_separation.hpp>
#include <demix/stats/masked.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/stats/region_variance.hpp>
#include <demix/stats/registry.hpp>
#include <demix/synthesis/microcanonical.hpp>

#include "core/detail/hash.hpp"
#include "core/detail/sizes_text.hpp"
#include "io/detail/tensor_archive.hpp"
#include "optim/detail/lbfgs_archive.hpp"
#include "optim/detail/require_option.hpp"
#include "separation/detail/annuli.hpp"
#include "stats/detail/keywords_text.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace demix {

using detail::annuli;
using detail::sizes_text;

const char* separation_estimator_name(SeparationEstimator e) {
  return e == SeparationEstimator::Realizations ? "realizations" : "bias";
}

const char* separation_start_name(SeparationStart s) {
  switch (s) {
  case SeparationStart::Observation: return "observation";
  case SeparationStart::Wiener: return "wiener";
  case SeparationStart::Matched: return "matched";
  }
  return "?";
}

namespace {

void check_options(const SeparationOptions& o) {
  const detail::OptionCheck require{"SeparationOptions"};
  require(o.eras >= 1, "eras", o.eras, ">= 1");
  require(o.iterations >= 0, "iterations", o.iterations, ">= 0");
  require(o.chunk >= 1, "chunk", o.chunk, ">= 1");
  require(o.drop_below >= 0 && o.drop_below < 1, "drop_below", o.drop_below, "in [0, 1)");
  require(o.spectrum_eras >= 0 && o.spectrum_eras < o.eras, "spectrum_eras", o.spectrum_eras,
          "in [0, eras = " + std::to_string(o.eras) + ")");
  require(o.estimator == SeparationEstimator::Realizations ||
              o.estimator == SeparationEstimator::Bias,
          "estimator", static_cast<double>(o.estimator), "Realizations or Bias");
  require(o.start == SeparationStart::Observation || o.start == SeparationStart::Wiener ||
              o.start == SeparationStart::Matched,
          "start", static_cast<double>(o.start), "Observation, Wiener or Matched");
  require(o.bias_clip >= 0 && o.bias_clip < 1, "bias_clip", o.bias_clip, "in [0, 1)");
  require(o.fresh_realizations >= 0, "fresh_realizations", o.fresh_realizations, ">= 0");
  require(o.fresh_realizations == 0 || o.estimator == SeparationEstimator::Realizations,
          "fresh_realizations", o.fresh_realizations,
          "0 with the Bias estimator (it uses the realizations only when an era starts)");
  for (const StatisticTerm& t : o.statistics)
    require(t.weight >= 0 && std::isfinite(t.weight), "statistics[].weight", t.weight,
            ">= 0 and finite");
  for (const auto& [name, w] : {std::pair{"terms.contamination", o.terms.contamination},
                                {"terms.independence", o.terms.independence},
                                {"terms.template_correlation", o.terms.template_correlation},
                                {"terms.half_missions", o.terms.half_missions},
                                {"terms.residual_variance", o.terms.residual_variance}})
    require(w >= 0 && std::isfinite(w), name, w, ">= 0 and finite");
}

/// Finite maps, complex exactly when the observation is (Q + iU).
void check_finite(const at::Tensor& t, const std::string& what, bool complex) {
  if (t.is_complex() != complex || !(at::isFloatingType(t.scalar_type()) || t.is_complex()))
    throw ValueError("separation: the " + what + " must be " +
                     (complex ? "complex, as the observation is" : "real floating point") +
                     ", got " + std::string(c10::toString(t.scalar_type())));
  if (!at::isfinite(t).all().item<bool>())
    throw ValueError("separation: the " + what + " hold " +
                     std::to_string((~at::isfinite(t)).sum().item<int64_t>()) +
                     " NaN or infinite pixels");
}

/// One statistic of the loss, built once, with the observation's reference per channel.
struct Term {
  std::shared_ptr<const Statistic> statistic;
  std::shared_ptr<const Statistic> cross; ///< its cross statistic, or null when it has none
  double weight = 1;
  std::vector<Reference> reference; // per channel
  std::vector<at::Tensor> observed; // per channel: phi(d) (K)
};

/// A term whose target and per-part spreads come from samples V (N, K) of the statistic: real
/// and imaginary parts whose spread is at most drop_below times the RMS spread are dropped, the
/// weight divided by the parts kept.
MatchTerm term_from_samples(const at::Tensor& V /* (N, K) */, const at::Tensor& target,
                            double weight, double drop_below) {
  const double inf = std::numeric_limits<double>::infinity();
  const bool complex = V.is_complex();
  const at::Tensor sr = (complex ? at::real(V) : V).std(0);
  const at::Tensor si = complex ? at::imag(V).std(0) : at::Tensor();
  const at::Tensor all = complex ? at::cat({sr, si}) : sr;
  const double rms = all.square().mean().sqrt().item<double>();
  const at::Tensor keep_r = sr > drop_below * rms;
  const at::Tensor keep_i = complex ? si > drop_below * rms : at::Tensor();
  const int64_t kept = keep_r.sum().item<int64_t>() + (complex ? keep_i.sum().item<int64_t>() : 0);
  MatchTerm m;
  m.scale = at::where(keep_r, sr, at::full_like(sr, inf));
  if (complex) m.scale_imag = at::where(keep_i, si, at::full_like(si, inf));
  m.target = target;
  m.weight = weight / static_cast<double>(std::max<int64_t>(kept, 1));
  return m;
}

/// (1/M) sum_i loss(u + c_i), the realizations a chunk at a time.
MatchingResult evaluate_realizations(const at::Tensor& noise /* (M, C, H, W) */, int64_t chunk,
                                     const MatchingLoss& loss, const at::Tensor& u,
                                     bool want_grad) {
  const int64_t B = u.size(0), M = noise.size(0);
  MatchingResult out;
  for (int64_t i = 0; i < M; i += chunk) {
    const int64_t m = std::min<int64_t>(chunk, M - i);
    const at::Tensor x = (u.unsqueeze(1) + noise.narrow(0, i, m).unsqueeze(0)).flatten(0, 1);
    const MatchingResult r = loss.evaluate(x, want_grad); // over B * m maps
    const at::Tensor l = r.loss.view({B, m}).sum(1);
    const at::Tensor terms = r.terms.view({-1, B, m}).sum(2);
    out.loss = out.loss.defined() ? out.loss + l : l;
    out.terms = out.terms.defined() ? out.terms + terms : terms;
    if (want_grad) {
      const at::Tensor g = r.grad.view({B, m, u.size(1), u.size(2), u.size(3)}).sum(1);
      out.grad = out.grad.defined() ? out.grad + g : g;
    }
  }
  out.loss = out.loss / static_cast<double>(M);
  out.terms = out.terms / static_cast<double>(M);
  if (want_grad) out.grad = out.grad / static_cast<double>(M);
  return out;
}

} // namespace

struct Separator::State {
  SeparationOptions options;
  Context context;
  at::Tensor d;             // (1, C, H, W)
  at::Tensor noise;         // (M, C, H, W)
  at::Tensor template_map;  // (1, C, H, W) or undefined
  at::Tensor half_missions; // (2, C, H, W) or undefined
  at::Tensor regions;       // (H, W) int64 CPU or undefined
  at::Tensor masks;         // (R, H, W) or (H, W) float64 CPU, or undefined
  /// The residual-variance term's statistic (SeparationTerms::residual_variance), or null.
  std::shared_ptr<const Statistic> region_variance;
  std::vector<Term> terms;
  std::vector<Term> spectrum_terms; ///< the first eras' model with spectrum_eras > 0
  /// phi of every realization, a chunk at a time: f(i, m) gives the statistic's values (m, K) of
  /// realizations [i, i + m).
  template <class F> at::Tensor over_realizations(int64_t count, F&& f) const {
    std::vector<at::Tensor> parts;
    for (int64_t i = 0; i < count; i += options.chunk)
      parts.push_back(f(i, std::min<int64_t>(options.chunk, count - i)));
    return at::cat(parts);
  }
};

Separator::Separator(const at::Tensor& observation, const at::Tensor& contamination,
                     const SeparationOptions& options, const Grid2d& grid, const Context& context,
                     const SeparationMaps& maps)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  check_options(options);
  s.options = options, s.context = context;
  if (!observation.defined() || observation.dim() != 3 || observation.size(1) != grid.height ||
      observation.size(2) != grid.width)
    throw ShapeError("separation: the observation must be (C, " + std::to_string(grid.height) +
                     ", " + std::to_string(grid.width) + "), got " +
                     (observation.defined() ? sizes_text(observation) : std::string("nothing")));
  if (!contamination.defined() || contamination.dim() != 4 ||
      contamination.sizes().slice(1) != observation.sizes())
    throw ShapeError("separation: the contamination realizations must be (M, " +
                     sizes_text(observation).substr(1) + ", got " +
                     (contamination.defined() ? sizes_text(contamination) : "nothing"));
  if (contamination.size(0) < 2)
    throw ValueError("separation: " + std::to_string(contamination.size(0)) +
                     " contamination realization(s); their spread needs at least 2");
  if (options.fresh_realizations > contamination.size(0))
    throw ValueError("SeparationOptions.fresh_realizations = " +
                     std::to_string(options.fresh_realizations) + ": must be <= the " +
                     std::to_string(contamination.size(0)) + " realizations it draws from");
  const bool complex = observation.is_complex();
  check_finite(observation, "observation", complex);
  check_finite(contamination, "contamination realizations", complex);
  if (complex && (options.terms.independence > 0 || options.terms.template_correlation > 0 ||
                  options.terms.half_missions > 0))
    throw ValueError("separation: the independence, template and half-missions terms use cross "
                     "statistics, which complex maps (Q + iU) do not have here");
  s.d = context.to(observation.detach()).unsqueeze(0);
  s.noise = context.to(contamination.detach());
  const SeparationTerms& further = options.terms;
  if (further.template_correlation > 0) {
    if (!maps.template_map.defined() || maps.template_map.sizes() != observation.sizes())
      throw ShapeError(
          "separation: the template correlation term needs a template map " +
          sizes_text(observation) + ", got " +
          (maps.template_map.defined() ? sizes_text(maps.template_map) : std::string("nothing")));
    check_finite(maps.template_map, "template map", complex);
    s.template_map = context.to(maps.template_map.detach()).unsqueeze(0);
  }
  if (further.half_missions > 0) {
    if (!maps.half_missions.defined() || maps.half_missions.dim() != 4 ||
        maps.half_missions.size(0) != 2 ||
        maps.half_missions.sizes().slice(1) != observation.sizes())
      throw ShapeError(
          "separation: the half-missions term needs two half-missions (2, " +
          sizes_text(observation).substr(1) + ", got " +
          (maps.half_missions.defined() ? sizes_text(maps.half_missions) : std::string("nothing")));
    check_finite(maps.half_missions, "half-missions", complex);
    if (contamination.size(0) < 4)
      throw ValueError("separation: the half-missions term pairs the realizations; " +
                       std::to_string(contamination.size(0)) + " give fewer than 2 pairs");
    s.half_missions = context.to(maps.half_missions.detach());
  }
  if (further.residual_variance > 0) {
    if (!maps.regions.defined())
      throw ValueError("separation: the residual-variance term needs a region map (H, W) "
                       "(SeparationMaps::regions)");
    s.region_variance = std::make_shared<RegionVarianceOperator>(maps.regions, grid, context);
    s.regions = maps.regions.detach().to(at::kCPU, at::kLong);
  }
  if (s.options.statistics.empty())
    s.options.statistics.push_back({default_synthesis_statistic(grid), 1.0});
  s.options.lbfgs.max_iterations = options.iterations;
  if (!(s.options.lbfgs.first_step_length > 0)) {
    const double sd = s.d.std().item<double>();
    s.options.lbfgs.first_step_length =
        0.1 * std::sqrt(static_cast<double>(s.d.numel())) * (sd > 0 ? sd : 1.0);
  }
  c10::AutoGradMode no_grad(false);
  const bool channel_pairs = options.cross_channels && observation.size(0) > 1 && !complex;
  const bool cross_terms = channel_pairs || further.independence > 0 ||
                           further.template_correlation > 0 || further.half_missions > 0;
  if (maps.masks.defined()) s.masks = maps.masks.detach().to(at::kCPU, at::kDouble);
  const auto masked =
      [&](std::shared_ptr<const Statistic> stat) -> std::shared_ptr<const Statistic> {
    if (!s.masks.defined()) return stat;
    return std::make_shared<MaskedStatistic>(std::move(stat), s.masks);
  };
  const auto term = [&](const StatisticTerm& st) {
    Term t{masked(make_statistic(st.spec, grid, context)), nullptr, st.weight, {}, {}};
    if (cross_terms && t.statistic->supports_cross())
      t.cross = masked(make_statistic(cross_statistic_spec(st.spec), grid, context));
    for (int64_t c = 0; c < s.d.size(1); ++c) {
      const at::Tensor dc = s.d.select(1, c); // (1, H, W)
      t.reference.push_back(t.statistic->reference(dc));
      t.observed.push_back(t.statistic->forward(dc, t.reference.back()).values[0]);
    }
    return t;
  };
  for (const StatisticTerm& st : s.options.statistics) {
    s.terms.push_back(term(st));
    if (complex && !s.terms.back().statistic->supports_complex())
      throw ValueError(std::string("separation: the statistic ") +
                       s.terms.back().statistic->name() +
                       " does not take complex maps (Q + iU); wph with complex data, ps do");
  }
  if (options.spectrum_eras > 0) s.spectrum_terms.push_back(term({PowerSpectrumOptions{}, 1.0}));
  if (cross_terms && !channel_pairs &&
      std::none_of(s.terms.begin(), s.terms.end(),
                   [](const Term& t) { return t.cross != nullptr; }))
    throw ValueError(std::string("separation: the independence, template and half-missions "
                                 "terms need a statistic with cross statistics (wph, ps), got ") +
                     s.terms.front().statistic->name());
}

Separator::~Separator() = default;
Separator::Separator(Separator&&) noexcept = default;

const SeparationOptions& Separator::options() const { return state_->options; }

SeparationLoss Separator::era_loss(const at::Tensor& estimate, int era) const {
  const State& s = *state_;
  const SeparationOptions& o = s.options;
  const std::vector<Term>& model = era <= o.spectrum_eras ? s.spectrum_terms : s.terms;
  if (!estimate.defined() || estimate.sizes() != s.d.sizes().slice(1))
    throw ShapeError("separation: the estimate must be " + sizes_text(s.d[0]) + ", got " +
                     (estimate.defined() ? sizes_text(estimate) : std::string("nothing")));
  c10::AutoGradMode no_grad(false);
  const at::Tensor e = s.context.to(estimate.detach()).unsqueeze(0); // (1, C, H, W)
  const int64_t M = s.noise.size(0), C = e.size(1);
  std::vector<MatchTerm> main, further;
  const auto add = [](std::vector<MatchTerm>& to, MatchTerm m,
                      const std::shared_ptr<const Statistic>& stat, int channel, int cross_channel,
                      const Reference& reference, const std::string& name) {
    m.statistic = stat, m.channel = channel, m.cross_channel = cross_channel;
    m.reference = reference, m.name = name;
    to.push_back(std::move(m));
  };
  if (s.region_variance) // one term per channel, whatever the era's statistics
    for (int64_t c = 0; c < C; ++c) {
      const at::Tensor nc = s.noise.select(1, c); // (M, H, W)
      const at::Tensor Vr = s.over_realizations(M, [&](int64_t i, int64_t m) {
        return s.region_variance->forward(nc.narrow(0, i, m)).values;
      });
      add(further, term_from_samples(Vr, Vr.mean(0), o.terms.residual_variance, o.drop_below),
          s.region_variance, static_cast<int>(C + c), -1, Reference(),
          "[" + std::to_string(c) + "] residual variance");
    }
  for (const Term& t : model) {
    const std::string name = t.statistic->name();
    const auto cross = [&](const at::Tensor& a, const at::Tensor& b) {
      return t.cross->forward_cross(a, b).values;
    };
    for (int64_t c = 0; c < C; ++c) {
      const std::string ch = "[" + std::to_string(c) + "]";
      const Reference& ref = t.reference[c];
      const at::Tensor ec = e.select(1, c);       // (1, H, W)
      const at::Tensor nc = s.noise.select(1, c); // (M, H, W)
      const auto auto_stat = [&](const at::Tensor& x) {
        return t.statistic->forward(x, ref).values;
      };
      // phi(s~ + c_i) for every realization: (M, K).
      const at::Tensor V = s.over_realizations(
          M, [&](int64_t i, int64_t m) { return auto_stat(ec + nc.narrow(0, i, m)); });
      at::Tensor target = t.observed[c];
      if (o.estimator == SeparationEstimator::Bias) {
        const at::Tensor bias = V.mean(0) - auto_stat(ec)[0]; // < phi(s~ + c_i) - phi(s~) >
        target = t.observed[c] - bias;
        if (o.bias_clip > 0) {
          // Positive parts: the observation's and every sample's real part > 0.
          const bool complex = V.is_complex();
          const at::Tensor obs_r = complex ? at::real(t.observed[c]) : t.observed[c];
          const at::Tensor positive = (obs_r > 0) & ((complex ? at::real(V) : V) > 0).all(0);
          const at::Tensor floor = o.bias_clip * obs_r;
          const at::Tensor target_r = complex ? at::real(target) : target;
          const at::Tensor clipped = at::where(positive, at::maximum(target_r, floor), target_r);
          target = complex ? at::complex(clipped, at::imag(target)) : clipped;
        }
      }
      add(main, term_from_samples(V, target, t.weight, o.drop_below), t.statistic,
          static_cast<int>(c), -1, ref, name + ch);
      const SeparationTerms& w = o.terms;
      const int u = static_cast<int>(c), rest = static_cast<int>(C + c),
                tmpl = static_cast<int>(2 * C + c);
      if (w.contamination > 0) {
        const at::Tensor Vc = s.over_realizations(
            M, [&](int64_t i, int64_t m) { return auto_stat(nc.narrow(0, i, m)); });
        add(further, term_from_samples(Vc, Vc.mean(0), t.weight * w.contamination, o.drop_below),
            t.statistic, rest, -1, ref, name + ch + " contamination");
      }
      if (!t.cross) continue;
      if (w.independence > 0) {
        const at::Tensor Vi = s.over_realizations(M, [&](int64_t i, int64_t m) {
          const at::Tensor n = nc.narrow(0, i, m);
          return cross(ec.expand_as(n), n);
        });
        add(further, term_from_samples(Vi, Vi.mean(0), t.weight * w.independence, o.drop_below),
            t.cross, u, rest, Reference(), name + ch + " independence");
      }
      if (w.template_correlation > 0) {
        const at::Tensor T = s.template_map.select(1, c); // (1, H, W)
        const at::Tensor Vt = s.over_realizations(M, [&](int64_t i, int64_t m) {
          const at::Tensor x = ec + nc.narrow(0, i, m);
          return cross(T.expand_as(x), x);
        });
        const at::Tensor bias = Vt.mean(0) - cross(T, ec)[0];
        add(further,
            term_from_samples(Vt, cross(T, s.d.select(1, c))[0] - bias,
                              t.weight * w.template_correlation, o.drop_below),
            t.cross, tmpl, u, Reference(), name + ch + " template");
      }
      if (w.half_missions > 0) {
        // Pairs (c_2i, c_2i+1), each scaled by sqrt 2: a half-mission's noise.
        const int64_t pairs = M / 2;
        const at::Tensor paired =
            nc.narrow(0, 0, 2 * pairs).view({pairs, 2, nc.size(1), nc.size(2)});
        const at::Tensor Vh = s.over_realizations(pairs, [&](int64_t i, int64_t m) {
          const at::Tensor q = paired.narrow(0, i, m) * std::sqrt(2.0);
          return cross(ec + q.select(1, 0), ec + q.select(1, 1));
        });
        const at::Tensor halves = s.half_missions.select(1, c); // (2, H, W)
        const at::Tensor target_h = cross(halves.narrow(0, 0, 1), halves.narrow(0, 1, 1))[0];
        add(further, term_from_samples(Vh, target_h, t.weight * w.half_missions, o.drop_below),
            t.cross, u, u, Reference(), name + ch + " half-missions");
      }
    }
  }
  // Channel pairs: the cross statistic of the contaminated channels, after every channel's terms.
  for (const Term& t : model) {
    if (!o.cross_channels || !t.cross) continue;
    const auto cross = [&](const at::Tensor& x, const at::Tensor& y) {
      return t.cross->forward_cross(x, y).values;
    };
    for (int64_t a = 0; a < C; ++a)
      for (int64_t b = a + 1; b < C; ++b) {
        const at::Tensor ea = e.select(1, a), eb = e.select(1, b);
        const at::Tensor V = s.over_realizations(M, [&](int64_t i, int64_t m) {
          return cross(ea + s.noise.narrow(0, i, m).select(1, a),
                       eb + s.noise.narrow(0, i, m).select(1, b));
        });
        const at::Tensor observed = cross(s.d.select(1, a), s.d.select(1, b))[0];
        const at::Tensor target = o.estimator == SeparationEstimator::Bias
                                      ? observed - (V.mean(0) - cross(ea, eb)[0])
                                      : observed;
        add(main, term_from_samples(V, target, t.weight, o.drop_below), t.cross,
            static_cast<int>(a), static_cast<int>(b), Reference(),
            std::string(t.statistic->name()) + "[" + std::to_string(a) + "x" + std::to_string(b) +
                "]");
      }
  }
  SeparationLoss out{MatchingLoss(std::move(main)), std::nullopt};
  if (!further.empty()) out.further.emplace(std::move(further));
  return out;
}

MatchingResult Separator::evaluate(const SeparationLoss& loss, const at::Tensor& u, bool want_grad,
                                   std::int64_t draw) const {
  const State& s = *state_;
  if (!u.defined() || u.dim() != 4 || u.sizes().slice(1) != s.d.sizes().slice(1))
    throw ShapeError("separation: maps must be (B, " + sizes_text(s.d[0]).substr(1) + ", got " +
                     (u.defined() ? sizes_text(u) : std::string("nothing")));
  at::Tensor noise = s.noise;
  if (s.options.fresh_realizations > 0 && draw >= 0) {
    // K of the M without replacement, from a CPU generator: the same draw on every device.
    const std::uint64_t key[2] = {s.options.fresh_seed, static_cast<std::uint64_t>(draw)};
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(detail::fnv1a(key, sizeof key));
    const at::Tensor pick = at::randperm(s.noise.size(0), g, at::TensorOptions(at::kLong))
                                .narrow(0, 0, s.options.fresh_realizations);
    noise = s.noise.index_select(0, pick.to(s.noise.device()));
  }
  MatchingResult out = s.options.estimator == SeparationEstimator::Bias
                           ? loss.main.evaluate(u, want_grad)
                           : evaluate_realizations(noise, s.options.chunk, loss.main, u, want_grad);
  if (loss.further) {
    // The maps [u, d - u, T] as channels; d(d - u)/du = -1.
    const int64_t C = u.size(1);
    const at::Tensor T = s.template_map.defined() ? s.template_map : at::zeros_like(s.d);
    const at::Tensor x = at::cat({u, s.d - u, T.expand_as(u)}, 1);
    const MatchingResult r = loss.further->evaluate(x, want_grad);
    out.loss = out.loss + r.loss;
    out.terms = at::cat({out.terms, r.terms});
    if (want_grad) out.grad = out.grad + r.grad.narrow(1, 0, C) - r.grad.narrow(1, C, C);
  }
  return out;
}

SeparationResult
Separator::run(const std::function<void(const SeparationProgress&)>& progress) const {
  return run(SeparationRun{progress, "", 0, ""});
}

namespace {

constexpr const char* kCheckpointFormat = "demix separation checkpoint 1";

/// The loss histories of the eras so far, flattened, with each era's length.
void put_history(detail::TensorArchive& a, const std::vector<std::vector<double>>& eras) {
  std::vector<double> flat;
  std::vector<int64_t> lengths;
  for (const std::vector<double>& e : eras) {
    flat.insert(flat.end(), e.begin(), e.end());
    lengths.push_back(static_cast<int64_t>(e.size()));
  }
  a.put("history", at::tensor(flat, at::kDouble));
  a.put("history_lengths", at::tensor(lengths, at::kLong));
}

std::vector<std::vector<double>> get_history(const detail::TensorArchive& a) {
  const at::Tensor flat = a.tensor("history").to(at::kDouble).contiguous();
  const at::Tensor lengths = a.tensor("history_lengths").to(at::kLong).contiguous();
  std::vector<std::vector<double>> eras;
  int64_t at_ = 0;
  for (int64_t e = 0; e < lengths.numel(); ++e) {
    const int64_t n = lengths.data_ptr<int64_t>()[e];
    eras.emplace_back(flat.data_ptr<double>() + at_, flat.data_ptr<double>() + at_ + n);
    at_ += n;
  }
  return eras;
}

} // namespace

std::string Separator::fingerprint() const {
  const State& s = *state_;
  const SeparationOptions& o = s.options;
  std::ostringstream f;
  f << "observation " << sizes_text(s.d) << " fnv " << detail::tensor_fnv1a(s.d)
    << "; realizations " << sizes_text(s.noise) << " fnv " << detail::tensor_fnv1a(s.noise)
    << "; template fnv " << detail::tensor_fnv1a(s.template_map) << "; half-missions fnv "
    << detail::tensor_fnv1a(s.half_missions) << "; " << separation_estimator_name(o.estimator)
    << " eras " << o.eras << " iterations " << o.iterations << " spectrum_eras " << o.spectrum_eras
    << " start " << separation_start_name(o.start) << " fresh " << o.fresh_realizations << " seed "
    << o.fresh_seed << " chunk " << o.chunk << " drop " << o.drop_below << " clip " << o.bias_clip
    << " cross " << o.cross_channels << " terms " << o.terms.contamination << ","
    << o.terms.independence << "," << o.terms.template_correlation << "," << o.terms.half_missions
    << "," << o.terms.residual_variance << " regions fnv " << detail::tensor_fnv1a(s.regions)
    << " masks fnv " << detail::tensor_fnv1a(s.masks) << "; lbfgs "
    << detail::lbfgs_options_text(o.lbfgs) << "; " << s.context.describe() << "; statistics";
  for (const Term& t : s.terms)
    f << " " << t.statistic->name() << "*" << t.weight << "{" << detail::keywords_text(*t.statistic)
      << "}";
  return f.str();
}

SeparationResult Separator::run(const SeparationRun& run) const {
  const State& s = *state_;
  const auto t0 = std::chrono::steady_clock::now();
  const SeparationOptions& o = s.options;
  if (run.checkpoint_every < 0)
    throw ValueError("SeparationRun.checkpoint_every = " + std::to_string(run.checkpoint_every) +
                     ": must be >= 0");
  const RowGroups one{at::zeros({1}, s.context.options().dtype(at::kLong)), 1};
  // L-BFGS works on real variables: complex maps as (..., 2) views.
  const bool complex = s.d.is_complex();
  const auto to_vars = [&](const at::Tensor& m) {
    return complex ? at::view_as_real(m.contiguous()) : m;
  };
  const auto from_vars = [&](const at::Tensor& x) {
    return complex ? at::view_as_complex(x.contiguous()) : x;
  };
  const std::string print = run.checkpoint.empty() && run.resume.empty() ? "" : fingerprint();
  SeparationResult out;
  // The era in progress: its number, the estimate it started from (its loss is recomputed from
  // it on resume) and its optimiser state.
  int first_era = 1;
  at::Tensor era_start; // (1, C, H, W)
  LbfgsState resumed;
  bool resuming = false;
  if (!run.resume.empty()) {
    const detail::TensorArchive a = detail::TensorArchive::load(run.resume);
    if (!a.has("format") || a.text("format") != kCheckpointFormat)
      throw FormatError(run.resume + ": not a demix separation checkpoint (of this version)");
    if (a.text("fingerprint") != print)
      throw ValueError(run.resume +
                       ": the checkpoint was written by another separation (other maps, "
                       "realizations, options or device); it holds\n  " +
                       a.text("fingerprint") + "\nthis run is\n  " + print);
    first_era = static_cast<int>(a.integer("era"));
    era_start = from_vars(a.tensor("era_start").to(s.context.device()));
    resumed = detail::get_lbfgs_state(a, s.context);
    out.loss_history = get_history(a);
    const at::Tensor kept = a.tensor("kept_parts").to(at::kLong).contiguous();
    out.kept_parts.assign(kept.data_ptr<int64_t>(), kept.data_ptr<int64_t>() + kept.numel());
    resuming = true;
  } else {
    era_start = s.d;
    if (o.start != SeparationStart::Observation)
      era_start = wiener_filter(s.d[0], s.noise, {},
                                o.start == SeparationStart::Wiener ? FilterGain::Wiener
                                                                   : FilterGain::Matched)
                      .unsqueeze(0);
  }
  const auto save = [&](int era, const LbfgsState& st,
                        const std::vector<std::vector<double>>& histories) {
    detail::TensorArchive a;
    a.put_text("format", kCheckpointFormat);
    a.put_text("fingerprint", print);
    a.put_int("era", era);
    a.put("era_start", to_vars(era_start));
    detail::put_lbfgs_state(a, st);
    put_history(a, histories);
    a.put("kept_parts", at::tensor(out.kept_parts, at::kLong));
    a.save(run.checkpoint);
  };
  at::Tensor estimate = era_start;
  for (int era = first_era; era <= o.eras; ++era) {
    const SeparationLoss loss = era_loss(era_start[0], era);
    if (!resuming) {
      int64_t kept = 0;
      for (const MatchingLoss* l : {&loss.main, loss.further ? &*loss.further : nullptr})
        for (const MatchTerm& t : l ? l->terms() : std::vector<MatchTerm>{}) {
          kept += at::isfinite(t.scale).sum().item<int64_t>();
          if (t.scale_imag.defined()) kept += at::isfinite(t.scale_imag).sum().item<int64_t>();
        }
      out.kept_parts.push_back(kept);
    }
    // Evaluations of this era so far: the number of each fresh draw (a resumed era goes on
    // counting from its saved state).
    std::int64_t calls = resuming ? resumed.evaluations : 0;
    LbfgsObjective f;
    f.value_and_grad = [&](const at::Tensor& x) {
      const std::int64_t draw = (static_cast<std::int64_t>(era) << 32) + calls++;
      MatchingResult r = evaluate(loss, from_vars(x), true, draw);
      return std::make_pair(r.loss, to_vars(r.grad));
    };
    LbfgsState st;
    if (resuming) {
      st = std::move(resumed); // the era's history so far is the last of out.loss_history
      resuming = false;
    } else {
      st = lbfgs_start(f, to_vars(era_start), one, o.lbfgs);
      out.loss_history.push_back({st.value.item<double>()});
    }
    std::vector<double>& history = out.loss_history.back();
    int saved = -1;
    lbfgs_run(f, st, one, o.lbfgs, [&](const LbfgsState& now) {
      history.push_back(now.value_host.item<double>());
      if (!run.checkpoint.empty() && run.checkpoint_every > 0 &&
          now.iteration % run.checkpoint_every == 0) {
        save(era, now, out.loss_history);
        saved = now.iteration;
      }
      if (run.progress) run.progress({era, o.eras, now.iteration, o.iterations, history.back()});
    });
    if (!run.checkpoint.empty() && saved != st.iteration) save(era, st, out.loss_history);
    estimate = from_vars(st.x);
    era_start = estimate;
  }
  out.signal = estimate[0];
  out.contamination = s.d[0] - out.signal;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

namespace {

/// float64, or complex128 for complex maps.
at::Tensor to_double(const at::Tensor& t) {
  return t.to(t.is_complex() ? at::kComplexDouble : at::kDouble);
}

/// Per-mode power (C, H, W) averaged over each annulus and put back on the modes.
at::Tensor annulus_mean(const at::Tensor& power, const at::Tensor& index, int64_t n) {
  const int64_t C = power.size(0);
  const at::Tensor flat = index.flatten();
  const at::Tensor counts =
      at::zeros({n}, power.options()).index_add(0, flat, at::ones_like(flat, power.options()));
  at::Tensor sums = at::zeros({C, n}, power.options()).index_add(1, flat, power.flatten(1));
  return (sums / counts.clamp_min(1)).index_select(1, flat).view(power.sizes());
}

} // namespace

namespace {

/// d's Fourier transform and the mean powers of d and of the realizations per integer-|k|
/// annulus: what the Wiener filter and the spectrum estimate share (the realizations' transforms,
/// M maps, are the costly part: done once).
struct AnnulusPowers {
  at::Tensor D;      // (C, H, W) complex128, fft2 of d
  at::Tensor flat;   // (H W) int64: each mode's annulus, on D's device
  int64_t n = 0;     // annuli
  at::Tensor counts; // (n) float64 CPU: modes per annulus
  at::Tensor pd, pc; // (C, n) float64 CPU: mean |fft|^2 of d, of the realizations (averaged)
  /// Annulus values (C, n) put back on the modes: (C, H, W) on D's device.
  at::Tensor per_mode(const at::Tensor& annulus) const {
    return annulus.to(D.device()).index_select(1, flat).view(D.sizes());
  }
};

AnnulusPowers annulus_powers(const at::Tensor& observation, const at::Tensor& contamination,
                             const char* caller) {
  if (!observation.defined() || observation.dim() != 3 || !contamination.defined() ||
      contamination.dim() != 4 || contamination.sizes().slice(1) != observation.sizes())
    throw ShapeError(std::string(caller) +
                     ": the observation must be (C, H, W) and the realizations (M, C, H, W) of "
                     "the same maps, got " +
                     (observation.defined() ? sizes_text(observation) : "nothing") + " and " +
                     (contamination.defined() ? sizes_text(contamination) : "nothing"));
  AnnulusPowers p;
  const int64_t C = observation.size(0);
  p.D = at::fft_fft2(to_double(observation));
  const auto [index, n] =
      annuli(observation.size(1), observation.size(2), p.D.options().device(p.D.device()));
  p.flat = index.flatten(), p.n = n;
  const auto per_annulus = [&](const at::Tensor& power) { // (C, H, W) -> (C, n) on the CPU
    return at::zeros({C, n}, power.options()).index_add(1, p.flat, power.flatten(1)).cpu();
  };
  p.counts = at::bincount(p.flat.cpu(), {}, n).to(at::kDouble);
  p.pd = per_annulus(p.D.abs().square()) / p.counts.clamp_min(1);
  p.pc = per_annulus(at::fft_fft2(to_double(contamination)).abs().square().mean(0)) /
         p.counts.clamp_min(1);
  return p;
}

/// estimate_signal_power's rule, per annulus: (C, n) float64 CPU.
at::Tensor signal_power_per_annulus(const AnnulusPowers& p) {
  const int64_t n = p.n;
  at::Tensor ps = (p.pd - p.pc).clamp_min(0).contiguous(); // (C, n)
  const double* d_ = p.pd.data_ptr<double>();
  const double* c_ = p.pc.data_ptr<double>();
  const double* m_ = p.counts.data_ptr<double>();
  double* p_ = ps.data_ptr<double>();
  for (int64_t ch = 0; ch < ps.size(0); ++ch) {
    const double* dch = d_ + ch * n;
    const double* cch = c_ + ch * n;
    double* pch = p_ + ch * n;
    const auto detected = [&](int64_t k) {
      return m_[k] > 0 && dch[k] - cch[k] > 3 * dch[k] * std::sqrt(2 / m_[k]);
    };
    int64_t last = 0;
    for (int64_t k = 3; k < n; ++k)
      if (detected(k) && detected(k - 1) && detected(k - 2)) last = k;
    if (last == 0 || last + 1 >= n) continue;
    // Least squares of log P against log k over the detected annuli of [last / 4, last]: a
    // narrower range follows a steepening spectrum more closely but fits the noise of the last
    // annuli (on a k^-3 field, [last / 2, last] missed the power by 2x).
    double sx = 0, sy = 0, sxx = 0, sxy = 0, count = 0;
    for (int64_t k = std::max<int64_t>(1, last / 4); k <= last; ++k)
      if (detected(k)) {
        const double x = std::log(static_cast<double>(k)), y = std::log(dch[k] - cch[k]);
        sx += x, sy += y, sxx += x * x, sxy += x * y, count += 1;
      }
    const double det = count * sxx - sx * sx;
    if (count < 3 || !(det > 0)) continue;
    const double slope = (count * sxy - sx * sy) / det, intercept = (sy - slope * sx) / count;
    for (int64_t k = last + 1; k < n; ++k)
      pch[k] = std::exp(intercept + slope * std::log(static_cast<double>(k)));
  }
  return ps;
}

} // namespace

at::Tensor estimate_signal_power(const at::Tensor& observation, const at::Tensor& contamination) {
  const AnnulusPowers p = annulus_powers(observation, contamination, "estimate_signal_power");
  return p.per_mode(signal_power_per_annulus(p));
}

at::Tensor radial_average(const at::Tensor& power) {
  if (!power.defined() || power.dim() != 3 || power.is_complex())
    throw ShapeError("radial_average: the power must be real (C, H, W), got " +
                     (power.defined() ? sizes_text(power) : std::string("nothing")));
  const auto [index, n] = annuli(power.size(1), power.size(2), power.options());
  return annulus_mean(power, index, n);
}

at::Tensor wiener_filter(const at::Tensor& observation, const at::Tensor& contamination,
                         const at::Tensor& signal_power, FilterGain gain_kind) {
  const AnnulusPowers p = annulus_powers(observation, contamination, "wiener_filter");
  if (signal_power.defined() && signal_power.sizes() != observation.sizes())
    throw ShapeError("wiener_filter: the signal power must be per mode, " +
                     sizes_text(observation) + ", got " + sizes_text(signal_power));
  const at::Tensor pc = p.per_mode(p.pc);
  const at::Tensor ps = signal_power.defined() ? signal_power.to(p.D.device(), at::kDouble)
                                               : p.per_mode(signal_power_per_annulus(p));
  const at::Tensor total = ps + pc;
  at::Tensor gain = at::where(total > 0, ps / total.clamp_min(1e-300), at::zeros_like(ps));
  if (gain_kind == FilterGain::Matched) gain = gain.sqrt();
  const at::Tensor filtered = at::fft_ifft2(p.D * gain);
  return (observation.is_complex() ? filtered : at::real(filtered)).to(observation.scalar_type());
}

} // namespace demix

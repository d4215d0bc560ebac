#include <demix/core/errors.hpp>
#include <demix/stats/loss.hpp>
#include <demix/synthesis/objective.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <variant>

namespace demix {

using detail::sizes_text;

namespace {

/// ShapeError unless t is (K) or (B, K).
void check_coefficient_rows(const at::Tensor& t, int64_t K, const std::string& what) {
  if (t.dim() < 1 || t.dim() > 2 || t.size(-1) != K)
    throw ShapeError(what + " must be (" + std::to_string(K) + ") or (B, " + std::to_string(K) +
                     "), the statistic's coefficient count; got " + sizes_text(t));
}

} // namespace

MatchingLoss::MatchingLoss(std::vector<MatchTerm> terms) : terms_(std::move(terms)) {
  if (terms_.empty()) throw ValueError("matching loss: no terms");
  for (size_t i = 0; i < terms_.size(); ++i) {
    const MatchTerm& t = terms_[i];
    const std::string what =
        "matching loss term " + std::to_string(i) + (t.name.empty() ? "" : " (" + t.name + ")");
    if (!t.statistic) throw ValueError(what + ": no statistic");
    if (!(t.weight >= 0) || !std::isfinite(t.weight))
      throw ValueError(what + ": weight " + std::to_string(t.weight) + " must be >= 0");
    if (t.channel < 0 || t.cross_channel < -1)
      throw ValueError(what + ": negative channel " +
                       std::to_string(std::min(t.channel, t.cross_channel)));
    if (t.cross_channel >= 0 && !t.statistic->supports_cross())
      throw ValueError(what + ": " + t.statistic->name() + " has no cross statistics");
    if (!t.target.defined()) throw ValueError(what + ": no target");
    const int64_t K = t.statistic->size();
    check_coefficient_rows(t.target, K, what + ": the target");
    // 1 / scale^2, for the scale of the residuals (or of their imaginary parts).
    const auto weights_of = [&](const at::Tensor& scale, const std::string& which) {
      if (!scale.defined()) return at::Tensor();
      check_coefficient_rows(scale, K, what + ": " + which);
      if (scale.is_complex() || !(scale > 0).all().item<bool>())
        throw ValueError(what + ": every value of " + which + " must be real and > 0");
      return scale.to(t.target.device()).square().reciprocal();
    };
    if (t.scale_imag.defined() && !t.scale.defined())
      throw ValueError(what + ": scale_imag without scale");
    weights_.push_back(weights_of(t.scale, "the scale"));
    weights_imag_.push_back(weights_of(t.scale_imag, "the imaginary parts' scale"));
    channels_ = std::max({channels_, t.channel + 1, t.cross_channel + 1});
  }
}

MatchingResult MatchingLoss::evaluate(const at::Tensor& x, bool want_grad) const {
  if (!x.defined() || x.dim() != 4)
    throw ShapeError("matching loss: maps must be (B, C, H, W), got " +
                     (x.defined() ? sizes_text(x) : std::string("nothing")));
  if (x.size(1) < channels_)
    throw ShapeError("matching loss: the terms read " + std::to_string(channels_) +
                     " channels, the maps have " + std::to_string(x.size(1)) + ": " +
                     sizes_text(x));
  const int64_t B = x.size(0);
  const at::Tensor xd = x.detach();
  const auto real = xd.options().dtype(c10::toRealValueType(xd.scalar_type()));
  MatchingResult out{at::zeros({B}, real), want_grad ? at::zeros_like(xd) : at::Tensor(),
                     at::zeros({static_cast<int64_t>(terms_.size()), B}, real)};
  for (size_t i = 0; i < terms_.size(); ++i) {
    const MatchTerm& t = terms_[i];
    const SquaredDistance distance(t.target, weights_[i], weights_imag_[i]);
    at::Tensor loss; // (B)
    if (t.cross_channel < 0) {
      const LossResult r =
          t.statistic->loss_and_grad(xd.select(1, t.channel), distance, t.reference, want_grad);
      loss = r.loss;
      if (want_grad) out.grad.select(1, t.channel).add_(r.grad.to(xd.dtype()), t.weight);
    } else {
      // Cross statistics have no chunked engine: autograd over forward_cross.
      c10::AutoGradMode grad_mode(want_grad);
      const at::Tensor a = xd.select(1, t.channel).clone().requires_grad_(want_grad);
      const at::Tensor b = xd.select(1, t.cross_channel).clone().requires_grad_(want_grad);
      const at::Tensor values = t.statistic->forward_cross(a, b, t.reference).values; // (B, K)
      const at::Tensor rows = at::arange(values.size(1), values.options().dtype(at::kLong));
      const at::Tensor per_map = distance.chunk(values, rows, 0); // (B)
      if (want_grad) {
        const auto g = torch::autograd::grad({per_map.sum()}, {a, b});
        out.grad.select(1, t.channel).add_(g[0].to(xd.dtype()), t.weight);
        out.grad.select(1, t.cross_channel).add_(g[1].to(xd.dtype()), t.weight);
      }
      loss = per_map.detach();
    }
    out.terms[static_cast<int64_t>(i)].copy_(loss * t.weight);
  }
  out.loss = out.terms.sum(0);
  return out;
}

const char* term_scale_name(TermScale scale) {
  switch (scale) {
  case TermScale::Auto: return "auto";
  case TermScale::None: return "none";
  case TermScale::Modulus: return "modulus";
  case TermScale::ClassRms: return "class-rms";
  case TermScale::StatisticRms: return "statistic-rms";
  case TermScale::Spread: return "spread";
  }
  return "?";
}

namespace {

/// The reference of T target maps (B0 = T) as one reference (B0 = 1): each tensor averaged over
/// the maps, so that samples are normalised alike whichever target they resemble most.
Reference mean_reference(const Reference& ref) {
  if (ref.empty()) return ref;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : ref.tensors()) tensors.emplace_back(name, t.mean(0, true));
  return {ref.statistic(), std::move(tensors)};
}

/// RMS of |target| over each coefficient's class, broadcast back to the coefficients: (K) real.
at::Tensor class_rms(const at::Tensor& target /* (K) */, const at::Tensor& class_id /* (K) */) {
  const at::Tensor id = class_id.to(target.device());
  const int64_t n_classes = class_id.numel() ? class_id.max().item<int64_t>() + 1 : 0;
  const at::Tensor sq = target.abs().square();
  const at::Tensor sums = at::zeros({n_classes}, sq.options()).index_add(0, id, sq);
  const at::Tensor counts =
      at::zeros({n_classes}, sq.options()).index_add(0, id, at::ones_like(sq));
  return (sums / counts.clamp_min(1)).sqrt().index_select(0, id);
}

/// One term's target and scale from the statistics of the T target maps (T, K).
std::pair<at::Tensor, at::Tensor> target_and_scale(const at::Tensor& values /* (T, K) */,
                                                   const at::Tensor& class_id, TermScale scale,
                                                   double floor, bool spectrum) {
  const at::Tensor target = values.mean(0); // (K)
  const at::Tensor rms = class_rms(target, class_id);
  if (scale == TermScale::Auto)
    scale = values.size(0) > 1 ? TermScale::Spread
            : spectrum         ? TermScale::Modulus
                               : TermScale::StatisticRms;
  at::Tensor s;
  switch (scale) {
  case TermScale::None: return {target, at::Tensor()};
  case TermScale::Modulus: s = target.abs(); break;
  case TermScale::ClassRms: s = rms; break;
  case TermScale::StatisticRms: s = target.abs().square().mean().sqrt().expand_as(rms); break;
  case TermScale::Spread: s = values.std(0); break; // unbiased, over the target maps
  case TermScale::Auto: break;                      // resolved above
  }
  // Floored by the class's size, and by the smallest positive double for all-zero classes.
  const at::Tensor low = (floor * rms).clamp_min(1e-300);
  return {target, at::maximum(s.abs(), low)};
}

} // namespace

StatisticSpec cross_statistic_spec(StatisticSpec spec) {
  if (auto* wph = std::get_if<WphOptions>(&spec)) wph->norm = WphNorm::None;
  return spec;
}

MatchingLoss match_targets(const at::Tensor& targets, const MatchingOptions& options,
                           const Grid2d& grid, const Context& context) {
  if (options.statistics.empty()) throw ValueError("match_targets: no statistic to match");
  if (!(options.scale_floor > 0 && options.scale_floor <= 1))
    throw ValueError("match_targets: scale_floor " + std::to_string(options.scale_floor) +
                     " must be in (0, 1]");
  if (!targets.defined() || targets.dim() != 4 || targets.size(0) < 1 || targets.size(1) < 1 ||
      targets.size(2) != grid.height || targets.size(3) != grid.width)
    throw ShapeError("match_targets: targets must be (T, C, " + std::to_string(grid.height) + ", " +
                     std::to_string(grid.width) + ") for a " + to_string(grid) + " grid, got " +
                     (targets.defined() ? sizes_text(targets) : "nothing"));
  const int64_t T = targets.size(0), C = targets.size(1);
  if (options.scale == TermScale::Spread && T < 2)
    throw ValueError("match_targets: the spread over target maps needs two or more, got one "
                     "(use scale auto, class-rms or modulus)");
  const at::Tensor x = context.to(targets);
  std::vector<MatchTerm> terms;
  for (const StatisticTerm& st : options.statistics) {
    const std::shared_ptr<const Statistic> stat = make_statistic(st.spec, grid, context);
    const std::string name = stat->name();
    const at::Tensor& class_id = stat->labels().class_id;
    const bool spectrum = std::holds_alternative<PowerSpectrumOptions>(st.spec);
    c10::AutoGradMode no_grad(false);
    for (int64_t c = 0; c < C; ++c) {
      const at::Tensor maps = x.select(1, c); // (T, H, W)
      const Reference ref = mean_reference(stat->reference(maps));
      auto [target, scale] = target_and_scale(stat->forward(maps, ref).values, class_id,
                                              options.scale, options.scale_floor, spectrum);
      terms.push_back({stat, static_cast<int>(c), -1, target, scale, ref, st.weight,
                       name + "[" + std::to_string(c) + "]", at::Tensor()});
    }
    if (!options.cross || C < 2 || !stat->supports_cross()) continue;
    const std::shared_ptr<const Statistic> cross =
        make_statistic(cross_statistic_spec(st.spec), grid, context);
    for (int64_t a = 0; a < C; ++a)
      for (int64_t b = a + 1; b < C; ++b) {
        const at::Tensor values = cross->forward_cross(x.select(1, a), x.select(1, b)).values;
        auto [target, scale] =
            target_and_scale(values, class_id, options.scale, options.scale_floor, spectrum);
        terms.push_back(
            {cross, static_cast<int>(a), static_cast<int>(b), target, scale, Reference(), st.weight,
             name + "[" + std::to_string(a) + "x" + std::to_string(b) + "]", at::Tensor()});
      }
  }
  return MatchingLoss(std::move(terms));
}

} // namespace demix

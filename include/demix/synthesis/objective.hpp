#pragma once
// A loss that matches the statistics of maps to targets: the objective of microcanonical
// synthesis, and of component separation next. A term is "statistic, inputs, target, weights":
// one statistic of one channel of the maps (or a cross statistic of two channels), the
// coefficients it should take, and the scale each residual is divided by, so that terms of
// different statistics are commensurable. Auto terms go through the statistic's loss_and_grad
// (WPH: its chunked, memory-bounded engine); cross terms through autograd over forward_cross.

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/reference.hpp>
#include <demix/stats/registry.hpp>
#include <demix/stats/statistic.hpp>

#include <ATen/core/TensorBody.h>

#include <memory>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// weight * sum_k |phi_k(inputs) - target_k|^2 / scale_k^2, per map.
struct MatchTerm {
  std::shared_ptr<const Statistic> statistic;
  int channel = 0;        ///< the input: channel `channel` of the maps (axis 1), >= 0
  int cross_channel = -1; ///< >= 0: the cross statistic phi(x_channel, x_cross_channel) instead
  at::Tensor target;      // (K) for every map, or (B, K) one row per map; real or complex
  at::Tensor scale;    // (K) or (B, K) real > 0 (+inf: the residual does not count); undefined: 1
  Reference reference; ///< passed to the statistic (empty: each map normalised by its own)
  double weight = 1.0; ///< >= 0
  std::string name;    ///< for loss histories and reports, e.g. "wph[0]", "ps[0x1]"
  /// (K) or (B, K) real > 0, or undefined: then `scale` divides the real parts of the residuals
  /// and this the imaginary parts (component separation's per-part spreads). Needs `scale`.
  at::Tensor scale_imag;
};

/// What MatchingLoss::evaluate returns.
struct MatchingResult {
  at::Tensor loss;  ///< (B) real, the sum of the terms, detached
  at::Tensor grad;  ///< like x; undefined when the gradient was not asked for
  at::Tensor terms; ///< (T, B) real: each term's contribution (weight included), detached
};

class MatchingLoss {
public:
  /// ValueError for no terms, a null statistic, a negative or non-finite weight, a negative
  /// channel, a cross term of a statistic without cross statistics, or a scale that is not > 0;
  /// ShapeError for a target or scale that is not (K) or (B, K) with the statistic's K.
  explicit MatchingLoss(std::vector<MatchTerm> terms);

  const std::vector<MatchTerm>& terms() const { return terms_; }
  /// 1 + the largest channel a term reads: the maps need at least this many channels.
  int channels() const { return channels_; }

  /// The loss of each map of x (B, C, H, W), real or complex as the statistics accept, and (if
  /// want_grad) its gradient. ShapeError for x of another rank or with too few channels.
  MatchingResult evaluate(const at::Tensor& x /* (B, C, H, W) */, bool want_grad = true) const;

private:
  std::vector<MatchTerm> terms_;
  std::vector<at::Tensor> weights_, weights_imag_; // per term: 1 / scale^2, or undefined
  int channels_ = 0;
};

/// How each coefficient's residual is scaled (MatchTerm::scale) when targets are maps.
enum class TermScale {
  /// Spread with two or more target maps; with one, Modulus for the power spectrum (positive,
  /// spanning decades: each bin relative, or its high-k bins would not weigh at all; on a 128^2
  /// dust crop with WPH + PS, StatisticRms left the spectrum's low-k bins off by up to 2x) and
  /// StatisticRms for the others.
  Auto,
  /// No scaling: residuals in the statistic's own units (pywph's synthesis loss).
  None,
  /// |target_k|: relative residuals, for positive statistics spanning decades (power spectrum).
  Modulus,
  /// The RMS of |target| over the coefficient's class (S11, C01, P...): relative at the scale of
  /// the class, so that every class and statistic weighs alike, keeping the statistic's own
  /// weighting inside a class.
  ClassRms,
  /// The RMS of |target| over all the statistic's coefficients: one number per term, so that each
  /// statistic keeps its own weighting of its coefficients (with one statistic, pywph's loss up to
  /// a constant factor, to which L-BFGS is blind) while statistics of different units weigh alike.
  /// The default with one target map: on a 128^2 dust crop (WPH J5, 100 iterations) ClassRms
  /// and Modulus left samples with too little contrast and too much pixel-scale noise, this did
  /// not.
  StatisticRms,
  /// The standard deviation of the coefficient over the target maps (two or more): the residual
  /// in units of the targets' own variation (sigma_k), as component separation normalises.
  Spread,
};

/// One statistic of a matching loss and its weight.
struct StatisticTerm {
  StatisticSpec spec;
  double weight = 1.0; ///< >= 0
};

struct MatchingOptions {
  /// The statistics to match, each for every channel (at least one).
  std::vector<StatisticTerm> statistics;
  /// With several channels, also the cross statistics of every pair of channels, for statistics
  /// that have them. WPH cross terms are computed without normalisation (norm None): its Auto
  /// normalisation of a cross term holds each map's own deviations constant, which would make the
  /// gradient differ from the loss's slope; the term's scale puts them on the same footing.
  bool cross = true;
  TermScale scale = TermScale::Auto;
  /// Every scale is at least this fraction of the RMS of |target| over its class, so that a
  /// coefficient whose target or spread vanishes (a normalised S11 of exactly 1 in every target)
  /// does not weigh without bound. In (0, 1].
  double scale_floor = 1e-3;
};

/// The matching loss of `targets` (T, C, H, W) real or complex: for each statistic, each channel
/// c a term whose target is the mean over the T maps of phi(targets[:, c]), normalised by the
/// reference of those maps averaged over them (statistics that take one), and with two or more
/// channels each pair's cross term. Statistics are built once on `grid` and `context` and shared
/// by the terms. The operators' own errors; ValueError for no statistic, TermScale::Spread with
/// one target map, or a scale_floor outside (0, 1]; ShapeError for targets that are not 4-D or
/// do not fit the grid.
MatchingLoss match_targets(const at::Tensor& targets /* (T, C, H, W) */,
                           const MatchingOptions& options, const Grid2d& grid,
                           const Context& context);

/// The statistic of cross terms: WPH without its Auto normalisation, which divides by each map's
/// own deviations held constant, so that the gradient would not be the loss's (a descent would
/// follow a wrong slope); a term's scale makes the unnormalised coefficients commensurable. Other
/// statistics unchanged.
StatisticSpec cross_statistic_spec(StatisticSpec spec);

/// "None", "Modulus"... as the command line spells them ("none", "modulus", "class-rms",
/// "spread", "auto").
const char* term_scale_name(TermScale scale);

} // namespace demix
#pragma GCC visibility pop

#pragma once
// Statistical component separation (Regaldo-Saint Blancard et al. 2021; Delouis et al. 2022):
// recover a signal s from an observation d = s + c when s has no model and the contamination c is
// known only by realizations c_1..c_M (instrument noise simulations, examples of a second
// component). The estimate s~ is the map whose statistics, once contaminated, look like d's:
//  - Realizations: L(u) = (1/M) sum_i sum_k |phi_k(u + c_i) - phi_k(d)|^2 / sigma_k^2, the M
//    realizations in every evaluation (batched);
//  - Bias: L(u) = sum_k |phi_k(u) - (phi_k(d) - B_k)|^2 / sigma_k^2 with
//    B_k = < phi_k(s~ + c_i) - phi_k(s~) >_i, the realizations only when B is computed.
// sigma_k is the standard deviation over the realizations of phi_k(s~ + c_i), real and imaginary
// parts apart. The descent runs in eras: at the start of each, sigma (and B) are computed at the
// current estimate s~ (at the first, the starting map: by default the spectrum-matched linear
// filter of d), and L-BFGS restarts from s~ with a fresh history. Further terms (contamination,
// independence, template, half-missions) and the cross statistics of channel pairs join the loss.

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/optim/lbfgs.hpp>
#include <demix/synthesis/objective.hpp>

#include <ATen/core/TensorBody.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

enum class SeparationEstimator {
  Realizations, ///< the realizations in the loss (Regaldo-Saint Blancard et al. 2021)
  Bias,         ///< a bias-corrected target (Delouis et al. 2022): one map per evaluation
};

/// Where the first era starts.
enum class SeparationStart {
  Observation, ///< u = d (the papers' codes)
  Wiener,      ///< the Wiener filter with the estimated spectrum (FilterGain::Wiener)
  /// The spectrum-matched filter (FilterGain::Matched): the signal's power at every scale, and
  /// the pixel correlation of a linear filter; the statistics then shape the map.
  Matched,
};

/// Weights of the further terms of the loss (Delouis et al. 2022; Regaldo-Saint Blancard et al.
/// 2021), relative to the main term's 1; 0 switches a term off. Each uses the era's statistics
/// for every channel (cross terms: the statistics that have cross statistics, WPH without its
/// normalisation); its targets and per-part spreads come from the realizations at the era's
/// starting estimate s~, parts are dropped and its sum divided by the parts it keeps as for the
/// main term.
struct SeparationTerms {
  /// phi(d - u) matches < phi(c_i) >_i (spread: of phi(c_i)).
  double contamination = 0;
  /// The cross statistic phi(u, d - u) matches < phi(s~, c_i) >_i (spread: of phi(s~, c_i)): the
  /// separated components are as independent as the truth and the contamination are.
  double independence = 0;
  /// phi(T, u) matches phi(T, d) - < phi(T, s~ + c_i) - phi(T, s~) >_i for a template T correlated
  /// with s (SeparationMaps::template_map; spread: of phi(T, s~ + c_i)).
  double template_correlation = 0;
  /// phi(u, u) matches phi(d1, d2) of two half-missions, whose noises are independent
  /// (SeparationMaps::half_missions; both cross statistics). Spread: of phi(s~ + sqrt2 c_2i,
  /// s~ + sqrt2 c_2i+1) over the pairs of realizations, each half-mission having twice the noise
  /// variance of d = (d1 + d2) / 2; needs M >= 4.
  double half_missions = 0;
  /// The variance of d - u in each region of SeparationMaps::regions matches the mean variance
  /// of the realizations there (spread: over the realizations): for contaminations whose level
  /// varies over the map (stats/region_variance.hpp).
  double residual_variance = 0;
};

/// Maps beside the observation that further terms use.
struct SeparationMaps {
  at::Tensor template_map;  ///< (C, H, W) T, for SeparationTerms::template_correlation
  at::Tensor half_missions; ///< (2, C, H, W) d1 and d2, for SeparationTerms::half_missions
  /// (H, W) integer labels 0..R-1 (negative: no region), for SeparationTerms::residual_variance.
  at::Tensor regions;
  /// (R, H, W) or (H, W) weights in [0, 1]: every statistic of the loss is computed on the maps
  /// times each mask (stats/masked.hpp): 0 excludes pixels (and they are then free), apodised
  /// edges soften the cut, several masks give statistics per region.
  at::Tensor masks;
};

struct SeparationOptions {
  /// The statistics of the loss, each for every channel, with their weights. Empty: WPH with the
  /// registry's J and L for the grid, dn = 2, norm auto. Statistics with a reference (WPH and
  /// scov norm auto) are normalised by the observation's, throughout.
  std::vector<StatisticTerm> statistics;
  SeparationEstimator estimator = SeparationEstimator::Bias;
  int eras = 5;        ///< outer iterations, >= 1
  int iterations = 50; ///< L-BFGS iterations per era, >= 0
  /// A staged schedule: the first `spectrum_eras` eras match the power spectrum only (its
  /// integer-|k| bins), the later ones the statistics above. In [0, eras).
  int spectrum_eras = 0;
  /// Matched by default: on a 128^2 crop of the shared dust map at SNR 1 (WPH + PS, bias
  /// estimator, 3 eras of 30 iterations) the descent from d ended at a loss 9 times higher, with
  /// the noise left at small scales (pixel correlation with the truth 0.77), than from the
  /// matched filter (0.93): from d, L-BFGS stays where the statistics barely see the noise.
  SeparationStart start = SeparationStart::Matched;
  SeparationTerms terms; ///< further terms, off by default
  /// With several channels (frequencies, I Q U), also the cross statistics phi(x_a, x_b) of every
  /// pair of channels in the main term, estimated like the auto statistics (Realizations: of
  /// u + c_i channel by channel; Bias: the bias of the cross statistic), for the statistics that
  /// have cross statistics (WPH without normalisation).
  bool cross_channels = true;
  /// Bias estimator: a real part whose observed value and every phi(s~ + c_i) are positive (a
  /// positive statistic: power spectrum, WPH moduli) gets a target of at least bias_clip times
  /// the observed value, so that a bias estimated larger than the observation (noise-dominated
  /// coefficients) does not ask for a negative power. 0: no clipping. In [0, 1).
  double bias_clip = 0;
  /// Realizations estimator: 0 (default) puts all M realizations in every evaluation, the same
  /// set throughout the run. K in [1, M]: every evaluation draws K of the M afresh, without
  /// replacement (from `fresh_seed`, the era and the evaluation's number: a run and its resumption
  /// draw alike), so that s~ cannot fit the particular noise of a fixed set, and an evaluation
  /// costs K maps. L-BFGS then descends a noisy objective (its line search compares values of
  /// different draws): give it a large pool (M realizations drawn from a model are cheap) and
  /// K large enough that the draws' losses agree. The spreads and the further terms use all M.
  int fresh_realizations = 0;
  std::uint64_t fresh_seed = 0; ///< of the fresh draws
  int chunk = 25; ///< realizations per statistic call (memory: a chunk of maps and their
                  ///< statistics' graph at once), >= 1
  /// A real or imaginary part of a coefficient whose spread over the realizations is at most
  /// this fraction of the RMS spread of its statistic's parts is dropped (no information on it:
  /// e.g. WPH coefficients that the normalisation fixes, imaginary parts that vanish by
  /// symmetry); each statistic's loss is divided by the number of parts it keeps. In [0, 1).
  double drop_below = 1e-6;
  /// The optimiser of each era: strong-Wolfe line search, history 20, every era runs its
  /// iterations (rtol 0); first_step_length <= 0 means 0.1 sqrt(pixels) times the observation's
  /// deviation.
  LbfgsOptions lbfgs{.history = 20,
                     .max_iterations = 50,
                     .max_backtracks = 12,
                     .rtol = 0,
                     .first_step_length = 0,
                     .line_search = LineSearch::StrongWolfe};
};

/// Reported after every L-BFGS iteration.
struct SeparationProgress {
  int era = 0; ///< 1-based
  int eras = 0;
  int iteration = 0;  ///< within the era, 1-based
  int iterations = 0; ///< per era
  double loss = 0;
};

/// One era's loss: the main term (on u + c_i for the Realizations estimator, on u for Bias) and
/// the further terms, which read the maps [u, d - u, T] stacked as channels (B, 3C, H, W): u in
/// channels [0, C), d - u in [C, 2C), T in [2C, 3C) (zero without a template).
struct SeparationLoss {
  MatchingLoss main;
  std::optional<MatchingLoss> further;
};

struct SeparationResult {
  at::Tensor signal;        ///< (C, H, W) s~, on the context's device
  at::Tensor contamination; ///< (C, H, W) d - s~
  /// Per era: the loss before its first iteration and after each (the loss changes between eras
  /// with sigma and B).
  std::vector<std::vector<double>> loss_history;
  std::vector<std::int64_t> kept_parts; ///< per era: real and imaginary parts kept, all terms
  double seconds = 0;
};

/// Saving and resuming one run (a long separation interrupted continues where it stopped: the
/// same result as an uninterrupted run on the same device).
struct SeparationRun {
  std::function<void(const SeparationProgress&)> progress; ///< after each iteration, if set
  std::string checkpoint;   ///< file to save the run's state to ("" for none)
  int checkpoint_every = 0; ///< iterations between saves within an era (0: at the end of each
                            ///< era only, if a file is named); replaced atomically each time
  std::string resume;       ///< checkpoint to continue from ("" to start afresh)
};

class Separator {
public:
  /// observation (C, H, W) real, or complex (Q + iU: statistics that take complex maps, no
  /// cross terms); contamination realizations (M, C, H, W) of the same kind, M >= 2; `maps` for
  /// the further terms that need them. The statistics are built once. ValueError for options out
  /// of range (naming field and value), non-finite maps, realizations real where the observation
  /// is complex or the reverse, fewer than 2 realizations (4 with half-missions), a further term
  /// whose map is missing or whose statistics have no cross statistics; ShapeError for maps that
  /// do not fit the grid or each other; the statistics' own errors.
  Separator(const at::Tensor& observation /* (C, H, W) */,
            const at::Tensor& contamination /* (M, C, H, W) */, const SeparationOptions& options,
            const Grid2d& grid, const Context& context, const SeparationMaps& maps = {});
  ~Separator();
  Separator(Separator&&) noexcept;

  SeparationResult run(const std::function<void(const SeparationProgress&)>& progress = {}) const;
  /// With checkpoints. ValueError for checkpoint_every < 0 or a checkpoint written by another
  /// separation (other maps, realizations, options or device; the message shows both);
  /// FormatError for a file that is not a separation checkpoint; IoError when it cannot be
  /// written or read.
  SeparationResult run(const SeparationRun& run) const;

  /// The loss of era `era` (1-based: the power spectrum only up to spectrum_eras) that starts at
  /// `estimate` (C, H, W): its terms' targets, per-part scales and weights.
  SeparationLoss era_loss(const at::Tensor& estimate /* (C, H, W) */, int era) const;
  /// The loss of maps u (B, C, H, W) under an era's loss, and its gradient: the main term by the
  /// estimator (Realizations: averaged over the realizations, in chunks), plus the further terms.
  /// `terms` lists the main loss's terms, then the further loss's.
  /// `draw` >= 0 with SeparationOptions::fresh_realizations: the Realizations estimator averages
  /// over the K realizations of that draw (era * 2^32 + evaluation number in a run) instead of
  /// all M; ignored otherwise.
  MatchingResult evaluate(const SeparationLoss& loss, const at::Tensor& u /* (B, C, H, W) */,
                          bool want_grad = true, std::int64_t draw = -1) const;
  const SeparationOptions& options() const;

private:
  /// Everything that decides a run's iterates, as text: a checkpoint resumes only its own run.
  std::string fingerprint() const;
  struct State;
  std::unique_ptr<State> state_;
};

/// How a linear filter weighs each Fourier mode, given the signal's and the contamination's
/// power P_s and P_c.
enum class FilterGain {
  Wiener,  ///< P_s / (P_s + P_c): the least-squares linear estimate; it removes the signal's
           ///< power with the noise where the noise dominates
  Matched, ///< sqrt(P_s / (P_s + P_c)): the estimate has the signal's power spectrum (on
           ///< average), at the price of some pixel error
};

/// The linear baseline: s^(k) = gain(P_s, P_c) d^(k) per Fourier mode, with P_c the realizations'
/// mean power per integer |k| annulus and P_s the given signal spectrum (C, H, W) per mode (e.g.
/// the truth's, for simulations), or when undefined estimate_signal_power's. ShapeError for
/// inconsistent shapes.
at::Tensor wiener_filter(const at::Tensor& observation /* (C, H, W) */,
                         const at::Tensor& contamination /* (M, C, H, W) */,
                         const at::Tensor& signal_power = {} /* (C, H, W) */,
                         FilterGain gain = FilterGain::Wiener); // -> (C, H, W)

/// The signal's isotropic power per mode (C, H, W), estimated from the observation alone: per
/// integer-|k| annulus P_d - P_c (clipped at 0), where P_d is d's mean |fft|^2 over the annulus
/// and P_c the realizations'. Beyond the last annulus where the signal is detected (P_d - P_c
/// above 3 times P_d sqrt(2 / modes), the annulus mean's spread under Gaussian statistics, in
/// three consecutive annuli), a power law fitted (least squares in log-log) on the detected
/// annuli in [k_last / 4, k_last] replaces the annulus values, which there are noise: the
/// spectrum's own slope carries it to the smallest scales. A spectrum that steepens beyond k_last
/// (a beam, dissipation) gets too much power there: on the shared dust map at SNR 1 (256^2), 1.2
/// to 8x in the four highest of 12 log bins. With no detection, P_d - P_c clipped.
at::Tensor estimate_signal_power(const at::Tensor& observation /* (C, H, W) */,
                                 const at::Tensor& contamination /* (M, C, H, W) */);

/// Per-mode power (C, H, W) averaged over each integer-|k| annulus and put back on its modes: the
/// isotropic spectrum wiener_filter works with (e.g. the truth's |fft(s)|^2, for the Wiener filter
/// with the true spectrum).
at::Tensor radial_average(const at::Tensor& power /* (C, H, W) */); // -> (C, H, W)

const char* separation_estimator_name(SeparationEstimator e);
const char* separation_start_name(SeparationStart s); ///< "observation", "wiener", "matched"

} // namespace demix
#pragma GCC visibility pop

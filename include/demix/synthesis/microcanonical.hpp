#pragma once
// Microcanonical synthesis (Bruna & Mallat 2019; Allys et al. 2020; Cheng et al. 2024): new maps
// whose statistics match those of one or a few target maps, by gradient descent from noise. Each
// sample is its own L-BFGS problem (optim/lbfgs.hpp): samples do not slow each other down and
// finished ones stop. The loss is a MatchingLoss (synthesis/objective.hpp) over any weighted mix
// of statistics, auto and cross terms of every channel.
//
// Maps are preprocessed as the field needs (optional log, then standardisation per channel by the
// targets' mean and deviation) and the samples are returned with both undone. The run can report
// progress, save checkpoints and resume from one: a resumed run gives the samples of the
// uninterrupted run (bit for bit on the CPU; on CUDA to the determinism of its atomic adds).

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/optim/lbfgs.hpp>
#include <demix/synthesis/objective.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Where the descent starts.
enum class SynthesisInit {
  Noise,    ///< white Gaussian noise with each channel's mean and deviation (in the preprocessed
            ///< space: the targets' after log and standardisation)
  Gaussian, ///< a Gaussian random field with the targets' mean power spectrum, per channel
};

struct SynthesisOptions {
  /// Statistics, weights, cross terms and residual scales of the loss (see MatchingOptions). Empty
  /// statistics: WPH with J, L from the registry's defaults, dn = 2 and norm auto.
  MatchingOptions matching;
  int samples = 1;         ///< maps drawn, >= 1
  int iterations = 100;    ///< L-BFGS iterations at most, >= 0
  std::uint64_t seed = 0;  ///< the initial maps' noise; same seed, options, device: same samples
  bool log = false;        ///< synthesise log(x) (targets must be > 0), exp() on output
  bool standardize = true; ///< per channel (x - mean) / std of the targets, undone on output
  SynthesisInit init = SynthesisInit::Noise;
  /// On CUDA, replay the loss and gradient as one recorded CUDA graph (optim/step_graph.hpp)
  /// after the first two evaluations; same results, less host time per evaluation. No effect on
  /// the CPU.
  bool cuda_graphs = true;
  /// The optimiser. Synthesis defaults: strong-Wolfe line search (as scipy's L-BFGS-B that pywph
  /// uses), history 20 (pywph's maxcor; on a 128^2 dust crop, WPH J6, 100 iterations, it ended
  /// 7 % lower than 10), rtol 0 (every sample runs all iterations unless its line search fails);
  /// first_step_length <= 0 means 0.1 sqrt(number of variables per sample), about a tenth of a
  /// standard deviation per pixel of a standardised map.
  LbfgsOptions lbfgs{.history = 20,
                     .max_iterations = 100,
                     .max_backtracks = 12,
                     .rtol = 0,
                     .first_step_length = 0,
                     .line_search = LineSearch::StrongWolfe};
};

/// Reported after every iteration.
struct SynthesisProgress {
  int iteration = 0;        ///< iterations done (those before a resume included)
  int iterations = 0;       ///< the run's total
  double loss = 0;          ///< mean over samples
  std::int64_t running = 0; ///< samples still descending
  double iterations_per_s = 0;
  double eta_s = 0; ///< seconds left at the current rate (iterations left, all samples running)
};

struct SynthesisResult {
  at::Tensor samples;      ///< (S, C, H, W) in the targets' units, on the context's device
  at::Tensor loss_history; ///< (n + 1, S) float64 CPU: loss of each sample before iteration 1
                           ///< and after each of the n iterations done
  at::Tensor term_losses;  ///< (T, S) float64 CPU: each loss term of each final sample
  std::vector<std::string> term_names; ///< T names, "wph[0]", "wph[0x1]"...
  at::Tensor converged;                ///< (S) bool CPU: stopped before the iteration limit
  int iterations = 0;                  ///< iterations done
  std::int64_t evaluations = 0;        ///< loss and gradient evaluations, all samples at once
  double seconds = 0;                  ///< wall time of this call (a resumed run: its part)
};

/// Saving and resuming one run.
struct SynthesisRun {
  std::function<void(const SynthesisProgress&)> progress; ///< after each iteration, if set
  std::string checkpoint;   ///< file to save the optimiser's state to ("" for none)
  int checkpoint_every = 0; ///< iterations between saves (0: only at the end, if a file is
                            ///< named); the file is replaced atomically each time
  std::string resume;       ///< checkpoint to continue from ("" to start afresh)
};

class Synthesizer {
public:
  /// Builds the statistics and the loss of `targets` (T, C, H, W): T maps of C channels, real, or
  /// complex for statistics that take complex maps (Q + iU; log is then refused). The targets
  /// must be finite. ValueError for options out of range (naming field and value), targets <= 0
  /// with log, non-finite targets; ShapeError for targets that are not 4-D; the statistics' own
  /// errors (J too large for the maps...).
  Synthesizer(const at::Tensor& targets /* (T, C, H, W) */, const SynthesisOptions& options,
              const Grid2d& grid, const Context& context);
  ~Synthesizer();
  Synthesizer(Synthesizer&&) noexcept;

  /// Draws options.samples maps. IoError / FormatError for a checkpoint that cannot be written or
  /// read; ValueError for one written by another synthesis (other targets, options or seed).
  SynthesisResult run(const SynthesisRun& run = {}) const;

  /// The initial maps of the seed, in the targets' units (what run() starts from).
  at::Tensor initial_maps() const; // -> (S, C, H, W)
  /// The targets as the loss sees them (after log and standardisation).
  const at::Tensor& prepared_targets() const; // (T, C, H, W)
  /// The loss, on preprocessed maps.
  const MatchingLoss& loss() const;
  const SynthesisOptions& options() const;
  /// Into and out of the preprocessed space (log, standardisation), per channel.
  at::Tensor prepare(const at::Tensor& maps /* (N, C, H, W) */) const;
  at::Tensor restore(const at::Tensor& maps /* (N, C, H, W) */) const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The default statistic of a synthesis on `grid` when none is given: WPH, registry defaults for J
/// and L, dn = 2, norm auto (pywph's synthesis settings).
StatisticSpec default_synthesis_statistic(const Grid2d& grid);

/// "noise" or "gaussian".
const char* synthesis_init_name(SynthesisInit init);

} // namespace demix
#pragma GCC visibility pop

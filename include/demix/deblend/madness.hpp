#pragma once
// MADNESS deblending (Biswas et al. 2025, A&A 700, A129): each galaxy of a blend is one latent
// vector z_i of a generative model of isolated galaxies (a GalaxyPrior: VAE decoder f and flow
// density p), and the blend y is explained by the maximum a posteriori
//
//   Z* = argmin_Z  L(Z),   L(Z) = sum_{b, pixels} w (y - sum_i place_i(f(z_i)))^2 / (2 sigma_b^2)
//                                 - lambda sum_i log p(z_i)
//
// with place_i the stamp of galaxy i put at its nearest pixel (stamps.hpp), w the pixel mask (1
// by default), sigma_b the per-band noise (optionally plus the sources' own Poisson variance) and
// lambda the prior weight (1 for the MAP).
//
// What is done, and what MADNESS does:
//  * Initialisation: the encoder on the S x S cutout of the blend around each galaxy, as MADNESS
//    (whose encoder is trained to return the central galaxy of a blended cutout). With
//    init_passes = 2, a second pass re-encodes each galaxy from the cutout of the residual of the
//    first pass plus the galaxy's own first-pass model (its neighbours' light removed); all
//    galaxies of all blends at once, no per-galaxy loop.
//  * Optimiser: Adam with MADNESS's staircase decay (learning rate lr * decay^floor(t / steps)),
//    then optionally L-BFGS (per blend: two-loop recursion and Armijo backtracking with per-blend
//    inner products and step lengths, so each blend follows its own path). Both are demix's
//    optimisers (optim/adam.hpp, optim/lbfgs.hpp), each blend one group of the L-BFGS.
//  * Convergence, per blend, as tfp's LossNotDecreasing that MADNESS uses: an exponential moving
//    average over `window` steps of the per-step decrease of that blend's loss; the blend has
//    converged when, after `min_steps`, it falls to rtol times its value at step `window` (or to
//    atol). Tested every `check_every` steps (the only host synchronisations of the loop);
//    converged blends keep the latents of their lowest loss and leave the batch once they are
//    `shrink_fraction` of it.
//  * Batching: all blends of a call are one set of tensors: M galaxies flat, one decode of (M, D)
//    latents per step, one index_add to render every stamp into every blend (stamps.hpp). The
//    blends do not interact: deblending K blends together gives the K separate results (up to
//    float rounding of the batched kernels).
//  * Larger fields: deblend_field cuts the field into square tiles with margins, deblends all
//    tiles as one batch (each with the galaxies of its core and, as context, those of its margins)
//    and keeps each galaxy from the tile whose core holds it.
//
// Units: images in electrons (sky subtracted), noise sigmas in electrons per pixel (survey.hpp).

#include <demix/core/context.hpp>
#include <demix/deblend/stamps.hpp>
#include <demix/models/galaxy_prior.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <memory>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Where an Adam run stands, reported at each convergence test (MadnessOptions::progress).
struct MadnessProgress {
  int step = 0;                      ///< Adam steps taken
  std::int64_t running_blends = 0;   ///< blends of the call not yet finished
  std::int64_t working_galaxies = 0; ///< galaxies each step decodes (finished ones not yet dropped)
  std::int64_t total_blends = 0;     ///< blends of the call (of its batch: max_blends_per_batch)
};

struct MadnessOptions {
  // ---- Adam (defaults: MADNESS's LSST run) ----
  int max_steps = 200;         ///< Adam steps at most; >= 0 (0: the encoder's latents are kept)
  double learning_rate = 0.05; ///< initial Adam step size, in latent units; > 0
  double lr_decay = 0.8;       ///< staircase decay factor of the step size; in (0, 1]
  int lr_decay_steps = 30;     ///< steps between two decays; >= 1
  double adam_beta1 = 0.9;     ///< first-moment decay; in [0, 1)
  double adam_beta2 = 0.999;   ///< second-moment decay; in [0, 1)
  double adam_epsilon = 1e-7;  ///< Adam's denominator guard (Keras's default, as MADNESS); > 0

  // ---- Convergence (per blend; defaults as MADNESS's LossNotDecreasing) ----
  int window = 15;      ///< steps of the moving average of the loss decrease; >= 1
  int min_steps = 40;   ///< no blend stops before this many steps; >= window
  double rtol = 0.05;   ///< converged when the average decrease <= rtol x its value at `window`
  double atol = 0.0;    ///< ... or <= atol (loss units per step); >= 0
  int check_every = 10; ///< steps between convergence tests (host synchronisations); >= 1
  /// Finished blends leave the working set once they make at least this fraction of it; until
  /// then they keep taking (discarded) steps. 0: at every test. On a GPU each new working set
  /// costs a CUDA-graph recording and the convolutions' set-up for a new batch size, so a few
  /// larger shrinks beat many small ones (H100, 1000 blends, three decoder computes: 0.3 took
  /// 0.87-0.99 s, 0 took 1.01-1.12 s, 0.6 took 0.99-1.24 s; on a 2-core CPU the difference was
  /// within the noise). Same results either way; in [0, 1].
  double shrink_fraction = 0.3;

  // ---- L-BFGS refinement after Adam (off by default) ----
  int lbfgs_steps = 0;           ///< L-BFGS iterations after Adam; >= 0
  int lbfgs_history = 8;         ///< stored curvature pairs; >= 1
  int lbfgs_max_backtracks = 12; ///< trial step lengths per line search (1, 1/2, 1/4, ...); >= 1
  double lbfgs_rtol = 1e-9;      ///< a blend stops when an iteration lowers its loss by less
                                 ///< than this fraction of the loss's magnitude

  // ---- Model ----
  double prior_weight = 1.0;    ///< lambda; >= 0 (0: maximum likelihood)
  bool source_variance = false; ///< add max(y, 0) (Poisson variance of the sources, gain 1 e-/ADU)
                                ///< to sigma_b^2, pixel by pixel, as MADNESS does
  int init_passes = 1;          ///< encoder passes, see the header comment; 1 or 2

  // ---- Memory and speed ----
  std::int64_t max_blends_per_batch = 0; ///< deblend at most this many blends at once; 0 = all
  /// On CUDA, with a replayable() prior, the Adam steps after the first `window` are recorded as a
  /// CUDA graph, once per working set (it shrinks as blends converge), and replayed: the host's
  /// dispatch of a step's ~200 ops no longer sets the pace of small working sets. Same results; a
  /// recording keeps one step's temporaries while its working set lasts. false: eager steps.
  bool cuda_graphs = true;

  /// Called at each convergence test of the Adam phase (where the host waits for the device
  /// anyway), after finished blends are stored; for progress reports and timings.
  std::function<void(const MadnessProgress&)> progress;
};

/// What deblend() returns. Galaxies are in the order of the input list.
struct MadnessResult {
  BlendGalaxies galaxies; ///< the input galaxies
  at::Tensor latents;     // (M, D) context dtype, context device: the MAP latents
  at::Tensor stamps;      // (M, B, S, S) model of each galaxy, centred on its nearest pixel
  at::Tensor residuals;   // (N, B, H, W) images minus all models
  at::Tensor loss;        // (N) float64 CPU: final L of each blend
  at::Tensor steps;       // (N) int64 CPU: Adam steps done by each blend
  at::Tensor converged;   // (N) bool CPU: the convergence test passed (Adam or L-BFGS)
  double converged_fraction() const; ///< fraction of the blends that converged (1 if none)
};

/// Tiles of deblend_field.
struct FieldTiling {
  std::int64_t tile = 128; ///< side of each tile's core, pixels; >= 1
  /// Pixels added on each side of the core; the galaxies there are fitted as context. A galaxy
  /// beyond the margin is not modelled, but its stamp reaches stamp_size / 2 pixels into the
  /// tile: margin >= stamp_size / 2 keeps that light off the core, margin >= stamp_size - 1 off
  /// everything the core galaxies' stamps cover (then every tile's optimum is the whole field's).
  /// -1: stamp_size - 1. Otherwise >= 0.
  std::int64_t margin = -1;
};

struct FieldResult {
  at::Tensor latents;          // (G, D): each galaxy from the tile whose core holds it
  at::Tensor stamps;           // (G, B, S, S)
  at::Tensor residual;         // (B, H, W): the field minus every galaxy's model
  at::Tensor tile;             // (G) int64 CPU: index of the tile (row-major over the tile grid)
  at::Tensor converged;        // (G) bool CPU: that tile's optimisation converged
  std::int64_t tiles_used = 0; ///< tiles with at least one galaxy in their core (the batch size)
};

class MadnessDeblender {
public:
  /// ValueError for options out of range (the message names the field and value).
  MadnessDeblender(std::shared_ptr<const GalaxyPrior> prior, const MadnessOptions& options,
                   const Context& context);

  /// Deblends N blends at once. images: real (N, B, H, W) with B = prior's n_bands;
  /// noise_sigmas: (B) or (N, B), > 0; mask (optional): (N, 1 or B, H, W), 0 where pixels are to
  /// be ignored, 1 elsewhere. galaxies.num_blends must be N. ShapeError / ValueError otherwise.
  MadnessResult deblend(const at::Tensor& images /* (N, B, H, W) */, const BlendGalaxies& galaxies,
                        const at::Tensor& noise_sigmas /* (B) or (N, B) */,
                        const at::Tensor& mask = {} /* (N, 1 or B, H, W) */) const;

  /// The encoder's latents (init_passes passes): (M, D).
  at::Tensor initial_latents(const at::Tensor& images /* (N, B, H, W) */,
                             const BlendGalaxies& galaxies,
                             const at::Tensor& mask = {} /* (N, 1 or B, H, W) */) const;

  /// L of each blend for given latents (M, D), differentiable with respect to them (first
  /// derivatives): (N).
  at::Tensor loss(const at::Tensor& images /* (N, B, H, W) */, const BlendGalaxies& galaxies,
                  const at::Tensor& noise_sigmas /* (B) or (N, B) */,
                  const at::Tensor& latents /* (M, D) */,
                  const at::Tensor& mask = {} /* (N, 1 or B, H, W) */) const;

  /// Deblends a large field image (B, H, W) holding galaxies at positions (G, 2) (x, y), tile by
  /// tile (see the header comment), all tiles in one batch (or max_blends_per_batch at a time).
  FieldResult deblend_field(const at::Tensor& image /* (B, H, W) */,
                            const at::Tensor& positions /* (G, 2) */,
                            const at::Tensor& noise_sigmas /* (B) */,
                            const FieldTiling& tiling = {}) const;

  const MadnessOptions& options() const { return options_; }
  const GalaxyPrior& prior() const { return *prior_; }

private:
  struct Problem; // images, weights and galaxies of a batch, on the device
  Problem prepare(const at::Tensor& images, const BlendGalaxies& galaxies,
                  const at::Tensor& noise_sigmas, const at::Tensor& mask) const;
  at::Tensor encode_init(const Problem& p) const; // -> (M, D)
  MadnessResult run(const at::Tensor& images, const BlendGalaxies& galaxies,
                    const at::Tensor& noise_sigmas, const at::Tensor& mask) const;
  struct Fit; // latents, Adam steps and convergence of each blend, filled phase by phase
  void fit_adam(const Problem& all, Fit& fit) const;
  void fit_lbfgs(const Problem& all, Fit& fit) const;
  MadnessResult outputs(const Problem& all, const Fit& fit) const;

  std::shared_ptr<const GalaxyPrior> prior_;
  MadnessOptions options_;
  c10::TensorOptions tensor_options_;
};

} // namespace demix
#pragma GCC visibility pop

#pragma once
// Training MADNESS's two networks, as the paper does it, in two steps:
//   1. train_vae: the VAE on isolated galaxy stamps, loss per stamp
//        0.5 sum_{b,p} (A_b(target) - A_b(xhat))^2  +  beta KL(q(z|x) || N(0, I)),
//        A_b(x) = asinh(eps x / sigma_b) / eps,     xhat = decode(z)
//      A_b is x / sigma_b for pixels fainter than sigma_b / eps: the noise-weighted chi^2 of a
//      Gaussian likelihood with the per-band sky noise sigma_b (eps = 0 is exactly that chi^2);
//      brighter pixels are compared in log space, to a relative precision eps (locally, the
//      variance is sigma_b^2 + (eps x)^2: a fractional model error). Without it the few galaxies
//      at 10^3-10^4 sigma dominate every batch with huge gradients and the network learns little
//      else. beta weights the KL term as in MADNESS (small: the decoder reproduces galaxies to
//      the noise level).
//   2. train_flow: the flow on the encoder means of the same stamps, loss -log p(z).
// Both use Adam on shuffled minibatches, a learning rate lr exp(-epoch / lr_decay_epochs) (raised
// linearly from lr / steps to lr over the steps of the first epoch), a
// validation split drawn once from the seed, and keep the weights of the epoch with the lowest
// validation loss (optionally stopping early). After every epoch a checkpoint (weights, optimiser
// state, history, best weights) can be written; resuming from it continues exactly as if never
// interrupted: all randomness of epoch e comes from a generator seeded by (seed, e).
//
// Validation losses are computed at z = mean (no sampling) and always with the final beta, so that
// epochs of both stages compare.

#include <demix/models/madness_model.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct VaeTrainingOptions {
  int epochs = 60;               ///< total number of epochs (a resumed run continues to it)
  std::int64_t batch_size = 128; ///< stamps per Adam step
  double learning_rate = 1e-3;   ///< Adam step size at epoch 0
  double lr_decay_epochs = 30;   ///< the rate falls by e every this many epochs; 0 = constant
  double beta = 0.01;            ///< weight of the KL term (MADNESS: 0.01)
  /// eps of the loss stretch A_b (see above): pixels brighter than sigma_b / eps are fitted to a
  /// relative precision eps; 0 = the plain noise-weighted chi^2.
  double model_error = 0.05;
  int autoencoder_epochs = 5;  ///< first epochs without KL and with z = mean
  double val_fraction = 0.1;   ///< share of stamps held out for validation, in [0, 0.5]
  int patience = 0;            ///< stop after this many epochs without a better val loss; 0 = never
  double max_grad_norm = 0;    ///< clip the global gradient norm to this; 0 = no clipping
  std::uint64_t seed = 0;      ///< validation split, shuffling and sampling noise
  std::string checkpoint_path; ///< written after every epoch when not empty
  std::string resume_from;     ///< a checkpoint written by this training to continue from
};

struct FlowTrainingOptions {
  int epochs = 100;              ///< total number of epochs (a resumed run continues to it)
  std::int64_t batch_size = 256; ///< latent vectors per Adam step
  double learning_rate = 1e-3;   ///< Adam step size at epoch 0
  double lr_decay_epochs = 50;   ///< the rate falls by e every this many epochs; 0 = constant
  double val_fraction = 0.1;     ///< share of vectors held out for validation, in [0, 0.5]
  int patience = 0;            ///< stop after this many epochs without a better val loss; 0 = never
  double max_grad_norm = 0;    ///< clip the global gradient norm to this; 0 = no clipping
  std::uint64_t seed = 0;      ///< validation split and shuffling
  std::string checkpoint_path; ///< written after every epoch when not empty
  std::string resume_from;     ///< a checkpoint written by this training to continue from
  /// Before the first epoch (not when resuming), set the flow's standardisation to the mean and
  /// standard deviation of the training vectors.
  bool standardise_from_data = true;
};

struct EpochRecord {
  int epoch = 0;             ///< 1-based
  double learning_rate = 0;  ///< used during this epoch
  double seconds = 0;        ///< wall time of the epoch (training + validation)
  std::vector<double> train; ///< per-sample means over the training split, one per metric
  std::vector<double> val;   ///< the same over the validation split (empty without one)
};

struct TrainingHistory {
  /// Metric names; the first is the objective. VAE: loss (per stamp, with the stage's beta for
  /// train and the final beta for val), chi2_per_pixel (plain sky-noise chi^2 / (B S^2) against the
  /// targets), kl (per stamp). Flow: nll (nats per vector).
  std::vector<std::string> metric_names;
  std::vector<EpochRecord> epochs;
  int best_epoch = 0;         ///< the epoch whose weights the model holds at the end
  bool stopped_early = false; ///< patience ran out
};

/// Called after every epoch (and its checkpoint) with the history so far.
using EpochCallback = std::function<void(const TrainingHistory&)>;

/// The VAE's reconstruction term per stamp: sum_{b,p} (A_b(target) - A_b(prediction))^2 with
/// A_b(x) = asinh(eps x / sigma_b) / eps; eps = 0 gives the plain chi^2 sum ((t - p) / sigma_b)^2.
at::Tensor stretched_chi2(const at::Tensor& prediction /* (N, B, S, S) */,
                          const at::Tensor& target /* (N, B, S, S) */,
                          const at::Tensor& sigmas /* (B) */,
                          double eps); // -> (N)

/// Trains model.vae() in place (on its device and dtype; the data are copied there once).
/// stamps: the encoder's input (noisy stamps); targets: what the decoder must reproduce (the
/// noiseless stamps when known; undefined = the stamps). Sigmas: model.metadata().noise_sigmas.
/// ShapeError / ValueError for inconsistent data or options, IoError / FormatError for the
/// checkpoint, ValueError when the loss becomes NaN or infinite (lower the learning rate).
TrainingHistory train_vae(MadnessModel& model, const at::Tensor& stamps /* (N, B, S, S) */,
                          const at::Tensor& targets /* (N, B, S, S) or undefined */,
                          const VaeTrainingOptions& options, const EpochCallback& progress = {});

/// Trains model.flow() in place on latent vectors (usually encode_means of the training stamps).
/// ValueError when the model has no flow (install one with set_flow first).
TrainingHistory train_flow(MadnessModel& model, const at::Tensor& latents /* (N, D) */,
                           const FlowTrainingOptions& options, const EpochCallback& progress = {});

/// The encoder means of `stamps`, computed in batches without autograd on the model's device.
at::Tensor encode_means(const MadnessModel& model, const at::Tensor& stamps /* (N, B, S, S) */,
                        std::int64_t batch_size = 512); // -> (N, D) on the model's device

/// The history as CSV: header "epoch,learning_rate,seconds,train_<metric>...,val_<metric>...",
/// one row per epoch (val columns empty without validation).
std::string history_csv(const TrainingHistory& history);
/// Loss curve of the objective: train in blue, validation in orange (plot.hpp colours), log10 of
/// the values when they are all positive. -> (height, width, 3) uint8.
at::Tensor plot_history(const TrainingHistory& history, int width = 800, int height = 400);

/// Robust per-band noise sigma of noisy stamps, from the pixels of a 2-pixel frame along each
/// stamp's border (mostly sky when galaxies are centred): 1.4826 x the median absolute deviation
/// from the median. ValueError when a band's estimate is not positive (noiseless stamps). (Whole
/// images with galaxies anywhere: estimate_noise_sigmas, deblend/detection.hpp.)
std::vector<double> estimate_stamp_noise_sigmas(const at::Tensor& stamps /* (N, B, S, S) */);

/// A training set of galaxy stamps as the simulator writes it.
struct GalaxyStampSet {
  at::Tensor stamps;                   ///< (N, B, S, S) float32 CPU, with noise
  at::Tensor noiseless;                ///< (N, B, S, S) float32 CPU, or undefined
  std::vector<std::string> band_names; ///< from BAND1..BANDn; empty when not recorded
  std::vector<double> noise_sigmas;    ///< from SIGMA1..SIGMAn; empty when not recorded
  std::string description;             ///< "FITS STAMPS + NOISELESS" / "npy" (for messages)
};

/// Reads stamps from a FITS file through the dataset format's reader (read_dataset_images,
/// sim/dataset.hpp: the STAMPS extension (N, B, S, S) or a one-stamp dataset's HDU 0, BANDi and
/// SIGMAi keywords, NOISELESS when present) or from a .npy file holding (N, B, S, S).
/// IoError / FormatError / ShapeError naming the file (FormatError for a blends dataset).
GalaxyStampSet read_galaxy_stamps(const std::string& path);

} // namespace demix
#pragma GCC visibility pop

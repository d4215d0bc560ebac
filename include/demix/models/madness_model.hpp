#pragma once
// MADNESS's trained prior in one object and one file: the galaxy VAE (decoder + encoder), the
// latent flow (log p(z)), and what is needed to use and trust them (band names, the training data's
// noise sigmas, the commands that trained them). Implements GalaxyPrior for the deblender.
//
// File format: a demix archive (src/io/detail/tensor_archive.hpp: named float32/int64 tensors and
// text, a checksum; no pickles, so a model written with one LibTorch version loads with any other).
// A training checkpoint is also a loadable model (its current weights).

#include <demix/models/flow.hpp>
#include <demix/models/galaxy_prior.hpp>
#include <demix/models/vae.hpp>

#include <ATen/core/TensorBody.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct ModelMetadata {
  std::vector<std::string> band_names; ///< B names ("u", "g", ...), in stamp order
  std::vector<double> noise_sigmas;    ///< B per-pixel noise sigmas of the training data, e-
  /// One line per step that made the model: the command line, demix/LibTorch versions, device,
  /// date, epochs and final losses. Appended by train-vae and train-flow.
  std::vector<std::string> provenance;
};

class MadnessModel : public GalaxyPrior {
public:
  /// A model without a flow yet (log_prob throws until set_flow). ValueError when the metadata do
  /// not have one entry per band, or a name is empty or holds a newline.
  MadnessModel(GalaxyVae vae, ModelMetadata metadata);

  // ---- GalaxyPrior ----
  std::int64_t latent_dim() const override { return vae_.options().latent_dim; }
  std::int64_t n_bands() const override { return vae_.options().bands; }
  std::int64_t stamp_size() const override { return vae_.options().stamp_size; }
  /// The encoder's mean.
  at::Tensor encode(const at::Tensor& stamps /* (N, B, S, S) */) const override; // -> (N, D)
  at::Tensor decode(const at::Tensor& latents /* (N, D) */) const override;      // -> (N, B, S, S)
  /// The flow's log density; ValueError when the model has no flow (run train-flow).
  at::Tensor log_prob(const at::Tensor& latents /* (N, D) */) const override; // -> (N)
  bool replayable() const override { return true; }                           // ops on weights only

  // ---- parts ----
  const GalaxyVae& vae() const { return vae_; }
  GalaxyVae& vae() { return vae_; }
  bool has_flow() const { return flow_.has_value(); }
  /// ValueError when there is none.
  const LatentFlow& flow() const;
  LatentFlow& flow();
  /// Installs a flow (moved to the model's device and dtype). ValueError unless its dim is D.
  void set_flow(LatentFlow flow);
  const ModelMetadata& metadata() const { return metadata_; }
  ModelMetadata& metadata() { return metadata_; }

  /// Moves every weight (float dtypes only).
  void to(c10::Device device, c10::ScalarType dtype = c10::kFloat);
  c10::Device device() const { return vae_.device(); }
  c10::ScalarType dtype() const { return vae_.dtype(); }

  /// Atomic write of the model (weights as float32). IoError when the folder is missing.
  void save(const std::string& path) const;
  /// Reads a model (or a training checkpoint) onto `device` in float32. IoError (missing file),
  /// FormatError (not a demix model, corrupt, truncated, written by a newer demix).
  static MadnessModel load(const std::string& path, c10::Device device = c10::kCPU);
  /// True when `path` starts like a demix model or checkpoint file (false if missing).
  static bool is_model_file(const std::string& path);
  /// The model shipped with demix, madness-lsst.dmx (models/README.md): looked for relative to
  /// the library file holding this function (<libdir>/../share/demix/models for an installation,
  /// wherever it was moved), then in the source tree demix was built from. ValueError naming the
  /// places looked at when neither has it.
  static std::string shipped_model_path();

private:
  GalaxyVae vae_;
  std::optional<LatentFlow> flow_;
  ModelMetadata metadata_;
};

} // namespace demix
#pragma GCC visibility pop

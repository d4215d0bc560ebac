#pragma once
// What the deblender needs from a generative model of isolated galaxies (MADNESS: a VAE decoder and
// a normalising flow on its latent space). The deblender is written against this interface only, so
// that it can be tested with analytic toy priors and later run with other trained models.

#include <ATen/core/TensorBody.h>

#include <cstdint>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

class GalaxyPrior {
public:
  virtual ~GalaxyPrior() = default;

  virtual std::int64_t latent_dim() const = 0;
  virtual std::int64_t n_bands() const = 0;
  virtual std::int64_t stamp_size() const = 0; ///< stamps are square, odd, centred on the galaxy

  /// Initial guess of the latent vector of each stamp (the encoder's mean for a VAE).
  /// stamps in image units (electrons, see survey.hpp), galaxy at the centre pixel.
  virtual at::Tensor
  encode(const at::Tensor& stamps /* (N, n_bands, S, S) */) const = 0; // -> (N, latent_dim)

  /// Noiseless galaxy stamps in image units, differentiable with respect to `latents`.
  virtual at::Tensor
  decode(const at::Tensor& latents /* (N, latent_dim) */) const = 0; // -> (N, n_bands, S, S)

  /// log p(z) of each latent vector, exact and differentiable with respect to `latents`.
  virtual at::Tensor log_prob(const at::Tensor& latents /* (N, latent_dim) */) const = 0; // -> (N)

  /// Whether decode and log_prob may be recorded once as a CUDA graph and replayed on new latents
  /// in place: they read only their argument and tensors that stay where they are, draw no random
  /// numbers, keep no host-side state and make no host synchronisation.
  virtual bool replayable() const { return false; }
};

} // namespace demix
#pragma GCC visibility pop

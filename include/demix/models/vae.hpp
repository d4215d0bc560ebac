#pragma once
// The variational autoencoder of MADNESS (Biswas et al. 2025, A&A 700, A129): a convolutional
// encoder from multi-band galaxy stamps to a Gaussian over a small latent space, and a decoder from
// a latent vector back to a noiseless stamp. The deblender fits one latent vector per galaxy
// through the decoder, so the decoder is kept small (a few hundred thousand weights) and smooth.
//
// Band-wise normalisation (fixed, stored with the network): band b is measured in units of its
// scale s_b (the training set's per-band noise sigma, in e-):
//   encoder input   asinh(x / s_b)       linear for |x| < s_b, so that noise keeps its Gaussian
//                                        shape; logarithmic above, so that galaxies from 1 to 1e4
//                                        sigma all reach the network with O(1-10) values
//   decoder output  s_b exp(u)           u = the last convolution's output; light is positive,
//                                        a galaxy's brightness is an additive shift of u (one
//                                        latent direction), profiles are smooth in log space,
//                                        and the empty sky is a large negative u (exp -> 0)
// The decoder therefore returns images in the input's units (e-), never negative.
//
// Architecture (stamp S, L = decoder_channels.size() - 1 upsamplings, m = ceil(S / 2^L)):
//   encoder: per entry c of encoder_channels: conv 3x3 (stride 1) -> SiLU -> conv 3x3 stride 2
//            -> SiLU (S -> ceil(S/2)); flatten -> linear(dense_units) -> SiLU -> linear(2 D)
//            = (mean, log variance)
//   decoder: linear(dense_units) -> SiLU -> linear(c_0 m^2) -> SiLU -> (c_0, m, m); per
//            upsampling i: conv 3x3 (c_i -> 4 c_i+1) -> pixel_shuffle(2) -> SiLU (sub-pixel
//            convolution: as expressive as a 4x4 transposed convolution, and it runs on the fast
//            convolution kernels of every backend); centre crop to S; conv 3x3 (c_L -> bands)
//            -> s_b exp(min(u, 30))
// Defaults (45 x 45 x 6 stamps, D = 16): decoder 397k weights and 9.1 M multiply-adds per stamp
// (the deblender's inner loop), encoder 372k weights, 3.2 MB as a float32 model file with its flow.
// SiLU rather than MADNESS's PReLU: a smooth decoder gives the MAP fit smooth gradients. No batch
// normalisation: each stamp's encoding and decoding depends on that stamp alone.

#include <demix/models/named_tensors.hpp>

#include <ATen/core/TensorBody.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct VaeOptions {
  std::int64_t bands = 6;       ///< number of bands B (LSST: u g r i z y)
  std::int64_t stamp_size = 45; ///< S: stamps are S x S, S odd, galaxy on the centre pixel
  std::int64_t latent_dim = 16; ///< D, the latent dimension; >= 2
  /// Channels of the encoder's resolution levels (each halves the stamp); at least one entry.
  std::vector<std::int64_t> encoder_channels = {16, 32, 64};
  /// Channels of the decoder: the first after the dense layers, then one per 2x upsampling
  /// (3 upsamplings by default: 6 -> 12 -> 24 -> 48, cropped to 45); at least two entries.
  std::vector<std::int64_t> decoder_channels = {64, 32, 16, 8};
  std::int64_t dense_units = 128; ///< width of the dense layer in the encoder and the decoder
  /// Per-band scale s_b in e- (B positive values): the training data's noise sigma per band.
  std::vector<double> band_scales;
};

/// The encoder's Gaussian over latent vectors.
struct VaeEncoding {
  at::Tensor mean;    // (N, D)
  at::Tensor log_var; // (N, D) natural log of the variance, clamped to [-20, 10]
};

/// How decode() runs its upsampling convolutions (most of its work, and of a deblending step).
struct DecoderCompute {
  /// Their feature maps' and weights' dtype: Undefined = the weights' own; Half or BFloat16 =
  /// tensor-core precision (the weights are copied when set: for inference, not training). The
  /// dense layers and the output convolution, which makes the light itself, keep the weights'
  /// dtype.
  c10::ScalarType conv_dtype = c10::ScalarType::Undefined;
  bool channels_last = false; ///< NHWC feature maps (the layout GPU convolutions prefer)

  /// What a MAP fit through the decoder should use: on CUDA, float16 NHWC upsampling (on an
  /// H100, 1000 blends: the deblending metrics equal float32's to 3-4 digits, full-batch steps
  /// ~12% faster; bfloat16 moved the colour error's median); elsewhere, the weights' own.
  static DecoderCompute for_fitting(c10::Device device) {
    return device.is_cuda() ? DecoderCompute{c10::ScalarType::Half, true} : DecoderCompute{};
  }
};

/// A galaxy VAE: built once from options and a seed (weights CPU float32), then const calls.
/// Copies share their weights (tensors are reference-counted); clone() makes an independent copy.
class GalaxyVae {
public:
  /// ValueError for an inconsistent option (named, with its value), or options asking for more
  /// than 2^32 weights.
  explicit GalaxyVae(const VaeOptions& options, std::uint64_t seed = 0);
  /// The number of weights a network of these options has, computed without building it
  /// (saturating at INT64_MAX); ValueError for an inconsistent option.
  static std::int64_t weight_count(const VaeOptions& options);

  const VaeOptions& options() const { return options_; }

  /// The latent Gaussian of each stamp. stamps in e-, on the network's device and dtype.
  /// ShapeError / DeviceError for a wrong shape, device or dtype.
  VaeEncoding encode(const at::Tensor& stamps /* (N, B, S, S) */) const;
  /// Noiseless stamps in e- (>= 0), differentiable with respect to latents and weights.
  at::Tensor decode(const at::Tensor& latents /* (N, D) */) const; // -> (N, B, S, S)

  /// KL(N(mean, exp(log_var)) || N(0, I)) per row, in closed form:
  /// 0.5 sum_d (mean^2 + exp(log_var) - 1 - log_var).
  static at::Tensor kl_divergence(const VaeEncoding& q); // -> (N)

  /// The per-band scales s_b as a tensor on the network's device and dtype.
  at::Tensor band_scales() const; // -> (B)

  /// Weights in a fixed order ("encoder.conv0a.weight", ..., "decoder.out.bias").
  const NamedTensors& parameters() const { return params_; }
  NamedTensors& parameters() { return params_; }
  std::int64_t parameter_count() const;

  /// How decode() computes (default: as trained). The reduced-precision copies of the weights are
  /// made here and by to(); set again after changing the weights.
  void set_decoder_compute(const DecoderCompute& compute);
  const DecoderCompute& decoder_compute() const { return compute_; }

  /// Moves the weights (requires_grad kept). Floating dtypes only.
  void to(c10::Device device, c10::ScalarType dtype = c10::kFloat);
  c10::Device device() const;
  c10::ScalarType dtype() const;
  GalaxyVae clone() const;

private:
  at::Tensor weight(std::size_t index) const { return params_[index].tensor; }

  VaeOptions options_;
  NamedTensors params_;
  std::int64_t bottom_ = 0; // m, the side of the decoder's first feature map
  at::Tensor scales_;       // (1, B, 1, 1) s_b, on the weights' device and dtype
  DecoderCompute compute_;
  std::vector<at::Tensor> conv_weights_; // upsampling weights and biases as compute_ says, or empty
};

} // namespace demix
#pragma GCC visibility pop

#pragma once
// A masked autoregressive flow (MAF, Papamakarios et al. 2017) over the VAE's latent space: the
// learned prior log p(z) of MADNESS's MAP objective, exact and differentiable with respect to z.
//
// Density direction (data z -> base u, standard normal), composed of:
//   standardisation  x = (z - shift) exp(-log_scale)             (elementwise, learned; initialised
//                                                                 from the training latents)
//   K MADE blocks    x_i <- (x_i - mu_i(x_<i)) exp(-alpha_i(x_<i)),  then the order is reversed
// so that log p(z) = log N(u; 0, I) - sum(log_scale) - sum_blocks sum_i alpha_i.
// mu and alpha come from a MADE network (Germain et al. 2015): masked dense layers whose masks
// give output i access to inputs < i only, so each block's Jacobian is triangular with diagonal
// exp(-alpha). alpha = A tanh(alpha_raw / A) stays within +-A (max_log_scale).
// The hidden layers use tanh: far from the data mu and alpha are bounded, every block is then an
// affine map, and log p(z) falls like -|z|^2 -- the MAP objective stays well posed. No batch
// normalisation (its running statistics would make log p depend on the batch or the mode).
// The last layer of each MADE starts at zero, so an untrained flow is the standardisation alone.

#include <demix/models/named_tensors.hpp>

#include <ATen/core/Generator.h>
#include <ATen/core/TensorBody.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct FlowOptions {
  std::int64_t dim = 16;                         ///< D, dimension of the latent vectors; >= 2
  std::int64_t blocks = 6;                       ///< K, number of MADE blocks; >= 1
  std::vector<std::int64_t> hidden = {128, 128}; ///< hidden widths of each MADE; each >= D - 1
  double max_log_scale = 3.0;                    ///< A: |alpha| <= A per block; > 0
};

/// Built once from options and a seed (weights CPU float32); const evaluation.
/// Copies share their weights; clone() makes an independent copy.
class LatentFlow {
public:
  /// ValueError for an inconsistent option (named, with its value), or options asking for more
  /// than 2^32 weights.
  explicit LatentFlow(const FlowOptions& options, std::uint64_t seed = 0);
  /// The number of weights a flow of these options has, computed without building it
  /// (saturating at INT64_MAX); ValueError for an inconsistent option.
  static std::int64_t weight_count(const FlowOptions& options);

  const FlowOptions& options() const { return options_; }

  /// Data -> base: u and log |det du/dz| of each row. z on the flow's device and dtype
  /// (ShapeError / DeviceError / ValueError otherwise).
  std::pair<at::Tensor, at::Tensor>
  forward(const at::Tensor& z /* (N, D) */) const; // -> (N, D), (N)
  /// Base -> data, the inverse of forward (D sequential passes per block).
  at::Tensor inverse(const at::Tensor& u /* (N, D) */) const; // -> (N, D)
  /// log p(z), exact, differentiable with respect to z and the weights. When no weight requires
  /// grad (the deblender's case) a fused path with a hand-written gradient with respect to z
  /// (first derivatives only) replaces autograd: the same values to rounding, ~half the kernels.
  /// It caches rearranged weights, rebuilt when a weight tensor is replaced or changed in place
  /// (its version counter); writes through raw data pointers would go unnoticed.
  at::Tensor log_prob(const at::Tensor& z /* (N, D) */) const; // -> (N)
  /// n draws from the flow; the base noise comes from `generator` (a CPU generator), so that
  /// draws are reproducible on any device. Returned on the flow's device.
  at::Tensor sample(std::int64_t n, at::Generator& generator) const; // -> (n, D)

  /// Sets the standardisation to shift = mean, log_scale = log(std) (e.g. of the training data).
  void set_standardisation(const at::Tensor& mean /* (D) */, const at::Tensor& std /* (D) */);

  /// Weights in a fixed order ("standardise.shift", "standardise.log_scale", "block0.layer0.weight"
  /// ...).
  const NamedTensors& parameters() const { return params_; }
  NamedTensors& parameters() { return params_; }
  std::int64_t parameter_count() const;

  void to(c10::Device device, c10::ScalarType dtype = c10::kFloat);
  c10::Device device() const;
  c10::ScalarType dtype() const;
  LatentFlow clone() const;

private:
  /// mu and alpha of block k for input x (N, D).
  std::pair<at::Tensor, at::Tensor> made(std::size_t block, const at::Tensor& x) const;
  void check(const at::Tensor& t, const char* what) const;

  struct FrozenCache; // the weights rearranged for the fused log_prob, see log_prob

  FlowOptions options_;
  NamedTensors params_;
  std::vector<at::Tensor> masks_; // per MADE layer (out, in), on the weights' device and dtype
  std::shared_ptr<FrozenCache> frozen_; // shared by copies (valid for any flow whose weights match)
};

} // namespace demix
#pragma GCC visibility pop

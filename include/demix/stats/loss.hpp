#pragma once
// Losses over statistics' coefficients, evaluated chunk by chunk.
//
// A statistic computes its coefficients in chunks (WPH: a few covariances at a time, so that a
// 2048^2 loss and gradient fit one GPU) and hands each chunk to a CoefficientLoss: values (b, n)
// for the coefficient rows `rows` (n) of maps [batch_offset, batch_offset + b) of the call. The
// loss of a map is the sum over the chunks; chunks partition the coefficients of each map, in an
// order the loss must not depend on. So any loss that is a sum over coefficients of per-map terms
// uses the same memory-bounded path: a weighted distance to targets, a per-realization loss
// normalised by a spread sigma_k (weights 1 / sigma_k^2, targets per map), several statistics at
// once (a LossTerm each, see total_loss_and_grad).

#include <demix/stats/reference.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <memory>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

class Statistic;

/// A loss that is a sum over coefficients of per-map terms.
class CoefficientLoss {
public:
  virtual ~CoefficientLoss() = default;
  /// The loss of one chunk, per map: values (b, n) of coefficient rows `rows` ((n) int64, on the
  /// values' device) for the maps batch_offset .. batch_offset + b - 1 of the call. -> (b) real,
  /// differentiable with respect to values.
  virtual at::Tensor chunk(const at::Tensor& values /* (b, n) */, const at::Tensor& rows /* (n) */,
                           int64_t batch_offset) const = 0;
};

/// sum_k w_k |phi_k(x_b) - t_k|^2 for each map b: the distance of microcanonical syntheses and of
/// component separation (with w_k = 1 / sigma_k^2).
class SquaredDistance final : public CoefficientLoss {
public:
  /// target: (K) for every map, or (B, K) one row per map of the calls it will serve; real or
  /// complex (|.| is the complex modulus).
  /// weights: (K) or (B, K) real >= 0, or undefined for 1. Both are read at each call, not copied:
  /// a caller may update them in place (as a recorded CUDA-graph step must).
  /// weights_imag: (K) or (B, K) real >= 0, or undefined: then the real and imaginary parts of
  /// each residual r_k are weighted apart, weights_k Re(r_k)^2 + weights_imag_k Im(r_k)^2
  /// (component separation normalises each part by its own spread over the realizations).
  /// ShapeError if they are not 1-D or 2-D, or do not agree in K.
  explicit SquaredDistance(at::Tensor target /* (K) or (B, K) */,
                           at::Tensor weights = {} /* (K) or (B, K) */,
                           at::Tensor weights_imag = {} /* (K) or (B, K) */);
  at::Tensor chunk(const at::Tensor& values, const at::Tensor& rows,
                   int64_t batch_offset) const override;

  const at::Tensor& target() const { return target_; }
  const at::Tensor& weights() const { return weights_; }
  const at::Tensor& weights_imag() const { return weights_imag_; }

private:
  at::Tensor target_, weights_, weights_imag_;
};

/// What Statistic::loss_and_grad returns.
struct LossResult {
  at::Tensor loss; ///< (B) real, per map, detached
  at::Tensor grad; ///< like x: d (sum of loss) / d x (of map b: d loss_b / d x_b); undefined when
                   ///< the gradient was not asked for
  /// The sum over maps, () real.
  at::Tensor total() const;
};

/// One term of a loss over several statistics: weight * (the statistic's loss of x).
struct LossTerm {
  std::shared_ptr<const Statistic> statistic;
  std::shared_ptr<const CoefficientLoss> loss;
  Reference reference; ///< passed to the statistic (empty: each map normalised by its own)
  double weight = 1.0; ///< >= 0
};

/// sum_t weight_t loss_t(x) and its gradient, one statistic after the other (each on its own
/// memory-bounded path). ValueError for an empty list, a null statistic or loss, or a negative
/// weight.
LossResult total_loss_and_grad(const std::vector<LossTerm>& terms, const at::Tensor& x,
                               bool want_grad = true);

} // namespace demix
#pragma GCC visibility pop

#include <demix/core/errors.hpp>
#include <demix/stats/loss.hpp>
#include <demix/stats/statistic.hpp>

#include <ATen/ATen.h>

namespace demix {

namespace {

/// The rows of t (K) or (B, K) for the maps [offset, offset + b) and the coefficients `rows`.
at::Tensor rows_of(const at::Tensor& t, const at::Tensor& rows, int64_t offset, int64_t b) {
  const at::Tensor maps = t.dim() == 2 && t.size(0) > 1 ? t.narrow(0, offset, b) : t;
  return maps.index_select(-1, rows);
}

} // namespace

SquaredDistance::SquaredDistance(at::Tensor target, at::Tensor weights, at::Tensor weights_imag)
    : target_(std::move(target)), weights_(std::move(weights)),
      weights_imag_(std::move(weights_imag)) {
  if (!target_.defined() || target_.dim() < 1 || target_.dim() > 2)
    throw ShapeError("SquaredDistance: the target must be (K) or (B, K), got " +
                     (target_.defined() ? std::to_string(target_.dim()) + " dimensions"
                                        : std::string("an undefined tensor")));
  if (weights_.defined()) {
    if (weights_.dim() < 1 || weights_.dim() > 2 || weights_.size(-1) != target_.size(-1))
      throw ShapeError("SquaredDistance: the weights must be (K) or (B, K) with K = " +
                       std::to_string(target_.size(-1)) + " as the target's, got " +
                       std::to_string(weights_.dim()) + " dimensions of last size " +
                       std::to_string(weights_.size(-1)));
    if (weights_.is_complex()) throw ValueError("SquaredDistance: the weights must be real");
  }
  if (weights_imag_.defined()) {
    if (!weights_.defined() || weights_imag_.sizes() != weights_.sizes() ||
        weights_imag_.is_complex())
      throw ShapeError("SquaredDistance: the imaginary parts' weights must be real and shaped "
                       "as the weights");
  }
}

at::Tensor SquaredDistance::chunk(const at::Tensor& values, const at::Tensor& rows,
                                  int64_t batch_offset) const {
  const int64_t b = values.size(0);
  const at::Tensor t = target_.to(values.device(), values.scalar_type());
  const at::Tensor r = values - rows_of(t, rows, batch_offset, b); // (b, n)
  const auto w = [&](const at::Tensor& weights) {
    return rows_of(weights.to(r.device(), c10::toRealValueType(r.scalar_type())), rows,
                   batch_offset, b);
  };
  if (weights_imag_.defined()) {
    const at::Tensor re = r.is_complex() ? at::real(r) : r;
    at::Tensor d = re.square() * w(weights_);
    if (r.is_complex()) d = d + at::imag(r).square() * w(weights_imag_);
    return d.sum(-1);
  }
  at::Tensor d = r.abs().square(); // (b, n)
  if (weights_.defined())
    d = d * rows_of(weights_.to(d.device(), d.scalar_type()), rows, batch_offset, b);
  return d.sum(-1);
}

at::Tensor LossResult::total() const { return loss.sum(); }

LossResult total_loss_and_grad(const std::vector<LossTerm>& terms, const at::Tensor& x,
                               bool want_grad) {
  if (terms.empty()) throw ValueError("total_loss_and_grad: no loss terms");
  LossResult total;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    const LossTerm& t = terms[i];
    if (!t.statistic || !t.loss)
      throw ValueError("total_loss_and_grad: term " + std::to_string(i) +
                       " has no statistic or no loss");
    if (!(t.weight >= 0))
      throw ValueError("total_loss_and_grad: term " + std::to_string(i) + " has weight " +
                       std::to_string(t.weight) + "; weights must be >= 0");
    const LossResult r = t.statistic->loss_and_grad(x, *t.loss, t.reference, want_grad);
    total.loss = i == 0 ? r.loss * t.weight : total.loss + r.loss * t.weight;
    if (want_grad) total.grad = i == 0 ? r.grad * t.weight : total.grad + r.grad * t.weight;
  }
  return total;
}

} // namespace demix

#include <demix/core/errors.hpp>
#include <demix/stats/statistic.hpp>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

namespace demix {

Reference Statistic::reference(const at::Tensor&) const { return {}; }

Coefficients Statistic::forward_cross(const at::Tensor&, const at::Tensor&,
                                      const Reference&) const {
  throw ValueError(std::string(name()) + ": cross statistics are not implemented for this "
                                         "statistic (supports_cross() is false)");
}

LossResult Statistic::loss_and_grad(const at::Tensor& x, const CoefficientLoss& loss,
                                    const Reference& ref, bool want_grad) const {
  c10::AutoGradMode grad_mode(want_grad);
  const at::Tensor leaf = x.detach().requires_grad_(want_grad);
  const Coefficients c = forward(leaf, ref);
  const at::Tensor rows =
      at::arange(c.size(), at::TensorOptions().dtype(at::kLong).device(c.values.device()));
  const at::Tensor per_map = loss.chunk(c.values, rows, 0); // (B)
  LossResult r;
  if (want_grad) {
    per_map.sum().backward();
    r.grad = leaf.grad().defined() ? leaf.grad() : at::zeros_like(leaf);
  }
  r.loss = per_map.detach();
  return r;
}

} // namespace demix

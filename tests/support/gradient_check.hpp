#pragma once
// Finite-difference checks of autograd gradients, shared by the statistics operators' tests.

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace demix::test {

/// Largest error between the autograd directional derivative <grad f(x), v> and the central
/// difference (f(x + h v) - f(x - h v)) / (2 h), relative to |grad f(x)|, over `directions`
/// random unit directions v and the gradient direction itself. f must return a real scalar.
inline double max_directional_gradient_error(const std::function<at::Tensor(const at::Tensor&)>& f,
                                             const at::Tensor& x, int directions, double h) {
  const at::Tensor xg = x.detach().clone().requires_grad_(true);
  f(xg).backward();
  const at::Tensor grad = xg.grad().detach();
  double worst = 0;
  c10::AutoGradMode no_grad(false);
  for (int i = 0; i <= directions; ++i) {
    at::Tensor v = i == directions ? grad.clone() : at::randn_like(x);
    v /= v.norm();
    const double fd = (f(x + h * v).item<double>() - f(x - h * v).item<double>()) / (2 * h);
    const double ad = (grad * v).sum().item<double>();
    worst = std::max(worst, std::abs(fd - ad) / grad.norm().item<double>());
  }
  return worst;
}

} // namespace demix::test

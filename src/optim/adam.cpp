#include "optim/adam.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

namespace demix::detail {

Adam::Adam(const std::vector<at::Tensor>& params, AdamSettings settings) : settings_(settings) {
  for (const auto& p : params) {
    first_moment.push_back(at::zeros_like(p.detach()));
    second_moment.push_back(at::zeros_like(p.detach()));
  }
}

void Adam::step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                double lr) {
  c10::AutoGradMode no_grad(false);
  ++step_count;
  const double b1 = settings_.beta1, b2 = settings_.beta2;
  const double bias1 = 1 - std::pow(b1, static_cast<double>(step_count));
  const double bias2 = 1 - std::pow(b2, static_cast<double>(step_count));
  for (std::size_t i = 0; i < params.size(); ++i) {
    at::Tensor p = params[i];
    first_moment[i].mul_(b1).add_(grads[i], 1 - b1);
    second_moment[i].mul_(b2).addcmul_(grads[i], grads[i], 1 - b2);
    const at::Tensor denom = (second_moment[i].sqrt() / std::sqrt(bias2)).add_(settings_.eps);
    p.addcdiv_(first_moment[i], denom, -lr / bias1);
  }
}

void clip_grad_norm(std::vector<at::Tensor>& grads, double max_norm) {
  if (max_norm <= 0 || grads.empty()) return;
  c10::AutoGradMode no_grad(false);
  at::Tensor total = at::zeros({}, grads.front().options());
  for (const auto& g : grads) total = total + g.square().sum();
  const at::Tensor factor = (max_norm / (total.sqrt() + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g = g * factor;
}

} // namespace demix::detail

#include <demix/core/errors.hpp>
#include <demix/optim/adam.hpp>

#include "core/detail/sizes_text.hpp"
#include "optim/detail/require_option.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <string>
#include <utility>

namespace demix {

namespace {

void check_options(const AdamOptions& o) {
  const detail::OptionCheck require{"AdamOptions"};
  require(o.learning_rate > 0 && std::isfinite(o.learning_rate), "learning_rate", o.learning_rate,
          "> 0 and finite");
  require(o.lr_decay > 0 && o.lr_decay <= 1, "lr_decay", o.lr_decay, "in (0, 1]");
  require(o.lr_decay_steps >= 1, "lr_decay_steps", o.lr_decay_steps, ">= 1");
  require(o.beta1 >= 0 && o.beta1 < 1, "beta1", o.beta1, "in [0, 1)");
  require(o.beta2 >= 0 && o.beta2 < 1, "beta2", o.beta2, "in [0, 1)");
  require(o.epsilon > 0 && std::isfinite(o.epsilon), "epsilon", o.epsilon, "> 0 and finite");
}

/// ShapeError unless `tensors` holds one tensor shaped like each of `like`.
void check_like(const std::vector<at::Tensor>& tensors, const std::vector<at::Tensor>& like,
                const std::string& what) {
  if (tensors.size() != like.size())
    throw ShapeError(what + ": " + std::to_string(tensors.size()) + " tensors for " +
                     std::to_string(like.size()) + " parameters");
  for (std::size_t i = 0; i < like.size(); ++i)
    if (!tensors[i].defined() || tensors[i].sizes() != like[i].sizes())
      throw ShapeError(what + " " + std::to_string(i) + ": " +
                       (tensors[i].defined() ? detail::sizes_text(tensors[i]) : "undefined") +
                       ", the state holds " + detail::sizes_text(like[i]));
}

} // namespace

Adam::Adam(const std::vector<at::Tensor>& params, const AdamOptions& options) : options_(options) {
  check_options(options_);
  for (const auto& p : params) {
    state_.first_moment.push_back(at::zeros_like(p.detach()));
    state_.second_moment.push_back(at::zeros_like(p.detach()));
  }
  const auto device = params.empty() ? at::Device(at::kCPU) : params.front().device();
  state_.steps = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
}

void Adam::step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads) {
  const AdamOptions& o = options_;
  // lr decay^floor(t / decay_steps) with t the steps taken before this one.
  update(params, grads,
         at::pow(o.lr_decay, at::floor(state_.steps / o.lr_decay_steps)).mul_(o.learning_rate));
}

void Adam::step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                double lr) {
  if (!(lr > 0) || !std::isfinite(lr))
    throw ValueError("Adam::step: lr = " + detail::number_text(lr) + ": must be > 0 and finite");
  update(params, grads, at::full({}, lr, state_.steps.options()));
}

void Adam::update(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                  const at::Tensor& lr) {
  check_like(params, state_.first_moment, "Adam::step: parameter");
  check_like(grads, state_.first_moment, "Adam::step: gradient");
  c10::AutoGradMode no_grad(false);
  const AdamOptions& o = options_;
  // Bias corrections of step t = steps + 1, from the device count.
  const at::Tensor c1 = 1 - at::pow(o.beta1, state_.steps + 1);
  const at::Tensor sqrt_c2 = (1 - at::pow(o.beta2, state_.steps + 1)).sqrt_();
  const at::Tensor scale = -lr * sqrt_c2 / c1;
  const at::Tensor eps = o.epsilon * sqrt_c2;
  for (std::size_t i = 0; i < params.size(); ++i) {
    at::Tensor m = state_.first_moment[i], v = state_.second_moment[i];
    m.lerp_(grads[i], 1 - o.beta1); // beta1 m + (1 - beta1) g
    v.mul_(o.beta2).addcmul_(grads[i], grads[i], 1 - o.beta2);
    at::Tensor p = params[i];
    p.addcdiv_(m * scale, v.sqrt().add_(eps));
  }
  state_.steps.add_(1);
}

void Adam::keep_rows(const at::Tensor& rows) {
  for (auto* list : {&state_.first_moment, &state_.second_moment})
    for (at::Tensor& t : *list) t = t.index_select(0, rows);
}

void Adam::load_state(AdamState state) {
  check_like(state.first_moment, state_.first_moment, "Adam::load_state: first moment");
  check_like(state.second_moment, state_.first_moment, "Adam::load_state: second moment");
  if (!state.steps.defined() || state.steps.numel() != 1)
    throw ShapeError("Adam::load_state: the step count must be one number, got " +
                     (state.steps.defined() ? detail::sizes_text(state.steps) : "nothing"));
  const double t = state.steps.item<double>();
  if (!(t >= 0) || t != std::floor(t))
    throw ValueError("Adam::load_state: step count " + detail::number_text(t) +
                     ": must be an integer >= 0");
  // Copies on the parameters' devices and in their dtypes, so that the caller's tensors are not
  // updated in place.
  for (std::size_t i = 0; i < state.first_moment.size(); ++i) {
    state.first_moment[i] = state.first_moment[i].to(state_.first_moment[i].options(), false, true);
    state.second_moment[i] =
        state.second_moment[i].to(state_.second_moment[i].options(), false, true);
  }
  state.steps = state.steps.reshape({}).to(state_.steps.options(), false, true);
  state_ = std::move(state);
}

std::int64_t Adam::step_count() const {
  return static_cast<std::int64_t>(state_.steps.item<double>());
}

void clip_grad_norm(std::vector<at::Tensor>& grads, double max_norm) {
  if (max_norm <= 0 || grads.empty()) return;
  c10::AutoGradMode no_grad(false);
  at::Tensor total = at::zeros({}, grads.front().options());
  for (const auto& g : grads) total = total + g.square().sum();
  const at::Tensor factor = (max_norm / (total.sqrt() + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g = g * factor;
}

} // namespace demix

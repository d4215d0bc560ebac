#include "models/detail/flow_frozen.hpp"

#include <demix/core/errors.hpp>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace demix::detail {

std::shared_ptr<const FrozenFlow>
freeze_flow(const at::Tensor& shift, const at::Tensor& log_scale,
            const std::vector<std::vector<std::pair<at::Tensor, at::Tensor>>>& layers,
            const std::vector<at::Tensor>& masks, double max_log_scale) {
  c10::AutoGradMode no_grad(false);
  auto f = std::make_shared<FrozenFlow>();
  const int64_t D = shift.numel();
  const double A = max_log_scale;
  f->dim = D;
  f->max_log_scale = A;
  f->scale = at::exp(-log_scale.detach());
  f->offset = -shift.detach() * f->scale;
  f->constant = -0.5 * static_cast<double>(D) * std::log(2 * M_PI) - log_scale.detach().sum();
  const std::size_t L = masks.size();
  for (std::size_t k = 0; k < layers.size(); ++k) {
    // Block k of the flow sees the activations reversed k times; stored in z's order they are
    // reversed when k is odd: its inputs and its outputs (within mu and within alpha) are permuted.
    const bool reversed = k % 2 == 1;
    std::vector<FrozenFlowLayer> block;
    for (std::size_t l = 0; l < L; ++l) {
      at::Tensor w = layers[k][l].first.detach() * masks[l]; // (out, in)
      at::Tensor b = layers[k][l].second.detach().clone();   // (out)
      if (reversed && l == 0) w = w.flip({1});
      FrozenFlowLayer layer;
      if (l + 1 < L) {
        layer.backward = w.contiguous();
      } else {
        if (reversed) {
          w = at::cat({w.narrow(0, 0, D).flip({0}), w.narrow(0, D, D).flip({0})});
          b = at::cat({b.narrow(0, 0, D).flip({0}), b.narrow(0, D, D).flip({0})});
        }
        // Backward: d/dh of (-mu, -A tanh(raw / A)) up to the elementwise factors, see backward().
        layer.backward = (-w).contiguous();
        w = w.clone();
        w.narrow(0, D, D).div_(A); // tanh(raw / A) = tanh(rows scaled by 1 / A)
        b.narrow(0, D, D).div_(A);
      }
      layer.weight_t = w.t().contiguous();
      layer.bias = b.contiguous();
      block.push_back(std::move(layer));
    }
    f->blocks.push_back(std::move(block));
  }
  return f;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FlowHolder : torch::CustomClassHolder {
  std::shared_ptr<const FrozenFlow> flow;
};

// Notation (activations in z's order): y_0 = z * scale + offset; block k: h = MADE hidden layers
// of y_k, (mu, r) = last layer (r already divided by A), t_k = tanh(r), e_k = exp(-A t_k),
// y_{k+1} = (y_k - mu) e_k. log p = constant - |y_K|^2 / 2 - A sum_k sum_i t_k,i.
struct FrozenLogProbFn : torch::autograd::Function<FrozenLogProbFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& z,
                               const std::shared_ptr<const FrozenFlow>& flow) {
    const FrozenFlow& f = *flow;
    const int64_t D = f.dim, N = z.size(0), K = static_cast<int64_t>(f.blocks.size());
    const double A = f.max_log_scale;
    at::Tensor y = at::addcmul(f.offset, z, f.scale);           // (N, D)
    const at::Tensor t_all = at::empty({K, N, D}, z.options()); // t_k of every block
    std::vector<at::Tensor> saved{t_all};                       // then per block: hidden..., e, y
    for (int64_t k = 0; k < K; ++k) {
      const auto& block = f.blocks[static_cast<std::size_t>(k)];
      at::Tensor h = y;
      for (std::size_t l = 0; l + 1 < block.size(); ++l) {
        h = at::addmm(block[l].bias, h, block[l].weight_t);
        h.tanh_();
        saved.push_back(h);
      }
      const at::Tensor out = at::addmm(block.back().bias, h, block.back().weight_t); // (N, 2D)
      at::Tensor t = t_all.select(0, k);
      at::tanh_out(t, out.narrow(1, D, D));
      at::Tensor e = at::mul(t, -A);
      e.exp_();
      y = at::sub(y, out.narrow(1, 0, D));
      y.mul_(e);
      saved.push_back(e);
      saved.push_back(y);
    }
    // log p = constant - A (sum t + |y_K|^2 / (2 A)).
    at::Tensor sum = t_all.sum(at::IntArrayRef{0, 2});
    sum.add_(at::mul(y, y).sum(1), 0.5 / A);
    ctx->save_for_backward(saved);
    auto holder = c10::make_intrusive<FlowHolder>();
    holder->flow = flow;
    ctx->saved_data["flow"] = at::IValue::make_capsule(holder);
    return {at::add(f.constant, sum, -A)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (c10::GradMode::is_enabled())
      throw ValueError("the frozen flow's log_prob has first derivatives only (create_graph was "
                       "asked for); give a flow parameter requires_grad to use autograd instead");
    const at::Tensor& g = grads[0]; // (N)
    if (!g.defined()) return {at::Tensor(), at::Tensor()};
    const auto holder = ctx->saved_data["flow"].toCapsule();
    const FrozenFlow& f = *static_cast<FlowHolder*>(holder.get())->flow;
    const variable_list saved = ctx->get_saved_variables();
    const int64_t D = f.dim, K = static_cast<int64_t>(f.blocks.size());
    const std::size_t per_block = f.blocks[0].size() + 1; // hidden activations, e, y
    const at::Tensor& t_all = saved[0];
    const at::Tensor g_col = g.unsqueeze(1); // (N, 1)
    const auto at_block = [&](int64_t k, std::size_t i) -> const at::Tensor& {
      return saved[1 + static_cast<std::size_t>(k) * per_block + i];
    };
    // ybar = d log p / d y_k, from d/dy_K (-|y_K|^2 / 2) down to k = 0.
    at::Tensor ybar = at::mul(at_block(K - 1, per_block - 1), g_col).neg_();
    // Gradient with respect to the last layer's outputs, signs folded into its backward weights:
    // columns [0, D) hold ybar e (= -d/dmu), columns [D, 2D) (g + ybar y_{k+1}) (1 - t^2)
    // (= -d/dr; d/dt = -A (ybar y_{k+1} + g) and r was divided by A).
    const at::Tensor out_bar = at::empty({g.size(0), 2 * D}, ybar.options());
    at::Tensor mu_bar = out_bar.narrow(1, 0, D), r_bar = out_bar.narrow(1, D, D);
    for (int64_t k = K - 1; k >= 0; --k) {
      const auto& block = f.blocks[static_cast<std::size_t>(k)];
      const std::size_t hidden = block.size() - 1;
      const at::Tensor &e = at_block(k, hidden), &y_next = at_block(k, hidden + 1);
      at::addcmul_out(r_bar, g_col, ybar, y_next);
      at::tanh_backward_out(r_bar, r_bar, t_all.select(0, k));
      at::mul_out(mu_bar, ybar, e); // also ybar's direct path through y_k
      at::Tensor h_bar = at::mm(out_bar, block.back().backward);
      for (std::size_t l = hidden; l-- > 0;) {
        at::tanh_backward_out(h_bar, h_bar, at_block(k, l));
        if (l > 0) h_bar = at::mm(h_bar, block[l].backward);
      }
      ybar = at::addmm(mu_bar, h_bar, block[0].backward);
    }
    return {ybar.mul_(f.scale), at::Tensor()};
  }
};

} // namespace

at::Tensor frozen_flow_log_prob(const std::shared_ptr<const FrozenFlow>& flow,
                                const at::Tensor& z) {
  return FrozenLogProbFn::apply(z, flow)[0];
}

} // namespace demix::detail

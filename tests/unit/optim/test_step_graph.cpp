// StepGraph (demix/optim/step_graph.hpp): recorded steps give what the same steps give eagerly, a
// step that cannot be recorded falls back to eager runs, and WphOperator::loss_and_grad, which
// records small calls on CUDA, returns what its eager path returns for each new input. The
// recordings exist on CUDA only (the CUDA tests run on the GPU machine); on the CPU a StepGraph is
// a plain call.

#include <demix/core/context.hpp>
#include <demix/optim/step_graph.hpp>
#include <demix/stats/wph.hpp>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

namespace {

double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item<double>();
}

// Gradient descent on f(z) = sum sin(z)^2 + (z - c)^2, through autograd, with a step size that
// changes between steps through a tensor: what a recording must replay faithfully.
struct Descent {
  at::Tensor z, c, rate, loss;
  void step() {
    c10::AutoGradMode grad_on(true);
    const at::Tensor leaf = z.detach().requires_grad_(true);
    const at::Tensor f = (at::sin(leaf).square() + (leaf - c).square()).sum();
    const at::Tensor g = torch::autograd::grad({f}, {leaf})[0];
    c10::AutoGradMode no_grad(false);
    z.sub_(rate * g);
    rate.mul_(0.9);
    loss = f.detach();
  }
};

Descent make_descent(c10::Device device) {
  at::manual_seed(5);
  const auto opt = at::TensorOptions().dtype(at::kFloat).device(device);
  return {at::randn({4, 300}, opt), at::randn({4, 300}, opt), at::full({}, 0.2, opt), {}};
}

void expect_steps_match(c10::Device device, bool graphs) {
  Descent eager = make_descent(device), replayed = make_descent(device);
  demix::StepGraph step([&] { replayed.step(); }, device, graphs);
  for (int t = 0; t < 6; ++t) {
    eager.step();
    step();
    // The same kernels on the same data: equal to rounding (float32, a few ulps of 1).
    EXPECT_LT(rel_diff(replayed.z, eager.z), 1e-6) << "step " << t;
    EXPECT_LT(rel_diff(replayed.loss, eager.loss), 1e-6) << "step " << t;
  }
  EXPECT_EQ(step.recorded(), graphs && device.is_cuda());
}

TEST(StepGraph, PlainCallsOnCpu) { expect_steps_match(c10::kCPU, true); }

TEST(StepGraph, RecordedStepsMatchEagerOnCuda) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  expect_steps_match(c10::Device(c10::kCUDA, 0), true);
  expect_steps_match(c10::Device(c10::kCUDA, 0), false);
}

TEST(StepGraph, StepThatSynchronisesRunsEagerly) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const auto opt = at::TensorOptions().dtype(at::kFloat).device(c10::kCUDA);
  at::Tensor x = at::zeros({8}, opt);
  double seen = 0;
  demix::StepGraph step([&] { seen = x.add_(1).sum().item<double>(); }, opt.device());
  for (int t = 1; t <= 4; ++t) {
    step();
    EXPECT_EQ(seen, 8.0 * t); // each call ran exactly once, the failed recording included
  }
  EXPECT_FALSE(step.recorded());
  // The failed recording left LibTorch usable: random numbers (its generator records too) and a
  // recorded step afterwards.
  EXPECT_NO_THROW(at::randn({16}, opt).sum().item<double>());
  expect_steps_match(opt.device(), true);
}

// loss_and_grad with recordings against loss_and_grad without, for new maps and targets at each
// call, two batch shapes alternating (both recordings kept), and a reference set in between (the
// recordings read the reference's statistics: they must be dropped).
TEST(StepGraph, WphLossAndGradientReplaysMatchEager) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const demix::Context ctx({demix::DeviceKind::Cuda});
  demix::WphOptions o;
  o.J = 4, o.L = 4, o.dn = 1, o.norm = demix::WphNorm::Auto;
  demix::WphOptions eager_o = o;
  eager_o.cuda_graphs = false;
  demix::WphOperator op(o, 32, 32, ctx), eager(eager_o, 32, 32, ctx);
  at::manual_seed(9);
  const auto opt = ctx.options();
  const at::Tensor reference = at::randn({32, 32}, opt);
  op.set_reference(reference), eager.set_reference(reference);
  for (int call = 0; call < 8; ++call) {
    if (call == 5) {
      const at::Tensor other = at::randn({32, 32}, opt) * 3;
      op.set_reference(other), eager.set_reference(other);
    }
    const int64_t B = call % 2 ? 2 : 1;
    const at::Tensor x = at::randn({B, 32, 32}, opt);
    const at::Tensor target = eager.forward(at::randn({B, 32, 32}, opt)).values.detach();
    at::Tensor g, g_eager;
    const at::Tensor l = op.loss_and_grad(x, target, {}, &g);
    const at::Tensor l_eager = eager.loss_and_grad(x, target, {}, &g_eager);
    // Same kernels, same order: float32 rounding only.
    EXPECT_LT(rel_diff(l, l_eager), 1e-5) << "call " << call;
    EXPECT_LT(rel_diff(g, g_eager), 1e-5) << "call " << call;
  }
}

} // namespace

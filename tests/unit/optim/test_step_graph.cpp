// StepGraph (demix/optim/step_graph.hpp): recorded steps give what the same steps give eagerly, a
// step that cannot be recorded falls back to eager runs, and a recorded WphOperator::loss_and_grad
// (as an optimiser loop records it) returns what eager calls return for each new input. The
// recordings exist on CUDA only (the CUDA tests run on the GPU machine); on the CPU a StepGraph is
// a plain call.

#include <demix/core/context.hpp>
#include <demix/optim/step_graph.hpp>
#include <demix/stats/wph.hpp>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <map>
#include <memory>

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

// A WPH loss + gradient recorded by its caller (as an optimiser loop records its step) against
// eager calls: new maps and targets at each call, written into the recording's inputs; two batch
// shapes alternating (a recording each); a new reference copied into the tensors the recordings
// read, in between.
TEST(StepGraph, WphLossAndGradientReplaysMatchEager) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const demix::Context ctx({demix::DeviceKind::Cuda});
  const demix::WphOperator op({.J = 4, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto}, {32, 32},
                              ctx);
  at::manual_seed(9);
  const auto opt = ctx.options();
  const demix::Reference reference = op.reference(at::randn({32, 32}, opt));
  struct Recorded {
    at::Tensor x, target; // the recording's inputs, at fixed addresses
    std::unique_ptr<demix::SquaredDistance> loss;
    demix::LossResult out;
    std::unique_ptr<demix::StepGraph> step;
  };
  std::map<int64_t, Recorded> by_batch;
  for (int call = 0; call < 8; ++call) {
    if (call == 5) {
      const demix::Reference other = op.reference(at::randn({32, 32}, opt) * 3);
      for (std::size_t i = 0; i < reference.tensors().size(); ++i)
        reference.tensors()[i].second.copy_(other.tensors()[i].second);
    }
    const int64_t B = call % 2 ? 2 : 1;
    const at::Tensor x = at::randn({B, 32, 32}, opt);
    const at::Tensor target = op.forward(at::randn({B, 32, 32}, opt), reference).values.detach();
    Recorded& r = by_batch[B];
    if (!r.step) {
      r.x = at::empty_like(x), r.target = at::empty_like(target);
      r.loss = std::make_unique<demix::SquaredDistance>(r.target);
      r.step = std::make_unique<demix::StepGraph>(
          [&r, &op, &reference] { r.out = op.loss_and_grad(r.x, *r.loss, reference); },
          ctx.device());
    }
    r.x.copy_(x), r.target.copy_(target);
    (*r.step)();
    const demix::LossResult eager = op.loss_and_grad(x, demix::SquaredDistance(target), reference);
    // Same kernels, same order: float32 rounding only.
    EXPECT_LT(rel_diff(r.out.loss, eager.loss), 1e-5) << "call " << call;
    EXPECT_LT(rel_diff(r.out.grad, eager.grad), 1e-5) << "call " << call;
  }
  EXPECT_TRUE(by_batch[1].step->recorded());
}

} // namespace

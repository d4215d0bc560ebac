// Adam (include/demix/optim/adam.hpp): against torch::optim::Adam (float64 and float32, several
// tensors, a checkpoint in the middle), against the staircase schedule written out as a plain
// loop, rows that leave (keep_rows) against the same rows optimised alone, a recorded step against
// eager steps on CUDA, gradient clipping, and errors.

#include <demix/core/errors.hpp>
#include <demix/optim/adam.hpp>
#include <demix/optim/step_graph.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

/// The gradient of sum((p - target)^2) - sum(cos(3 p)) / 3.
at::Tensor toy_grad(const at::Tensor& p, const at::Tensor& target) {
  return 2 * (p.detach() - target) + at::sin(p.detach() * 3);
}

TEST(Adam, MatchesTorchOptimAdam) {
  // Same problem, same gradients: our Adam and LibTorch's must take the same steps (float64).
  const at::Tensor target = at::randn({5, 3}, at::kDouble);
  at::Tensor a = at::zeros({5, 3}, at::kDouble).requires_grad_(true);
  at::Tensor b = a.detach().clone().requires_grad_(true);
  torch::optim::Adam reference({b}, torch::optim::AdamOptions(0.05));
  demix::Adam ours({a});
  for (int step = 0; step < 20; ++step) {
    const at::Tensor ga = 2 * (a.detach() - target) + at::sin(a.detach() * 3);
    ours.step({a}, {ga}, 0.05);
    reference.zero_grad();
    ((b - target).square().sum() - at::cos(b * 3).sum() / 3).backward();
    reference.step();
  }
  // float64, 20 steps of identical arithmetic up to operation order: 1e-12 is ~1e4 ulps.
  EXPECT_LT((a.detach() - b.detach()).abs().max().item<double>(), 1e-12);
  EXPECT_GT((a.detach()).abs().max().item<double>(), 0.5); // it moved
}

TEST(Adam, MatchesTorchOnSeveralTensorsAcrossACheckpoint) {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    at::manual_seed(3);
    const std::vector<at::Tensor> targets = {at::randn({4, 3}, dtype), at::randn({7}, dtype)};
    std::vector<at::Tensor> ours = {at::zeros({4, 3}, dtype), at::zeros({7}, dtype)};
    std::vector<at::Tensor> theirs = {ours[0].clone().requires_grad_(true),
                                      ours[1].clone().requires_grad_(true)};
    const torch::optim::AdamOptions topts =
        torch::optim::AdamOptions(0.03).betas({0.8, 0.99}).eps(1e-6);
    torch::optim::Adam reference(theirs, topts);
    const demix::AdamOptions options{.beta1 = 0.8, .beta2 = 0.99, .epsilon = 1e-6};
    demix::Adam adam(ours, options);
    for (int step = 0; step < 30; ++step) {
      if (step == 12) { // a checkpoint: a fresh optimiser continues from the saved state
        const demix::AdamState saved = adam.state();
        demix::Adam resumed(ours, options);
        resumed.load_state({{saved.first_moment[0].clone(), saved.first_moment[1].clone()},
                            {saved.second_moment[0].clone(), saved.second_moment[1].clone()},
                            saved.steps.clone()});
        EXPECT_EQ(resumed.step_count(), 12);
        adam = std::move(resumed);
      }
      adam.step(ours, {toy_grad(ours[0], targets[0]), toy_grad(ours[1], targets[1])}, 0.03);
      reference.zero_grad();
      at::Tensor loss = at::zeros({}, dtype);
      for (int i = 0; i < 2; ++i)
        loss = loss + (theirs[i] - targets[i]).square().sum() - at::cos(theirs[i] * 3).sum() / 3;
      loss.backward();
      reference.step();
    }
    // float64: as in MatchesTorchOptimAdam. float32: rounding differences of ~1e-7 relative per
    // step, which Adam's normalised steps (~lr = 0.03 each) carry along: 1e-5 on values of O(1).
    const double tol = dtype == at::kDouble ? 1e-12 : 1e-5;
    for (int i = 0; i < 2; ++i) {
      EXPECT_LT((ours[i] - theirs[i].detach()).abs().max().item<double>(), tol) << dtype;
      EXPECT_GT(ours[i].abs().max().item<double>(), 0.3) << dtype; // it moved
    }
    EXPECT_EQ(adam.step_count(), 30);
  }
}

TEST(Adam, StaircaseScheduleIsTheDocumentedFormula) {
  // MADNESS's settings: lr 0.05, decayed by 0.8 every 3 steps (30 in MADNESS), Keras's epsilon.
  const demix::AdamOptions o{.learning_rate = 0.05,
                             .lr_decay = 0.8,
                             .lr_decay_steps = 3,
                             .beta1 = 0.9,
                             .beta2 = 0.999,
                             .epsilon = 1e-7};
  at::manual_seed(5);
  const at::Tensor target = at::randn({6, 4}, at::kDouble);
  at::Tensor x = at::zeros({6, 4}, at::kDouble), constant = x.clone();
  demix::Adam adam({x}, o);
  demix::Adam adam_constant({constant}, {.learning_rate = 0.05, .epsilon = 1e-7});
  // The plain loop, from the header's formula.
  at::Tensor p = x.clone(), m = at::zeros_like(p), v = at::zeros_like(p);
  for (int t = 1; t <= 14; ++t) {
    adam.step({x}, {toy_grad(x, target)});
    adam_constant.step({constant}, {toy_grad(constant, target)});
    const at::Tensor g = toy_grad(p, target);
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g * g;
    const double lr = o.learning_rate * std::pow(o.lr_decay, (t - 1) / o.lr_decay_steps);
    const at::Tensor m_hat = m / (1 - std::pow(o.beta1, t));
    const at::Tensor v_hat = v / (1 - std::pow(o.beta2, t));
    p = p - lr * m_hat / (v_hat.sqrt() + o.epsilon);
  }
  // float64, the same formula with operations in another order: ~1e3 ulps after 14 steps.
  EXPECT_LT((x - p).abs().max().item<double>(), 1e-13);
  EXPECT_GT((x - constant).abs().max().item<double>(), 1e-3); // the step size did decay
  EXPECT_EQ(adam.step_count(), 14);
}

TEST(Adam, KeptRowsContinueAsIfOptimisedAlone) {
  at::manual_seed(7);
  const at::Tensor target = at::randn({6, 4}, at::kDouble);
  const at::Tensor rows = at::tensor({0, 2, 5}, at::kLong);
  const demix::AdamOptions o{.learning_rate = 0.1, .lr_decay = 0.5, .lr_decay_steps = 4};
  at::Tensor all = at::zeros({6, 4}, at::kDouble), alone = at::zeros({3, 4}, at::kDouble);
  demix::Adam adam_all({all}, o), adam_alone({alone}, o);
  const at::Tensor target_kept = target.index_select(0, rows);
  for (int t = 0; t < 10; ++t) {
    if (t == 5) {
      adam_all.keep_rows(rows);
      all = all.index_select(0, rows);
    }
    adam_all.step({all}, {toy_grad(all, t < 5 ? target : target_kept)});
    adam_alone.step({alone}, {toy_grad(alone, target_kept)});
  }
  // Element-wise arithmetic only: equal up to vectorised and scalar code paths (a few ulps).
  EXPECT_LT((all - alone).abs().max().item<double>(), 1e-14);
  EXPECT_GT(alone.abs().max().item<double>(), 0.3);
}

// On CUDA a step with the schedule reads everything from the device: recorded as a CUDA graph and
// replayed, it gives the eager steps.
TEST(Adam, RecordedStepsEqualEagerStepsOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto opts = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
  const demix::AdamOptions o{.learning_rate = 0.05, .lr_decay = 0.8, .lr_decay_steps = 3};
  at::manual_seed(9);
  const at::Tensor target = at::randn({64, 8}, opts);
  at::Tensor eager = at::zeros({64, 8}, opts), replayed = eager.clone();
  demix::Adam adam_eager({eager}, o), adam_replayed({replayed}, o);
  demix::StepGraph graph([&] { adam_replayed.step({replayed}, {toy_grad(replayed, target)}); },
                         replayed.device());
  for (int t = 0; t < 12; ++t) {
    adam_eager.step({eager}, {toy_grad(eager, target)});
    graph();
  }
  EXPECT_TRUE(graph.recorded()); // as in StepGraph's own tests
  // The same kernels: equal to rounding of fused or reordered kernels, 1e-13 on values of O(1).
  EXPECT_LT((eager - replayed).abs().max().item<double>(), 1e-13);
  EXPECT_EQ(adam_replayed.step_count(), 12);
}

TEST(Adam, ClipGradNormBoundsTheGlobalNorm) {
  std::vector<at::Tensor> grads = {at::full({3}, 2.0, at::kDouble),
                                   at::full({4}, 2.0, at::kDouble)};
  demix::clip_grad_norm(grads, 1.0); // norm sqrt(7 x 4) -> 1
  const double norm = (grads[0].square().sum() + grads[1].square().sum()).sqrt().item<double>();
  EXPECT_NEAR(norm, 1.0, 1e-6); // the 1e-6 guard in the denominator
  std::vector<at::Tensor> small = {at::full({2}, 0.1, at::kDouble)};
  demix::clip_grad_norm(small, 1.0);
  EXPECT_TRUE(at::equal(small[0], at::full({2}, 0.1, at::kDouble))); // under the bound: as is
}

TEST(Adam, BadOptionsAndShapesThrowNamingTheValue) {
  const std::vector<at::Tensor> p = {at::zeros({3, 2}, at::kDouble)};
  const std::vector<std::pair<demix::AdamOptions, std::string>> bad = {
      {{.learning_rate = 0}, "AdamOptions.learning_rate = 0:"},
      {{.lr_decay = 1.5}, "AdamOptions.lr_decay = 1.5:"},
      {{.lr_decay_steps = 0}, "AdamOptions.lr_decay_steps = 0:"},
      {{.beta1 = 1}, "AdamOptions.beta1 = 1:"},
      {{.beta2 = -0.1}, "AdamOptions.beta2 = -0.1:"},
      {{.epsilon = 0}, "AdamOptions.epsilon = 0:"}};
  for (const auto& [options, message] : bad) {
    try {
      demix::Adam adam(p, options);
      ADD_FAILURE() << "accepted: " << message;
    } catch (const demix::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }

  demix::Adam adam(p);
  EXPECT_THROW(adam.step(p, {at::zeros({2, 3}, at::kDouble)}), demix::ShapeError);
  EXPECT_THROW(adam.step(p, {}), demix::ShapeError);
  EXPECT_THROW(adam.step(p, p, -1.0), demix::ValueError);
  EXPECT_THROW(adam.load_state({{at::zeros({3, 2})}, {at::zeros({3})}, at::zeros({})}),
               demix::ShapeError);
  EXPECT_THROW(adam.load_state({{at::zeros({3, 2})}, {at::zeros({3, 2})}, at::full({}, 2.5)}),
               demix::ValueError);
}

} // namespace

// The latent flow: log p(z) against the change-of-variables formula with an autograd Jacobian,
// inverse(forward(z)) = z, the triangular Jacobian the MADE masks promise, gradients against finite
// differences, and a short training run that must recover a correlated Gaussian. With frozen
// weights log_prob takes a fused path with a hand-written gradient: checked against the autograd
// path (the same flow with one weight requiring grad) and finite differences, including after the
// weights change.

#include <demix/core/errors.hpp>
#include <demix/models/flow.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/models/training.hpp>

#include "support/gradient_check.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

namespace {

/// A flow in float64 whose weights are all random (a fresh flow's last MADE layers are zero,
/// which would make every block the identity and the checks below trivial).
demix::LatentFlow random_flow(const demix::FlowOptions& options, std::uint64_t seed) {
  demix::LatentFlow flow(options, seed);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed + 100);
  for (auto& p : flow.parameters())
    p.tensor = p.tensor + 0.3 * at::randn(p.tensor.sizes(), gen, at::kFloat);
  flow.to(at::kCPU, at::kDouble);
  return flow;
}

/// du/dz of each row: (N, D, D), J[n][i][j] = d u_i / d z_j (rows are independent samples).
at::Tensor jacobian(const demix::LatentFlow& flow, const at::Tensor& z) {
  const at::Tensor zg = z.detach().clone().requires_grad_(true);
  const at::Tensor u = flow.forward(zg).first;
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i < u.size(1); ++i)
    rows.push_back(torch::autograd::grad({u.select(1, i).sum()}, {zg}, {}, true)[0]);
  return at::stack(rows, 1);
}

/// Sets requires_grad on the flow's first weight: log_prob then takes the autograd path.
void use_autograd(demix::LatentFlow& flow, bool on) {
  flow.parameters()[0].tensor.requires_grad_(on);
}

/// log p(z) and d log p / dz by whichever path the flow's requires_grad flags select.
std::pair<at::Tensor, at::Tensor> log_prob_and_grad(const demix::LatentFlow& flow,
                                                    const at::Tensor& z) {
  const at::Tensor zg = z.detach().clone().requires_grad_(true);
  const at::Tensor lp = flow.log_prob(zg);
  // Weighted rows: a gradient that is not all ones reaches the backward pass.
  const at::Tensor w = at::linspace(0.5, 1.5, z.size(0), z.options());
  const at::Tensor g = torch::autograd::grad({(lp * w).sum()}, {zg})[0];
  return {lp.detach(), g / w.unsqueeze(1)};
}

/// max over rows of |a - b| / (1 + max |b|) of that row.
double max_row_relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor a2 = a.reshape({a.size(0), -1}), b2 = b.reshape({b.size(0), -1});
  return ((a2 - b2).abs().amax(1) / (1 + b2.abs().amax(1))).max().item<double>();
}

} // namespace

TEST(LatentFlow, LogProbIsTheChangeOfVariablesFormula) {
  const demix::LatentFlow flow = random_flow({.dim = 5, .blocks = 3, .hidden = {12, 9}}, 1);
  const at::Tensor z = at::randn({7, 5}, at::kDouble) * 2;
  const at::Tensor J = jacobian(flow, z);
  const auto [u, log_det] = flow.forward(z);
  const at::Tensor brute_log_det = std::get<1>(at::linalg_slogdet(J));
  const at::Tensor log_normal = -0.5 * u.square().sum(1) - 2.5 * std::log(2 * M_PI);
  // float64 throughout; values are O(10) and pass through ~100 operations: 1e-10 is ~1e5 ulps.
  EXPECT_LT((log_det - brute_log_det).abs().max().item<double>(), 1e-10);
  EXPECT_LT((flow.log_prob(z) - (log_normal + brute_log_det)).abs().max().item<double>(), 1e-10);
  // The check is not vacuous: the Jacobian is far from the identity.
  EXPECT_GT(brute_log_det.abs().max().item<double>(), 0.5);
}

TEST(LatentFlow, InverseUndoesForward) {
  const demix::LatentFlow flow = random_flow({.dim = 6, .blocks = 4, .hidden = {16}}, 2);
  const at::Tensor z = at::randn({20, 6}, at::kDouble) * 3;
  const at::Tensor u = flow.forward(z).first;
  EXPECT_GT((u - z).abs().max().item<double>(), 0.1); // a non-trivial map
  // Each block inverts exactly up to rounding; 4 blocks of O(1) arithmetic in float64.
  EXPECT_LT((flow.inverse(u) - z).abs().max().item<double>(), 1e-10);
  const at::Tensor v = at::randn({20, 6}, at::kDouble);
  EXPECT_LT((flow.forward(flow.inverse(v)).first - v).abs().max().item<double>(), 1e-10);
}

TEST(LatentFlow, MadeBlockHasATriangularJacobian) {
  // One block: u = flip(y) where y_i = (x_i - mu_i(x_<i)) exp(-alpha_i(x_<i)) and x = standardised
  // z, so dy/dz must be exactly lower triangular (zeros are structural, from the masks).
  for (const auto& hidden : {std::vector<int64_t>{5}, std::vector<int64_t>{7, 5, 6}}) {
    const demix::LatentFlow flow = random_flow({.dim = 6, .blocks = 1, .hidden = hidden}, 3);
    const at::Tensor z = at::randn({4, 6}, at::kDouble);
    const at::Tensor J = jacobian(flow, z).flip({1}); // dy/dz
    const at::Tensor upper = at::triu(J, 1), lower = at::tril(J, -1);
    EXPECT_EQ(upper.abs().max().item<double>(), 0.0) << "a masked connection leaks";
    // The diagonal is exp(-log_scale_i - alpha_i) only if mu_i and alpha_i ignore x_i itself:
    // then the triangular determinant equals the log_det the flow reports (float64 rounding).
    const at::Tensor diagonal_log_det = at::diagonal(J, 0, 1, 2).abs().log().sum(1);
    EXPECT_LT((diagonal_log_det - flow.forward(z).second).abs().max().item<double>(), 1e-12);
    // Every allowed dependence is present (all degrees are represented in the hidden layers).
    const at::Tensor allowed = at::tril(at::ones({6, 6}, at::kBool), -1);
    EXPECT_TRUE((lower.abs().amin(0) > 1e-8).logical_or(~allowed).all().item<bool>());
  }
}

TEST(LatentFlow, GradientOfLogProbMatchesFiniteDifferences) {
  const demix::LatentFlow flow = random_flow({.dim = 4, .blocks = 3, .hidden = {10, 10}}, 4);
  const at::Tensor z = at::randn({5, 4}, at::kDouble);
  // Central differences with h = 1e-5 in float64: truncation ~h^2 |f'''| ~ 1e-10, rounding
  // ~1e-16 |f| / h ~ 1e-10, relative to |grad| ~ 10.
  const double err = demix::test::max_directional_gradient_error(
      [&](const at::Tensor& x) { return flow.log_prob(x).sum(); }, z, 6, 1e-5);
  EXPECT_LT(err, 1e-7);
}

TEST(LatentFlow, SamplingIsReproducibleAndRejectsBadInput) {
  const demix::LatentFlow flow = random_flow({.dim = 3, .blocks = 2, .hidden = {8}}, 5);
  at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(9),
                g2 = at::make_generator<at::CPUGeneratorImpl>(9);
  const at::Tensor a = flow.sample(10, g1), b = flow.sample(10, g2);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{10, 3}));
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_THROW(flow.log_prob(at::zeros({2, 4}, at::kDouble)), demix::ShapeError);
  EXPECT_THROW(flow.log_prob(at::zeros({2, 3}, at::kFloat)), demix::ValueError);
  EXPECT_THROW(demix::LatentFlow({.dim = 1}), demix::ValueError);
  EXPECT_THROW(demix::LatentFlow({.dim = 8, .hidden = {4}}), demix::ValueError);
  EXPECT_THROW(demix::LatentFlow({.dim = 4, .blocks = 0}), demix::ValueError);
}

TEST(LatentFlow, TrainingRecoversACorrelatedGaussian) {
  // Target: N(mean, Sigma) in 4-D with strong correlations. An affine autoregressive map (the
  // Cholesky factor) represents it exactly, so a short training run must get close.
  const int64_t D = 4, n_train = 4000, n_test = 4000;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(42);
  const at::Tensor mean = at::tensor({1.0, -2.0, 0.5, 3.0}, at::kDouble);
  const at::Tensor A = at::randn({D, D}, gen, at::kDouble);
  const at::Tensor cov = A.matmul(A.t()) + 0.1 * at::eye(D, at::kDouble);
  const at::Tensor L = at::linalg_cholesky(cov);
  const auto draw = [&](int64_t n) {
    return mean + at::randn({n, D}, gen, at::kDouble).matmul(L.t());
  };
  const at::Tensor train = draw(n_train), test = draw(n_test);

  // A MadnessModel is the unit train_flow works on; its VAE is irrelevant here.
  demix::MadnessModel model(demix::GalaxyVae({.bands = 1,
                                              .stamp_size = 5,
                                              .latent_dim = D,
                                              .encoder_channels = {2},
                                              .decoder_channels = {2, 2},
                                              .dense_units = 4,
                                              .band_scales = {1.0}}),
                            {.band_names = {"r"}, .noise_sigmas = {1.0}});
  model.set_flow(demix::LatentFlow({.dim = D, .blocks = 2, .hidden = {16, 16}}, 7));
  const demix::TrainingHistory h = demix::train_flow(model, train.to(at::kFloat),
                                                     {.epochs = 40,
                                                      .batch_size = 128,
                                                      .learning_rate = 5e-3,
                                                      .lr_decay_epochs = 20,
                                                      .val_fraction = 0.2});
  ASSERT_EQ(h.epochs.size(), 40u);
  EXPECT_LT(h.epochs.back().train[0], h.epochs.front().train[0]);

  // Paired comparison on fresh samples: mean(-log q) - mean(-log p) estimates KL(p || q) >= 0,
  // with the sampling noise of both terms largely cancelling.
  const at::Tensor true_nll = 0.5 * at::linalg_solve(L, (test - mean).t()).square().sum(0) +
                              0.5 * D * std::log(2 * M_PI) + at::log(at::diagonal(L)).sum();
  const at::Tensor model_nll = -model.log_prob(test.to(at::kFloat)).to(at::kDouble);
  const double kl = (model_nll - true_nll).mean().item<double>();
  EXPECT_GT(kl, -0.01); // only sampling noise can make it negative
  EXPECT_LT(kl, 0.05);  // a well-fitted Gaussian: within 0.05 nats of the truth
  // The oracle itself: the mean true NLL is the entropy, within 4 standard errors sqrt(D/2/n).
  const double entropy = 0.5 * std::log(std::pow(2 * M_PI * M_E, D) * at::det(cov).item<double>());
  EXPECT_NEAR(true_nll.mean().item<double>(), entropy, 4 * std::sqrt(0.5 * D / n_test));

  // Moments of draws from the flow. Sampling error of the moments from 3200 training vectors is
  // ~0.02 sigma; 0.1 sigma (5 standard errors) also leaves room for the fit itself.
  at::Generator sgen = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor s = model.flow().sample(20000, sgen).to(at::kDouble);
  const at::Tensor sd = cov.diagonal().sqrt();
  EXPECT_LT(((s.mean(0) - mean) / sd).abs().max().item<double>(), 0.1);
  const at::Tensor centred = s - s.mean(0);
  const at::Tensor scov = centred.t().matmul(centred) / (s.size(0) - 1);
  EXPECT_LT(((scov - cov) / sd.outer(sd)).abs().max().item<double>(), 0.1);
}

TEST(LatentFlow, FrozenLogProbEqualsTheAutogradPath) {
  // Even and odd block counts (the fused path folds the order reversals into the weights), one
  // to three hidden layers, D = 16 as in the shipped model. Latents near the data, and far from it
  // (every tanh saturated: log p ~ -|z|^2).
  const std::vector<demix::FlowOptions> configs{{.dim = 5, .blocks = 3, .hidden = {12, 9}},
                                                {.dim = 4, .blocks = 2, .hidden = {7}},
                                                {.dim = 6, .blocks = 1, .hidden = {7, 5, 6}},
                                                {.dim = 16, .blocks = 6, .hidden = {32, 32}}};
  std::uint64_t seed = 10;
  for (const auto& options : configs) {
    demix::LatentFlow flow = random_flow(options, seed++);
    demix::LatentFlow autograd_flow = flow.clone();
    use_autograd(autograd_flow, true);
    demix::LatentFlow float_flow = autograd_flow.clone();
    float_flow.to(at::kCPU, at::kFloat);
    for (double spread : {1.0, 30.0}) {
      const at::Tensor z = at::randn({9, options.dim}, at::kDouble) * spread;
      const auto [lp, grad] = log_prob_and_grad(flow, z);
      const auto [lp_ref, grad_ref] = log_prob_and_grad(autograd_flow, z);
      EXPECT_GT(grad_ref.abs().max().item<double>(), 0.1); // a non-trivial gradient
      // Both float64 paths are the same ~100 operations in a different order (scalings folded
      // into the weights), so they differ by rounding, amplified by this input's conditioning
      // (saturated tanh, cancelling y - mu). The float32 autograd path measures that conditioning:
      // its error scaled by 2^-29 (the float64 / float32 epsilon ratio) is what float64 rounding
      // can reach. Over 2000 draws per case the float64 difference stayed below 40x that estimate
      // (up to 4e-11 for D = 16, x30) and below 1e-12 near the data; the bound allows 200x.
      const auto [lp32, grad32] = log_prob_and_grad(float_flow, z.to(at::kFloat));
      const double scale = std::ldexp(1.0, -29);
      const double lp_tol =
          1e-12 + 200 * scale * max_row_relative_error(lp32.to(at::kDouble), lp_ref);
      const double grad_tol =
          1e-12 + 200 * scale * max_row_relative_error(grad32.to(at::kDouble), grad_ref);
      EXPECT_LT(max_row_relative_error(lp, lp_ref), lp_tol)
          << "D " << options.dim << " x" << spread;
      EXPECT_LT(max_row_relative_error(grad, grad_ref), grad_tol)
          << "D " << options.dim << " x" << spread;
    }
  }
}

TEST(LatentFlow, FrozenGradientMatchesFiniteDifferences) {
  demix::LatentFlow flow = random_flow({.dim = 6, .blocks = 4, .hidden = {16, 16}}, 20);
  const at::Tensor z = at::randn({5, 6}, at::kDouble) * 2;
  // Central differences with h = 1e-5 in float64 (as in GradientOfLogProbMatchesFiniteDifferences):
  // truncation and rounding ~1e-10 relative to |grad| ~ 10.
  const double err = demix::test::max_directional_gradient_error(
      [&](const at::Tensor& x) { return flow.log_prob(x).sum(); }, z, 6, 1e-5);
  EXPECT_LT(err, 1e-7);
}

TEST(LatentFlow, FrozenPathFollowsWeightChangesAndIsOnceDifferentiable) {
  demix::LatentFlow flow = random_flow({.dim = 5, .blocks = 3, .hidden = {12, 9}}, 30);
  const demix::LatentFlow copy = flow; // shares the weights (and the cache)
  const at::Tensor z = at::randn({6, 5}, at::kDouble);
  const at::Tensor before = flow.log_prob(z);
  const auto matches_autograd = [&](const std::string& what) {
    const auto [lp, grad] = log_prob_and_grad(flow, z);
    demix::LatentFlow reference = flow.clone();
    use_autograd(reference, true);
    const auto [lp_ref, grad_ref] = log_prob_and_grad(reference, z);
    // float64, see FrozenLogProbEqualsTheAutogradPath.
    EXPECT_LT(max_row_relative_error(lp, lp_ref), 1e-12) << what;
    EXPECT_LT(max_row_relative_error(grad, grad_ref), 1e-12) << what;
  };
  // In place, as an optimiser step does (the version counter changes, the tensor stays).
  {
    c10::AutoGradMode no_grad(false);
    for (auto& p : flow.parameters()) p.tensor.add_(at::randn(p.tensor.sizes(), at::kDouble), 0.05);
  }
  EXPECT_GT((flow.log_prob(z) - before).abs().max().item<double>(), 1e-3);
  matches_autograd("after an in-place update");
  EXPECT_TRUE(at::equal(copy.log_prob(z), flow.log_prob(z))); // the copy sees it too
  // Replaced tensors, and a round trip through float32.
  flow.set_standardisation(at::full({5}, 0.5, at::kDouble), at::full({5}, 2.0, at::kDouble));
  matches_autograd("after set_standardisation");
  flow.to(at::kCPU, at::kFloat);
  flow.to(at::kCPU, at::kDouble);
  matches_autograd("after a dtype round trip");

  // Frozen: a gradient graph for second derivatives is refused, not silently wrong. With a weight
  // requiring grad (training) log_prob goes through autograd, which has one.
  const at::Tensor zg = z.clone().requires_grad_(true);
  EXPECT_THROW(torch::autograd::grad({flow.log_prob(zg).sum()}, {zg}, {}, true, true),
               demix::ValueError);
  use_autograd(flow, true);
  const at::Tensor g2 = torch::autograd::grad({flow.log_prob(zg).sum()}, {zg}, {}, true, true)[0];
  const at::Tensor h = torch::autograd::grad({g2.sum()}, {zg})[0];
  EXPECT_TRUE(at::isfinite(h).all().item<bool>());
}

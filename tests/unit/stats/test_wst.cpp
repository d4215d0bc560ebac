// WstOperator: gradients against finite differences, translation equivariance of the periodic
// variant, batches, labels, precision and argument checks.

#include <demix/core/errors.hpp>
#include <demix/stats/wst.hpp>

#include "support/gradient_check.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace {

demix::Context cpu64() {
  return demix::Context({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
}

} // namespace

TEST(Wst, GradientMatchesFiniteDifferences) {
  for (auto boundary : {demix::Boundary::NonPeriodic, demix::Boundary::Periodic}) {
    const demix::WstOperator op({.J = 3, .L = 4}, {32, 32, boundary}, cpu64());
    at::manual_seed(1);
    const at::Tensor x = at::rand({1, 32, 32}, at::kDouble);
    const at::Tensor w = at::randn({1, op.channels()}, at::kDouble);
    const auto loss = [&](const at::Tensor& y) { return (op.forward(y).values * w).sum(); };
    // Central differences with h = 1e-5 on an O(1) smooth loss: truncation ~h^2 = 1e-10 and
    // rounding ~1e-16 / h = 1e-11, relative to the gradient norm (order 1e-2..1).
    const double err = demix::test::max_directional_gradient_error(loss, x, 4, 1e-5);
    EXPECT_LT(err, 1e-6) << "boundary " << static_cast<int>(boundary);
  }
}

TEST(Wst, PeriodicMapsFollowTranslationsByMultiplesOf2J) {
  const demix::WstOperator op({.J = 3, .L = 4}, {64, 48, demix::Boundary::Periodic}, cpu64());
  const at::Tensor x = at::rand({2, 64, 48}, at::kDouble);
  const at::Tensor s = op.forward_maps(x);                               // (2, C, 8, 6)
  const at::Tensor sr = op.forward_maps(at::roll(x, {16, -24}, {1, 2})); // shifted by (2, -3) * 2^J
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{2, op.channels(), 8, 6}));
  // Exact equivariance: only the rounding of FFTs of rolled inputs differs (~1e-16 relative).
  const double scale = s.abs().max().item<double>();
  EXPECT_LT((sr - at::roll(s, {2, -3}, {2, 3})).abs().max().item<double>(), 1e-12 * scale);
  const at::Tensor m = op.forward(x).values, mr = op.forward(at::roll(x, {8, 40}, {1, 2})).values;
  EXPECT_LT((m - mr).abs().max().item<double>(), 1e-10 * m.abs().max().item<double>());
}

TEST(Wst, BatchOfMapsEqualsMapsOneByOne) {
  const demix::WstOperator op({.J = 2, .L = 3}, {40, 36, demix::Boundary::NonPeriodic}, cpu64());
  const at::Tensor x = at::rand({3, 40, 36}, at::kDouble);
  const at::Tensor all = op.forward_maps(x);
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{3, 1 + 6 + 9, 10, 9}));
  for (int64_t b = 0; b < 3; ++b) {
    const at::Tensor one = op.forward_maps(x[b]); // (H, W) input -> (C, h, w)
    EXPECT_TRUE(at::allclose(one, all[b], 1e-13, 1e-15)) << b;
  }
}

// The progress callback hears each first-order scale, in order, and changes nothing.
TEST(Wst, ProgressHearsEachScale) {
  demix::WstOptions o{.J = 3, .L = 4};
  const demix::WstOperator plain(o, {32, 32}, cpu64());
  std::vector<std::pair<int64_t, int64_t>> heard;
  o.progress = [&](int64_t done, int64_t total) { heard.emplace_back(done, total); };
  const demix::WstOperator told(o, {32, 32}, cpu64());
  const at::Tensor x = at::rand({2, 32, 32}, at::kDouble);
  EXPECT_TRUE(at::equal(told.forward(x).values, plain.forward(x).values));
  EXPECT_EQ(heard, (std::vector<std::pair<int64_t, int64_t>>{{1, 3}, {2, 3}, {3, 3}}));
}

TEST(Wst, CoefficientsAreSpatialMeansWithLabels) {
  const demix::WstOperator op({.J = 3, .L = 2}, {32, 32, demix::Boundary::NonPeriodic}, cpu64());
  const at::Tensor x = at::rand({2, 32, 32}, at::kDouble);
  const demix::Coefficients c = op.forward(x);
  ASSERT_EQ(c.values.sizes(), (std::vector<int64_t>{2, 1 + 6 + 12}));
  EXPECT_TRUE(at::allclose(c.values, op.forward_maps(x).mean(at::IntArrayRef{-2, -1})));
  EXPECT_EQ(c.select("S0").size(), 1);
  EXPECT_EQ(c.select("S1").size(), 6);
  EXPECT_EQ(c.select("S2").size(), 12);
  // kymatio's order: S2 by (j1, t1, j2, t2) with j2 > j1; the first S2 channel is (0, 0, 1, 0).
  const demix::Coefficients s2 = c.select("S2");
  EXPECT_TRUE(at::equal(s2.labels[0], at::tensor({2, 0, 0, 1, 0}, at::kLong)));
  EXPECT_TRUE(at::equal(s2.labels[2], at::tensor({2, 0, 0, 2, 0}, at::kLong)));
  EXPECT_TRUE(at::equal(s2.labels[4], at::tensor({2, 0, 1, 1, 0}, at::kLong)));
  EXPECT_TRUE(at::equal(s2.labels[11], at::tensor({2, 1, 1, 2, 1}, at::kLong)));
  EXPECT_TRUE(at::equal(c.label("j2").narrow(0, 0, 7), at::full({7}, -1, at::kLong)));
  // S0 of a constant map is the constant times phi_hat(0) = pi / 3.1415 (kymatio's constant).
  const at::Tensor ones = at::ones({1, 32, 32}, at::kDouble);
  EXPECT_NEAR(op.forward(ones).values[0][0].item<double>(), 3.14159265358979 / 3.1415, 1e-12);
}

TEST(Wst, Float32AgreesWithFloat64) {
  demix::Context ctx32({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float32});
  const demix::WstOperator op64({.J = 3, .L = 4}, {48, 48, demix::Boundary::NonPeriodic}, cpu64());
  const demix::WstOperator op32({.J = 3, .L = 4}, {48, 48, demix::Boundary::NonPeriodic}, ctx32);
  const at::Tensor x = at::rand({1, 48, 48}, at::kDouble);
  const at::Tensor a = op64.forward_maps(x), b = op32.forward_maps(x);
  EXPECT_EQ(b.scalar_type(), at::kFloat);
  // float32 rounding through a few FFTs: ~1e-6 of the largest value.
  EXPECT_LT((a - b.to(at::kDouble)).abs().max().item<double>(),
            1e-5 * a.abs().max().item<double>());
}

TEST(Wst, RejectsBadArgumentsAndInputs) {
  const auto ctx = cpu64();
  EXPECT_THROW(demix::WstOperator({.J = 0}, {32, 32, demix::Boundary::NonPeriodic}, ctx),
               demix::ValueError);
  EXPECT_THROW(demix::WstOperator({.J = 6}, {32, 32, demix::Boundary::NonPeriodic}, ctx),
               demix::ValueError);
  EXPECT_THROW(
      demix::WstOperator({.J = 2, .max_order = 3}, {32, 32, demix::Boundary::NonPeriodic}, ctx),
      demix::ValueError);
  EXPECT_THROW(demix::WstOperator({.J = 3}, {36, 32, demix::Boundary::Periodic}, ctx),
               demix::ValueError);
  const demix::WstOperator op({.J = 2, .L = 2}, {32, 32, demix::Boundary::NonPeriodic}, ctx);
  EXPECT_THROW(op.forward(at::zeros({1, 32, 30})), demix::ShapeError);
  EXPECT_THROW(op.forward(at::zeros({1, 1, 32, 32})), demix::ShapeError);
  EXPECT_THROW(op.forward(at::zeros({32, 32}, at::kComplexDouble)), demix::ValueError);
  // 2^J equal to the image size: kymatio's special padding case still works.
  const demix::WstOperator edge({.J = 3, .L = 2}, {8, 8, demix::Boundary::NonPeriodic}, ctx);
  EXPECT_EQ(edge.padded_height(), 24);
  EXPECT_EQ(edge.forward_maps(at::rand({1, 8, 8}, at::kDouble)).sizes(),
            (std::vector<int64_t>{1, 1 + 6 + 12, 1, 1}));
}

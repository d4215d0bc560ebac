// Generic checks applied to every statistic in one list: translation invariance, covariance under
// rotation by pi/2 (= 2 angle steps for L = 4), batch agnosticism, float32 vs float64, CPU vs CUDA,
// and the gradient of a loss against central finite differences. A new statistic gets them all by
// adding one entry to statistics().

#include <demix/context.hpp>
#include <demix/wph.hpp>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace {

using Stat = std::function<demix::Coefficients(const at::Tensor& /* (B, H, W) */)>;

struct Entry {
  std::string name;
  /// Builds the statistic for maps of size n x n in the given context.
  std::function<Stat(int64_t n, const demix::Context&)> make;
  bool periodic;          ///< translation invariance holds exactly
  bool rotation_by_angle; ///< labels t1/t2 rotate by 2 steps under a quarter turn (L = 4)
};

void PrintTo(const Entry& e, std::ostream* os) { *os << e.name; }

at::Tensor test_maps(int64_t batch, int64_t n, uint64_t seed);

std::vector<Entry> statistics() {
  auto wph = [](demix::WphNorm norm, demix::WphBoundary boundary, int dn) {
    return [=](int64_t n, const demix::Context& ctx) -> Stat {
      auto op = std::make_shared<demix::WphOperator>(
          demix::WphOptions{.J = 3, .L = 4, .dn = dn, .norm = norm, .boundary = boundary}, n, n, ctx);
      // Auto with a fixed reference: the statistic is then a fixed function of x.
      if (norm == demix::WphNorm::Auto) op->set_reference(test_maps(1, n, 99).to(ctx.device()));
      return [op](const at::Tensor& x) { return op->forward(x); };
    };
  };
  return {
      {"wph_periodic", wph(demix::WphNorm::None, demix::WphBoundary::Periodic, 1), true, true},
      // Normalised by a fixed, unrotated reference: angles no longer permute under rotation.
      {"wph_auto", wph(demix::WphNorm::Auto, demix::WphBoundary::Periodic, 1), true, false},
      {"wph_nonperiodic", wph(demix::WphNorm::None, demix::WphBoundary::NonPeriodic, 0), false, false},
  };
}

const demix::Context& cpu64() {
  static const demix::Context c({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  return c;
}

/// A non-Gaussian test field: exponentiated smooth noise, so that every class is non-zero.
at::Tensor test_maps(int64_t batch, int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor x = at::randn({batch, n, n}, at::kDouble);
  const at::Tensor k = at::fft_fftfreq(n, 1.0, at::kDouble);
  const at::Tensor k2 = k.view({-1, 1}).square() + k.view({1, -1}).square();
  x = at::real(at::fft_ifft2(at::fft_fft2(x) * at::exp(-k2 * 60)));
  return at::exp(2 * x / x.std());
}

double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

class Properties : public ::testing::TestWithParam<Entry> {};

TEST_P(Properties, TranslationInvariance) {
  if (!GetParam().periodic) GTEST_SKIP() << "not periodic";
  const Stat s = GetParam().make(32, cpu64());
  const at::Tensor x = test_maps(1, 32, 1);
  // Periodic statistics of a periodically shifted map: equal up to float64 rounding.
  EXPECT_LT(rel_diff(s(x.roll({5, -11}, {1, 2})).values, s(x).values), 1e-10);
}

TEST_P(Properties, QuarterTurnPermutesAngles) {
  if (!GetParam().rotation_by_angle) GTEST_SKIP() << "no angle labels";
  const Stat s = GetParam().make(32, cpu64());
  const at::Tensor x = test_maps(1, 32, 2);
  const demix::Coefficients a = s(x), b = s(at::rot90(x, 1, {1, 2}));
  // A quarter turn adds 2 steps of pi/4 to every angle (mod pi, where x*psi becomes its conjugate:
  // compare moduli). Shifts rotate too, so only unshifted (n = 0) moments map one to one.
  const at::Tensor t1 = a.label("t1"), t2 = a.label("t2"), n = a.label("n");
  std::map<std::vector<int64_t>, int64_t> row;
  for (int64_t k = 0; k < a.size(); ++k) {
    auto l = a.labels[k];
    row[std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel())] = k;
  }
  int64_t checked = 0;
  for (int64_t k = 0; k < a.size(); ++k) {
    if (n[k].item<int64_t>() > 0 || t1[k].item<int64_t>() < 0) continue;
    auto l = a.labels[k].clone();
    std::vector<int64_t> key(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
    key[1] = (key[1] + 2) % 4;
    key[4] = (key[4] + 2) % 4;
    ASSERT_TRUE(row.count(key));
    const double va = a.values[0][k].abs().item<double>(), vb = b.values[0][row[key]].abs().item<double>();
    EXPECT_NEAR(vb, va, 1e-9 * a.values.abs().max().item<double>()) << a.labels[k];
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

TEST_P(Properties, BatchAgnostic) {
  const Stat s = GetParam().make(32, cpu64());
  const at::Tensor x = test_maps(3, 32, 3);
  const at::Tensor batched = s(x).values;
  for (int64_t i = 0; i < 3; ++i) EXPECT_LT(rel_diff(batched[i], s(x[i]).values[0]), 1e-12) << i;
}

TEST_P(Properties, Float32AgreesWithFloat64) {
  const demix::Context cpu32({.device = demix::DeviceKind::Cpu});
  const at::Tensor x = test_maps(1, 32, 4);
  const at::Tensor v64 = GetParam().make(32, cpu64())(x).values;
  const at::Tensor v32 = GetParam().make(32, cpu32)(x.to(at::kFloat)).values;
  // float32 rounding (6e-8) grows through FFTs and sums of 1024 pixels: 1e-4 of the largest value.
  EXPECT_LT(rel_diff(v32.to(v64.scalar_type()), v64), 1e-4);
}

TEST_P(Properties, CudaAgreesWithCpu) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const demix::Context cuda({.device = demix::DeviceKind::Cuda, .precision = demix::Precision::Float64});
  const at::Tensor x = test_maps(2, 32, 5);
  const at::Tensor cpu = GetParam().make(32, cpu64())(x).values;
  const at::Tensor gpu = GetParam().make(32, cuda)(x.to(at::kCUDA)).values.cpu();
  EXPECT_LT(rel_diff(gpu, cpu), 1e-10);  // float64 on both: only summation order differs
}

TEST_P(Properties, GradientMatchesFiniteDifferences) {
  const Stat s = GetParam().make(32, cpu64());
  const at::Tensor x = test_maps(1, 32, 6);
  const at::Tensor target = s(test_maps(1, 32, 7)).values;
  auto loss = [&](const at::Tensor& y) { return (s(y).values - target).abs().square().sum(); };
  const at::Tensor xg = x.clone().requires_grad_(true);
  loss(xg).backward();
  const at::Tensor v = at::randn_like(x);
  const double analytic = (xg.grad() * v).sum().item<double>();
  const double eps = 1e-5;
  c10::AutoGradMode no_grad(false);
  const double numeric = (loss(x + eps * v) - loss(x - eps * v)).item<double>() / (2 * eps);
  // Central differences: O(eps^2) truncation plus float64 rounding of the loss over eps.
  EXPECT_NEAR(analytic, numeric, 1e-6 * std::abs(numeric));
}

INSTANTIATE_TEST_SUITE_P(Statistics, Properties, ::testing::ValuesIn(statistics()),
                         [](const auto& info) { return info.param.name; });

TEST(WphAuto, ReferenceNormalisesItselfToOne) {
  demix::WphOperator op({.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto}, 32, 32, cpu64());
  const at::Tensor x = test_maps(1, 32, 8);
  const at::Tensor own = op.forward(x).values;  // no reference: the map's own statistics
  op.set_reference(x);
  const demix::Coefficients c = op.forward(x);
  EXPECT_LT(rel_diff(c.values, own), 1e-12);
  const at::Tensor diag = (c.mask("S11") | c.mask("S00")) & (c.label("n") == 0);
  const at::Tensor v = c.values[0].index({diag});
  EXPECT_LT((v - 1).abs().max().item<double>(), 1e-12);  // <|z - m|^2> / s^2 with s^2 = <|z - m|^2>
  // Another map is normalised by the reference's statistics, not its own.
  const at::Tensor y = test_maps(1, 32, 9);
  EXPECT_GT(rel_diff(op.forward(y).values, own), 1e-3);
  op.clear_reference();
  EXPECT_FALSE(op.has_reference());
}

}  // namespace

namespace {

TEST(WphLossAndGrad, MatchesAutogradThroughForward) {
  // Small chunks force several chunked backward passes.
  demix::WphOperator op({.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto, .chunk_bytes = 1 << 16},
                        32, 32, cpu64());
  op.set_reference(test_maps(1, 32, 10));
  const at::Tensor x = test_maps(2, 32, 11);
  const at::Tensor target = op.forward(test_maps(1, 32, 12)).values[0];
  const at::Tensor weights = at::rand({op.size()}, at::kDouble);
  const at::Tensor xg = x.clone().requires_grad_(true);
  const at::Tensor loss = ((op.forward(xg).values - target).abs().square() * weights).sum();
  loss.backward();
  at::Tensor grad;
  const at::Tensor chunked = op.loss_and_grad(x, target, weights, &grad);
  // Same arithmetic, different summation order: float64 rounding only.
  EXPECT_NEAR(chunked.item<double>(), loss.item<double>(), 1e-12 * loss.item<double>());
  EXPECT_LT(rel_diff(grad, xg.grad()), 1e-10);
  EXPECT_EQ(grad.sizes(), x.sizes());
  const double unweighted = (op.forward(x).values - target).abs().square().sum().item<double>();
  EXPECT_NEAR(op.loss_and_grad(x, target, {}, nullptr).item<double>(), unweighted, 1e-12 * unweighted);
}

}  // namespace

// Generic checks applied to every statistic in one list: translation invariance, covariance under
// a quarter turn (each entry maps a label row to the rotated one), batch agnosticism, float32 vs
// float64, CPU vs CUDA, and the gradient of a loss against central finite differences. A new
// statistic gets them all by adding one entry to statistics().

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/stats/scattering_cov.hpp>
#include <demix/stats/wph.hpp>
#include <demix/stats/wst.hpp>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Stat = std::function<demix::Coefficients(const at::Tensor& /* (B, H, W) */)>;
using LabelRow = std::vector<int64_t>;
/// Maps the label row of a coefficient of x to the label row of the same coefficient of x rotated
/// by a quarter turn (see QuarterTurn), given the label names; nullopt: not compared.
using RotateLabel =
    std::function<std::optional<LabelRow>(const std::vector<std::string>& names, LabelRow row)>;

struct Entry {
  std::string name;
  /// Builds the statistic for maps of size n x n in the given context.
  std::function<Stat(int64_t n, const demix::Context&)> make;
  bool periodic;          ///< translation invariance holds exactly, for shifts that are multiples
                          ///< of shift_step pixels
  int64_t shift_step = 1; ///< 2^J for the subsampled (periodic) WST, 1 for the others
  RotateLabel rotate;     ///< empty: no exact rotation covariance, see rotation_skip
  std::string rotation_skip = {}; ///< why the rotation check is skipped (rotate empty)
  /// Largest rotation mismatch, relative to the largest coefficient, with its reason.
  double rotation_tolerance = 1e-9; ///< default: float64 rounding of FFTs and sums
};

void PrintTo(const Entry& e, std::ostream* os) { *os << e.name; }

at::Tensor test_maps(int64_t batch, int64_t n, uint64_t seed);

int64_t column(const std::vector<std::string>& names, const std::string& name) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) throw std::invalid_argument("no label column " + name);
  return it - names.begin();
}

/// A quarter turn adds pi/2 = L/2 steps to every angle label in `angles` that is >= 0, modulo L
/// (an angle beyond pi is the same wavelet reflected, which conjugates the filtered map of a real
/// field: the check compares moduli). Rows whose `skip_if_positive` label is > 0 are not compared.
RotateLabel rotate_angles(std::vector<std::string> angles, int L,
                          std::string skip_if_positive = "") {
  return [=](const std::vector<std::string>& names, LabelRow row) -> std::optional<LabelRow> {
    if (!skip_if_positive.empty() && row[column(names, skip_if_positive)] > 0) return std::nullopt;
    for (const auto& a : angles) {
      int64_t& t = row[column(names, a)];
      if (t >= 0) t = (t + L / 2) % L;
    }
    return row;
  };
}

/// Invariant coefficients: each maps to itself.
std::optional<LabelRow> same_label(const std::vector<std::string>&, LabelRow row) { return row; }

std::vector<Entry> statistics() {
  auto wph = [](demix::WphNorm norm, demix::Boundary boundary, int dn) {
    return [=](int64_t n, const demix::Context& ctx) -> Stat {
      auto op = std::make_shared<demix::WphOperator>(
          demix::WphOptions{.J = 3, .L = 4, .dn = dn, .norm = norm}, demix::Grid2d{n, n, boundary},
          ctx);
      // Auto with a fixed reference: the statistic is then a fixed function of x.
      const demix::Reference ref = op->reference(test_maps(1, n, 99).to(ctx.device()));
      return [op, ref](const at::Tensor& x) { return op->forward(x, ref); };
    };
  };
  // Complex maps (Q + iU) made pointwise from the real test map, so that translations and
  // gradients carry over: pseudo moments, 2L angles and the conjugated-field spectra are exercised.
  auto wph_complex = [](demix::WphNorm norm) {
    return [=](int64_t n, const demix::Context& ctx) -> Stat {
      auto op = std::make_shared<demix::WphOperator>(
          demix::WphOptions{.J = 3, .L = 4, .dn = 1, .complex_data = true, .norm = norm},
          demix::Grid2d{n, n}, ctx);
      // A fixed reference (norm Auto; None gives an empty one), as for real maps.
      const at::Tensor r = test_maps(1, n, 99).to(ctx.device());
      const demix::Reference ref = op->reference(at::complex(r, 0.5 * r.square() - r));
      return [op, ref](const at::Tensor& x) {
        return op->forward(at::complex(x, 0.5 * x.square() - x), ref);
      };
    };
  };
  auto wst = [](demix::Boundary boundary) {
    return [=](int64_t n, const demix::Context& ctx) -> Stat {
      auto op = std::make_shared<demix::WstOperator>(
          demix::WstOptions{.J = 3, .L = 4, .max_order = 2}, demix::Grid2d{n, n, boundary}, ctx);
      return [op](const at::Tensor& x) { return op->forward(x); };
    };
  };
  auto scov = [](demix::ScovFrequencySum sum, bool iso) {
    return [=](int64_t n, const demix::Context& ctx) -> Stat {
      auto op = std::make_shared<demix::ScatteringCovOperator>(
          demix::ScatteringCovOptions{.J = 3, .L = 4, .frequency_sum = sum}, demix::Grid2d{n, n},
          ctx);
      if (iso) return [op](const at::Tensor& x) { return op->forward_iso(x); };
      return [op](const at::Tensor& x) { return op->forward(x); };
    };
  };
  auto ps = [](demix::PowerSpectrumOptions o) {
    return [=](int64_t n, const demix::Context& ctx) -> Stat {
      auto op = std::make_shared<demix::PowerSpectrumOperator>(o, demix::Grid2d{n, n}, ctx);
      return [op](const at::Tensor& x) { return op->forward(x); };
    };
  };
  // Shifts rotate too: only unshifted (n = 0) WPH moments map one to one.
  const RotateLabel wph_angles = rotate_angles({"t1", "t2"}, 4, "n");
  // Scattering covariance: the isotropic classes (l1 = -1, angle differences in l2, l3) and
  // mean/var are invariant; the others have their three angles turned.
  const RotateLabel scov_angles = [](const std::vector<std::string>& names,
                                     LabelRow row) -> std::optional<LabelRow> {
    if (row[column(names, "l1")] < 0) return row;
    return *rotate_angles({"l1", "l2", "l3"}, 4)(names, row);
  };
  using demix::ScovFrequencySum;
  return {
      {"wph_periodic", wph(demix::WphNorm::None, demix::Boundary::Periodic, 1), true, 1,
       wph_angles},
      {"wph_auto",
       wph(demix::WphNorm::Auto, demix::Boundary::Periodic, 1),
       true,
       1,
       {},
       "normalised by a fixed, unrotated reference: angles no longer permute"},
      {"wph_complex",
       wph_complex(demix::WphNorm::None),
       true,
       1,
       {},
       "complex maps: 2L angles over [0, 2 pi), not covered by the real-map angle mapping"},
      {"wph_complex_auto",
       wph_complex(demix::WphNorm::Auto),
       true,
       1,
       {},
       "complex maps: 2L angles over [0, 2 pi), not covered by the real-map angle mapping"},
      {"wph_nonperiodic",
       wph(demix::WphNorm::None, demix::Boundary::NonPeriodic, 0),
       false,
       1,
       {},
       "non-periodic boundary"},
      // Subsampled intermediate maps: exact only for shifts by multiples of 2^J = 8.
      // kymatio's filters are periodised over the copies x + e M, e = -2..2 of the grid, an
      // asymmetric range [-2M, 3M): they are quarter-turn symmetric only to ~1e-5 (measured
      // 4.1e-5 of the largest coefficient at n = 32); a wrong angle mapping gives O(1) errors.
      {"wst_periodic", wst(demix::Boundary::Periodic), true, 8, rotate_angles({"t1", "t2"}, 4), "",
       2e-4},
      {"wst_reflect",
       wst(demix::Boundary::NonPeriodic),
       false,
       1,
       {},
       "reflection padding and cropping: not an exact symmetry"},
      {"scov_full", scov(ScovFrequencySum::Full, false), true, 1, scov_angles},
      {"scov_iso_full", scov(ScovFrequencySum::Full, true), true, 1, scov_angles},
      {"scov_cropped",
       scov(ScovFrequencySum::Cropped, false),
       true,
       1,
       {},
       "the cropped frequency set -d <= k < d is not symmetric under a quarter turn"},
      {"power_spectrum", ps({}), true, 1, same_label},
      {"power_spectrum_log", ps({.bins = 6, .binning = demix::PsBinning::Log}), true, 1,
       same_label},
  };
}

const demix::Context& cpu64() {
  static const demix::Context c(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
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
  const int64_t step = GetParam().shift_step;
  // Periodic statistics of a periodically shifted map: equal up to float64 rounding.
  EXPECT_LT(rel_diff(s(x.roll({5 * step, -11 * step}, {1, 2})).values, s(x).values), 1e-10);
}

/// x turned by a quarter turn about pixel (0, 0): y[i, j] = x[j, -i mod n], so that the grids
/// of subsampled maps (multiples of 2^j from pixel 0) turn onto themselves.
at::Tensor quarter_turn(const at::Tensor& x /* (B, n, n) */) {
  return at::rot90(x, 1, {1, 2}).roll(1, 1);
}

TEST(QuarterTurn, IsAboutPixelZero) {
  const at::Tensor x = at::arange(16, at::kDouble).view({1, 4, 4});
  const at::Tensor y = quarter_turn(x);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_EQ(y[0][i][j].item<double>(), x[0][j][(4 - i) % 4].item<double>()) << i << ", " << j;
}

TEST_P(Properties, QuarterTurnPermutesAngles) {
  if (!GetParam().rotate) GTEST_SKIP() << GetParam().rotation_skip;
  const Stat s = GetParam().make(32, cpu64());
  const at::Tensor x = test_maps(1, 32, 2);
  const demix::Coefficients a = s(x), b = s(quarter_turn(x));
  // Keys: class id, then the label row.
  auto key = [](const demix::Coefficients& c, int64_t k) {
    const at::Tensor l = c.labels[k].contiguous();
    LabelRow row{c.class_id[k].item<int64_t>()};
    row.insert(row.end(), l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
    return row;
  };
  std::map<LabelRow, int64_t> index;
  for (int64_t k = 0; k < b.size(); ++k)
    ASSERT_TRUE(index.emplace(key(b, k), k).second) << "duplicate label";
  const double scale = a.values.abs().max().item<double>();
  int64_t checked = 0, moved = 0;
  double worst = 0;
  for (int64_t k = 0; k < a.size(); ++k) {
    const LabelRow row = key(a, k);
    const auto turned = GetParam().rotate(a.label_names, LabelRow(row.begin() + 1, row.end()));
    if (!turned) continue;
    LabelRow target{row[0]};
    target.insert(target.end(), turned->begin(), turned->end());
    ASSERT_TRUE(index.count(target)) << a.labels[k];
    const int64_t kb = index[target];
    moved += kb != k;
    // Tolerance: see Entry::rotation_tolerance.
    const double va = a.values[0][k].abs().item<double>();
    const double vb = b.values[0][kb].abs().item<double>();
    EXPECT_NEAR(vb, va, GetParam().rotation_tolerance * scale) << a.labels[k];
    worst = std::max(worst, std::abs(va - vb) / scale);
    ++checked;
  }
  EXPECT_GT(checked, 0);
  std::cout << "[ measured ] " << GetParam().name << ": " << checked << " coefficients compared ("
            << moved << " moved), worst mismatch " << worst << " of the largest\n";
  RecordProperty("checked", static_cast<int>(checked));
  RecordProperty("moved", static_cast<int>(moved));
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
  const demix::Context cuda(
      {.device = demix::DeviceKind::Cuda, .precision = demix::Precision::Float64});
  const at::Tensor x = test_maps(2, 32, 5);
  const at::Tensor cpu = GetParam().make(32, cpu64())(x).values;
  const at::Tensor gpu = GetParam().make(32, cuda)(x.to(at::kCUDA)).values.cpu();
  EXPECT_LT(rel_diff(gpu, cpu), 1e-10); // float64 on both: only summation order differs
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
  demix::WphOperator op({.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto}, {32, 32}, cpu64());
  const at::Tensor x = test_maps(1, 32, 8);
  const at::Tensor own = op.forward(x).values; // no reference: the map's own statistics
  const demix::Reference ref = op.reference(x);
  const demix::Coefficients c = op.forward(x, ref);
  EXPECT_LT(rel_diff(c.values, own), 1e-12);
  const at::Tensor diag = (c.mask("S11") | c.mask("S00")) & (c.label("n") == 0);
  const at::Tensor v = c.values[0].index({diag});
  EXPECT_LT((v - 1).abs().max().item<double>(), 1e-12); // <|z - m|^2> / s^2 with s^2 = <|z - m|^2>
  // Another map is normalised by the reference's statistics, not its own.
  const at::Tensor y = test_maps(1, 32, 9);
  EXPECT_GT(rel_diff(op.forward(y, ref).values, own), 1e-3);
}

} // namespace

namespace {

TEST(WphOptions, RejectsScalesLargerThanTheMap) {
  EXPECT_THROW(demix::WphOperator({.J = 5}, {32, 32}, cpu64()), demix::ValueError); // 2^5 = 32
  EXPECT_THROW(demix::WphOperator({.J = 3, .dn = -1}, {32, 32}, cpu64()), demix::ValueError);
  EXPECT_NO_THROW(demix::WphOperator({.J = 4}, {32, 32}, cpu64()));
}

TEST(WphLossAndGrad, ChunkedComplexMapsMatchOneChunk) {
  // Complex maps have conjugated fields, whose boxes are read at -k from their source's spectrum;
  // 64 KB chunks split the sources into many, so plain and conjugated copies of one source and the
  // reference's k = 0 terms (norm Auto) cross chunk boundaries.
  const demix::WphOptions base{
      .J = 3, .L = 4, .dn = 1, .complex_data = true, .norm = demix::WphNorm::Auto};
  demix::WphOptions small = base;
  small.memory_bytes = 1 << 16;
  const demix::WphOperator chunked(small, {32, 32}, cpu64()), whole(base, {32, 32}, cpu64());
  const auto complex_map = [](const at::Tensor& r) { return at::complex(r, 0.5 * r.square() - r); };
  const demix::Reference ref = whole.reference(complex_map(test_maps(1, 32, 20)));
  const at::Tensor x = complex_map(test_maps(2, 32, 21));
  const at::Tensor target = whole.forward(complex_map(test_maps(1, 32, 22)), ref).values[0];
  // Same arithmetic in other groupings: float64 rounding only.
  EXPECT_LT(rel_diff(chunked.forward(x, ref).values, whole.forward(x, ref).values), 1e-12);
  const demix::SquaredDistance distance(target);
  const demix::LossResult l_chunked = chunked.loss_and_grad(x, distance, ref);
  const demix::LossResult l_whole = whole.loss_and_grad(x, distance, ref);
  EXPECT_NEAR(l_chunked.total().item<double>(), l_whole.total().item<double>(),
              1e-12 * l_whole.total().item<double>());
  EXPECT_GT(l_whole.total().item<double>(), 0.0);
  EXPECT_LT(rel_diff(l_chunked.grad, l_whole.grad), 1e-10);
}

TEST(WphLossAndGrad, MatchesAutogradThroughForward) {
  // Small chunks force several chunked backward passes.
  demix::WphOperator op(
      {.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto, .memory_bytes = 1 << 16}, {32, 32},
      cpu64());
  const demix::Reference ref = op.reference(test_maps(1, 32, 10));
  const at::Tensor x = test_maps(2, 32, 11);
  const at::Tensor target = op.forward(test_maps(1, 32, 12), ref).values[0];
  const at::Tensor weights = at::rand({op.size()}, at::kDouble);
  const at::Tensor xg = x.clone().requires_grad_(true);
  const at::Tensor loss = ((op.forward(xg, ref).values - target).abs().square() * weights).sum();
  loss.backward();
  const demix::LossResult chunked =
      op.loss_and_grad(x, demix::SquaredDistance(target, weights), ref);
  // Same arithmetic, different summation order: float64 rounding only.
  EXPECT_NEAR(chunked.total().item<double>(), loss.item<double>(), 1e-12 * loss.item<double>());
  EXPECT_LT(rel_diff(chunked.grad, xg.grad()), 1e-10);
  EXPECT_EQ(chunked.grad.sizes(), x.sizes());
  const double unweighted =
      (op.forward(x, ref).values - target).abs().square().sum().item<double>();
  const demix::LossResult no_grad =
      op.loss_and_grad(x, demix::SquaredDistance(target), ref, /*want_grad=*/false);
  EXPECT_NEAR(no_grad.total().item<double>(), unweighted, 1e-12 * unweighted);
  EXPECT_FALSE(no_grad.grad.defined());
  // With the default budget everything fits one chunk: the single-pass path gives the same.
  const demix::WphOperator whole({.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto}, {32, 32},
                                 cpu64());
  const demix::LossResult one_pass =
      whole.loss_and_grad(x, demix::SquaredDistance(target, weights), ref);
  EXPECT_NEAR(one_pass.total().item<double>(), loss.item<double>(), 1e-12 * loss.item<double>());
  EXPECT_LT(rel_diff(one_pass.grad, xg.grad()), 1e-10);
}

} // namespace

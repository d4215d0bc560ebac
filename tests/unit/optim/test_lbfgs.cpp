// Batched L-BFGS (include/demix/optim/lbfgs.hpp), with both line searches: known minima (dense
// quadratics solved by a linear solve, Rosenbrock's valley), groups solved together equal the same
// groups solved one by one (groups of different sizes, one finishing early), finished groups take
// no more steps, the strong-Wolfe conditions hold where they are asked for, float32 and float64,
// CUDA equals CPU, a saved state resumed equals the uninterrupted run, and errors.

#include <demix/core/errors.hpp>
#include <demix/optim/lbfgs.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace {

using demix::LineSearch;

/// Group g's problem over its rows (n_g, 2): a dense quadratic 0.5 u^T A u - b^T u of the
/// flattened rows u (A symmetric positive definite, condition number <= 50), or the sum of
/// Rosenbrock's function (1 - u)^2 + 100 (v - u^2)^2 over its rows (u, v).
struct Problem {
  bool rosenbrock = false;
  at::Tensor A, b;  // (2 n_g, 2 n_g), (2 n_g) float64 (quadratics)
  at::Tensor start; // (n_g, 2) float64
};

Problem quadratic(int64_t rows, uint64_t seed) {
  at::manual_seed(seed);
  const int64_t n = 2 * rows;
  const at::Tensor q = std::get<0>(at::linalg_qr(at::randn({n, n}, at::kDouble)));
  const at::Tensor eig = at::logspace(0, std::log10(50.0), n, 10.0, at::kDouble);
  return {false, q.matmul(at::diag(eig)).matmul(q.t()), at::randn({n}, at::kDouble),
          at::randn({rows, 2}, at::kDouble)};
}

Problem rosenbrock(int64_t rows) {
  return {true, {}, {}, at::tensor({-1.2, 1.0}, at::kDouble).repeat({rows, 1})};
}

/// Value (scalar) of one problem at its rows x (n_g, 2), in x's dtype.
at::Tensor value_of(const Problem& p, const at::Tensor& x) {
  if (p.rosenbrock) {
    const at::Tensor u = x.select(1, 0), v = x.select(1, 1);
    return ((1 - u).square() + 100 * (v - u * u).square()).sum();
  }
  const at::Tensor u = x.reshape({-1}), A = p.A.to(x.options()), b = p.b.to(x.options());
  return 0.5 * u.dot(A.mv(u)) - b.dot(u);
}

/// Gradient (n_g, 2) of one problem.
at::Tensor grad_of(const Problem& p, const at::Tensor& x) {
  if (p.rosenbrock) {
    const at::Tensor u = x.select(1, 0), v = x.select(1, 1);
    const at::Tensor gv = 200 * (v - u * u);
    return at::stack({-2 * (1 - u) - 2 * u * gv, gv}, 1);
  }
  const at::Tensor u = x.reshape({-1});
  return (p.A.to(x.options()).mv(u) - p.b.to(x.options())).view(x.sizes());
}

/// The minimiser of each problem: A^-1 b, or all ones.
at::Tensor minimum_of(const Problem& p) {
  if (p.rosenbrock) return at::ones_like(p.start);
  return at::linalg_solve(p.A, p.b).view(p.start.sizes());
}

/// Several problems as one batched objective: rows stacked in group order; each group's value
/// and gradient computed from its own rows only.
struct Batch {
  std::vector<Problem> problems;
  at::Tensor group; // (R) int64
  std::vector<int64_t> first, count;
  int64_t calls = 0;

  explicit Batch(std::vector<Problem> ps) : problems(std::move(ps)) {
    std::vector<int64_t> index;
    for (size_t g = 0; g < problems.size(); ++g) {
      first.push_back(static_cast<int64_t>(index.size()));
      count.push_back(problems[g].start.size(0));
      for (int64_t r = 0; r < count.back(); ++r) index.push_back(static_cast<int64_t>(g));
    }
    group = at::tensor(index, at::kLong);
  }
  int64_t G() const { return static_cast<int64_t>(problems.size()); }
  at::Tensor start(at::ScalarType dtype) const {
    std::vector<at::Tensor> s;
    for (const auto& p : problems) s.push_back(p.start);
    return at::cat(s).to(dtype);
  }
  at::Tensor rows(const at::Tensor& x, size_t g) const { return x.narrow(0, first[g], count[g]); }
  at::Tensor values(const at::Tensor& x) const {
    std::vector<at::Tensor> v;
    for (size_t g = 0; g < problems.size(); ++g) v.push_back(value_of(problems[g], rows(x, g)));
    return at::stack(v);
  }
  at::Tensor grads(const at::Tensor& x) const {
    std::vector<at::Tensor> v;
    for (size_t g = 0; g < problems.size(); ++g) v.push_back(grad_of(problems[g], rows(x, g)));
    return at::cat(v);
  }
  demix::LbfgsObjective objective() {
    return {[this](const at::Tensor& x) {
              ++calls;
              return std::make_pair(values(x), grads(x));
            },
            [this](const at::Tensor& x) {
              ++calls;
              return values(x);
            }};
  }
  demix::LbfgsResult solve(const demix::LbfgsOptions& o, at::ScalarType dtype = at::kDouble) {
    return demix::minimize_lbfgs(objective(), start(dtype), {group, G()}, o);
  }
};

const char* name(LineSearch s) { return s == LineSearch::Armijo ? "Armijo" : "StrongWolfe"; }

TEST(Lbfgs, FindsKnownMinima) {
  for (const LineSearch search : {LineSearch::Armijo, LineSearch::StrongWolfe}) {
    Batch batch({quadratic(3, 1), rosenbrock(1), quadratic(1, 2), rosenbrock(2)});
    const demix::LbfgsResult r = batch.solve(
        {.max_iterations = 200, .rtol = 0, .first_step_length = 0.1, .line_search = search});
    for (size_t g = 0; g < 4; ++g) {
      const Problem& p = batch.problems[g];
      // rtol = 0: a group stops where its value no longer decreases in rounding. Quadratics:
      // |f - f*| ~ eps |f*| leaves |x - x*| ~ sqrt(2 eps |f*| / lambda_min) = 2e-8 sqrt(|f*|)
      // (lambda_min = 1; |f*| = b^T A^-1 b / 2 <= |b|^2 / 2, a few here). Rosenbrock's f* = 0
      // keeps its relative precision down to the minimum (measured: exact). 1e-6: above both,
      // far below the distance from the start (~2).
      EXPECT_LT((batch.rows(r.x, g) - minimum_of(p)).abs().max().item<double>(), 1e-6)
          << name(search) << " group " << g;
      EXPECT_TRUE(r.converged[g].item<bool>()) << name(search) << " group " << g;
      EXPECT_LT(r.iterations[g].item<int64_t>(), 200) << name(search) << " group " << g;
    }
    EXPECT_TRUE(at::allclose(r.value, batch.values(r.x))); // the value returned is the final one
    EXPECT_EQ(r.evaluations, batch.calls);
  }
}

TEST(Lbfgs, GroupsSolvedTogetherEqualGroupsSolvedOneByOne) {
  // Groups of 3, 1, 2 and 4 rows; the small quadratic finishes long before the Rosenbrock groups.
  const std::vector<Problem> problems = {quadratic(3, 3), quadratic(1, 4), rosenbrock(2),
                                         rosenbrock(4)};
  for (const LineSearch search : {LineSearch::Armijo, LineSearch::StrongWolfe}) {
    const demix::LbfgsOptions o{.history = 5, .max_iterations = 30, .line_search = search};
    Batch together(problems);
    const demix::LbfgsResult all = together.solve(o);
    std::vector<int64_t> iterations;
    for (size_t g = 0; g < problems.size(); ++g) {
      Batch alone({problems[g]});
      const demix::LbfgsResult one = alone.solve(o);
      // The same operations on the group's rows (per-group sums in the same order): equal to
      // rounding of the batched element-wise kernels, a few ulps.
      EXPECT_TRUE(at::allclose(one.x, together.rows(all.x, g), 1e-13, 1e-13))
          << name(search) << " group " << g;
      EXPECT_NEAR(one.value[0].item<double>(), all.value[g].item<double>(),
                  1e-12 * std::abs(one.value[0].item<double>()) + 1e-300);
      EXPECT_EQ(one.iterations[0].item<int64_t>(), all.iterations[g].item<int64_t>()) << g;
      EXPECT_EQ(one.converged[0].item<bool>(), all.converged[g].item<bool>()) << g;
      EXPECT_EQ(one.no_step[0].item<bool>(), all.no_step[g].item<bool>()) << g;
      iterations.push_back(one.iterations[0].item<int64_t>());
    }
    // Not vacuous: the groups stop at different iterations, one of them at the limit.
    EXPECT_LT(iterations[1], iterations[3]) << name(search);
    EXPECT_EQ(iterations[3], 30) << name(search);
    EXPECT_FALSE(all.converged[3].item<bool>()) << name(search);
  }
}

TEST(Lbfgs, ResumingASavedStateEqualsTheUninterruptedRun) {
  // A synthesis checkpoint: the state after 7 iterations, copied (as a file would hold it), then
  // run to the end, against one run of 25 iterations. Same operations in the same order: equal.
  const std::vector<Problem> problems = {quadratic(3, 5), rosenbrock(2), rosenbrock(3)};
  for (const LineSearch search : {LineSearch::Armijo, LineSearch::StrongWolfe}) {
    const demix::LbfgsOptions o{.history = 4, .max_iterations = 25, .line_search = search};
    Batch whole(problems);
    const demix::LbfgsResult uninterrupted = whole.solve(o);

    Batch parts(problems);
    const demix::RowGroups groups{parts.group, parts.G()};
    demix::LbfgsOptions first = o;
    first.max_iterations = 7;
    demix::LbfgsState saved =
        demix::lbfgs_start(parts.objective(), parts.start(at::kDouble), groups, first);
    int calls = 0;
    demix::lbfgs_run(parts.objective(), saved, groups, first,
                     [&](const demix::LbfgsState& st) { EXPECT_EQ(st.iteration, ++calls); });
    ASSERT_EQ(saved.iteration, 7);
    EXPECT_GT(saved.pairs, 4); // the history is full: the resumed run needs all of it
    demix::LbfgsState resumed = saved;
    for (at::Tensor* t : {&resumed.s, &resumed.y, &resumed.sy, &resumed.yy, &resumed.rho})
      *t = t->clone();
    resumed.x = saved.x.clone(), resumed.grad = saved.grad.clone();
    resumed.iterations = saved.iterations.clone();
    demix::lbfgs_run(parts.objective(), resumed, groups, o);
    EXPECT_TRUE(at::equal(resumed.x, uninterrupted.x)) << name(search);
    EXPECT_TRUE(at::equal(resumed.value, uninterrupted.value)) << name(search);
    EXPECT_TRUE(at::equal(resumed.iterations, uninterrupted.iterations)) << name(search);
    EXPECT_EQ(resumed.evaluations, uninterrupted.evaluations) << name(search);
    // Not vacuous: the run went on after the checkpoint.
    EXPECT_GT(resumed.iteration, 7) << name(search);
    EXPECT_FALSE(at::equal(resumed.x, saved.x)) << name(search);
  }
}

TEST(Lbfgs, FinishedGroupsTakeNoMoreSteps) {
  for (const LineSearch search : {LineSearch::Armijo, LineSearch::StrongWolfe}) {
    Batch batch({quadratic(2, 5), rosenbrock(3)});
    std::vector<at::Tensor> seen; // every x the objective got
    demix::LbfgsObjective f = batch.objective();
    const auto inner = f.value_and_grad;
    f.value_and_grad = [&](const at::Tensor& x) {
      seen.push_back(x.clone());
      return inner(x);
    };
    f.value = {}; // every call through value_and_grad
    std::vector<demix::LbfgsProgress> reports;
    std::vector<size_t> calls_before; // calls made before each iteration's report
    const demix::LbfgsResult r = demix::minimize_lbfgs(
        f, batch.start(at::kDouble), {batch.group, 2},
        {.max_iterations = 80, .line_search = search}, [&](const demix::LbfgsProgress& p) {
          reports.push_back(p);
          calls_before.push_back(seen.size());
        });
    const int64_t stop = r.iterations[0].item<int64_t>(), stop1 = r.iterations[1].item<int64_t>();
    ASSERT_TRUE(r.converged[0].item<bool>()) << name(search);
    ASSERT_LT(stop, stop1) << name(search); // the quadratic stops first
    // One report per iteration, with the groups still running.
    ASSERT_EQ(static_cast<int64_t>(reports.size()), stop1) << name(search);
    for (const auto& p : reports)
      EXPECT_EQ(p.running_groups, (p.iteration < stop ? 1 : 0) +
                                      (p.iteration < stop1 || !r.converged[1].item<bool>() ? 1 : 0))
          << name(search) << " iteration " << p.iteration;
    // Every call of the later iterations sees the quadratic's rows as they ended.
    const at::Tensor final_rows = batch.rows(r.x, 0);
    ASSERT_LT(calls_before[stop - 1], seen.size());
    for (size_t c = calls_before[stop - 1]; c < seen.size(); ++c)
      EXPECT_TRUE(at::equal(batch.rows(seen[c], 0), final_rows)) << name(search) << " call " << c;
    // ... while the Rosenbrock rows moved on.
    EXPECT_FALSE(at::equal(batch.rows(seen[calls_before[stop - 1]], 1), batch.rows(r.x, 1)));
  }
}

TEST(Lbfgs, StrongWolfeStepsMeetBothConditions) {
  // One iteration on f(x) = 0.5 |x - c|^2 from x = 0, |c| = 10: the first direction is the
  // steepest-descent step of length L, so a step length alpha moves x by s = alpha L towards c.
  // Along that line f = 0.5 (10 - s)^2 with slope -(10 - s) per unit length (-10 at s = 0):
  // sufficient decrease is 50 - f >= c1 10 s, strong curvature |10 - s| <= c2 10.
  const at::Tensor c = at::full({1, 4}, 5.0, at::kDouble);
  const demix::LbfgsObjective f{[&](const at::Tensor& x) {
    return std::make_pair((0.5 * (x - c).square().sum()).view({1}), x - c);
  }};
  const at::Tensor x0 = at::zeros({1, 4}, at::kDouble);
  const demix::RowGroups one{at::zeros({1}, at::kLong), 1};
  for (const double L : {1e-3, 100.0}) { // far too short (s = 1e-3), far too long (s = 100)
    for (const LineSearch search : {LineSearch::Armijo, LineSearch::StrongWolfe}) {
      const demix::LbfgsOptions o{
          .max_iterations = 1, .first_step_length = L, .line_search = search};
      const demix::LbfgsResult r = demix::minimize_lbfgs(f, x0, one, o);
      const double s = r.x.norm().item<double>();
      EXPECT_GE(50 - r.value[0].item<double>(), o.sufficient_decrease * 10 * s)
          << name(search) << " L " << L;
      const bool curvature = std::abs(10 - s) <= o.curvature * 10;
      if (search == LineSearch::StrongWolfe) EXPECT_TRUE(curvature) << "L " << L << ", s " << s;
      // Armijo takes the first length with enough decrease: the short step as it is.
      if (search == LineSearch::Armijo && L < 1) EXPECT_NEAR(s, L, 1e-15);
    }
  }
}

TEST(Lbfgs, Float32AndFloat64) {
  for (const LineSearch search : {LineSearch::Armijo, LineSearch::StrongWolfe}) {
    Batch batch({quadratic(2, 6), quadratic(3, 7)});
    for (const auto dtype : {at::kFloat, at::kDouble}) {
      const demix::LbfgsResult r =
          batch.solve({.max_iterations = 100, .rtol = 0, .line_search = search}, dtype);
      EXPECT_EQ(r.x.scalar_type(), dtype);
      EXPECT_EQ(r.value.scalar_type(), dtype);
      // rtol = 0: each group stops where its value no longer decreases in rounding,
      // |f - f*| ~ eps |f*|, so |x - x*| ~ sqrt(2 eps |f*| / lambda_min) with lambda_min = 1:
      // 3e-4 in float32, 2e-8 in float64 for |f*| < 1 (measured: 1.6e-4 and 2e-8). Three times
      // that bound.
      const double eps = dtype == at::kFloat ? std::numeric_limits<float>::epsilon()
                                             : std::numeric_limits<double>::epsilon();
      for (size_t g = 0; g < 2; ++g) {
        const at::Tensor expected = minimum_of(batch.problems[g]);
        const double f_min = std::abs(value_of(batch.problems[g], expected).item<double>());
        EXPECT_LT((batch.rows(r.x, g).to(at::kDouble) - expected).abs().max().item<double>(),
                  3 * std::sqrt(2 * eps * std::max(f_min, 1.0)))
            << name(search) << " " << dtype << " group " << g;
      }
      EXPECT_TRUE(r.converged.all().item<bool>());
    }
  }
}

TEST(Lbfgs, OneMapPerGroupWithImageShapedRows) {
  // x (B, H, W), each map its own group, as synthesis will use it: f_b = 0.5 |x_b - t_b|^2 w_b.
  at::manual_seed(8);
  const at::Tensor target = at::randn({3, 5, 6}, at::kDouble);
  const at::Tensor w = at::tensor({1.0, 4.0, 0.25}, at::kDouble).view({3, 1, 1});
  const demix::LbfgsObjective f{[&](const at::Tensor& x) {
    const at::Tensor r = x - target;
    return std::make_pair(0.5 * (r.square() * w).sum({1, 2}), r * w);
  }};
  const demix::LbfgsResult r =
      demix::minimize_lbfgs(f, at::zeros_like(target), {at::arange(3, at::kLong), 3});
  // A scaled identity: exact after the first quasi-Newton step, to rounding (1e-12).
  EXPECT_LT((r.x - target).abs().max().item<double>(), 1e-12);
  EXPECT_TRUE(r.converged.all().item<bool>());
}

TEST(Lbfgs, CudaEqualsCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  Batch cpu({quadratic(3, 9), rosenbrock(2)});
  const demix::LbfgsOptions o{.max_iterations = 40};
  const demix::LbfgsResult a = cpu.solve(o);
  Batch cuda({quadratic(3, 9), rosenbrock(2)});
  for (auto& p : cuda.problems) {
    if (p.A.defined()) p.A = p.A.cuda(), p.b = p.b.cuda();
    p.start = p.start.cuda();
  }
  const demix::LbfgsResult b = demix::minimize_lbfgs(cuda.objective(), cuda.start(at::kDouble),
                                                     {cuda.group.cuda(), cuda.G()}, o);
  // float64; other kernels (cuBLAS mv, CUDA reductions) round differently, ~1e-15 relative,
  // which 40 iterations on Rosenbrock's valley amplify at most ~1e3-fold.
  EXPECT_TRUE(at::allclose(a.x, b.x.cpu(), 1e-10, 1e-10)) << (a.x - b.x.cpu()).abs().max();
  EXPECT_TRUE(at::equal(a.iterations, b.iterations.cpu()));
}

/// The message of the ValueError that `f` throws ("" if none).
template <class F> std::string value_error(F&& f) {
  try {
    f();
  } catch (const demix::ValueError& e) {
    return e.what();
  }
  return "";
}

TEST(Lbfgs, BadOptionsAndInputsThrow) {
  Batch batch({quadratic(2, 1)});
  const demix::LbfgsObjective f = batch.objective();
  const at::Tensor x0 = batch.start(at::kDouble);
  const demix::RowGroups groups{batch.group, 1};
  const auto with = [&](demix::LbfgsOptions o) {
    return [&, o] { demix::minimize_lbfgs(f, x0, groups, o); };
  };
  const std::vector<std::pair<demix::LbfgsOptions, std::string>> bad = {
      {{.history = 0}, "LbfgsOptions.history = 0:"},
      {{.max_iterations = -1}, "LbfgsOptions.max_iterations = -1"},
      {{.max_backtracks = 0}, "LbfgsOptions.max_backtracks = 0"},
      {{.rtol = -1e-3}, "LbfgsOptions.rtol = -0.001"},
      {{.first_step_length = 0}, "LbfgsOptions.first_step_length = 0"},
      {{.sufficient_decrease = 1}, "LbfgsOptions.sufficient_decrease = 1"},
      {{.curvature = 1e-5}, "LbfgsOptions.curvature = 1e-05"},
      {{.line_search = static_cast<LineSearch>(7)}, "LbfgsOptions.line_search = 7"},
  };
  for (const auto& [o, message] : bad)
    EXPECT_NE(value_error(with(o)).find(message), std::string::npos) << message;

  EXPECT_THROW(demix::minimize_lbfgs(f, x0, {batch.group, 0}), demix::ValueError);
  EXPECT_THROW(demix::minimize_lbfgs(f, x0, {batch.group + 1, 1}), demix::ValueError);
  EXPECT_THROW(demix::minimize_lbfgs(f, x0, {batch.group.narrow(0, 0, 1), 1}), demix::ShapeError);
  EXPECT_THROW(demix::minimize_lbfgs(f, x0.to(at::kLong), groups), demix::ValueError);
  const demix::LbfgsObjective wrong_values{[&](const at::Tensor& x) {
    return std::make_pair(at::zeros({2}, x.options()), at::zeros_like(x));
  }};
  EXPECT_THROW(demix::minimize_lbfgs(wrong_values, x0, groups), demix::ShapeError);
  const demix::LbfgsObjective wrong_grad{[&](const at::Tensor& x) {
    return std::make_pair(at::zeros({1}, x.options()), at::zeros({3}, x.options()));
  }};
  EXPECT_THROW(demix::minimize_lbfgs(wrong_grad, x0, groups), demix::ShapeError);
  EXPECT_THROW(demix::minimize_lbfgs({}, x0, groups), demix::ValueError);
}

} // namespace

#include <demix/core/errors.hpp>
#include <demix/optim/lbfgs.hpp>

#include "core/detail/sizes_text.hpp"
#include "optim/detail/require_option.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

namespace demix {

using detail::sizes_text;

namespace {

void check_options(const LbfgsOptions& o) {
  const detail::OptionCheck require{"LbfgsOptions"};
  require(o.history >= 1, "history", o.history, ">= 1");
  require(o.max_iterations >= 0, "max_iterations", o.max_iterations, ">= 0");
  require(o.max_backtracks >= 1, "max_backtracks", o.max_backtracks, ">= 1");
  require(o.rtol >= 0, "rtol", o.rtol, ">= 0");
  require(o.first_step_length > 0 && std::isfinite(o.first_step_length), "first_step_length",
          o.first_step_length, "> 0 and finite");
  require(o.sufficient_decrease > 0 && o.sufficient_decrease < 1, "sufficient_decrease",
          o.sufficient_decrease, "in (0, 1)");
  require(o.curvature > o.sufficient_decrease && o.curvature < 1, "curvature", o.curvature,
          "in (sufficient_decrease = " + detail::number_text(o.sufficient_decrease) + ", 1)");
  require(o.line_search == LineSearch::Armijo || o.line_search == LineSearch::StrongWolfe,
          "line_search", static_cast<double>(o.line_search), "Armijo or StrongWolfe");
}

/// The rows of x grouped into G problems: sums over each group's rows, and per-group numbers
/// broadcast back to the rows.
class Groups {
public:
  Groups(const at::Tensor& index /* (R) int64 */, std::int64_t count, std::int64_t x_dim)
      : index_(index), count_(count), row_shape_(static_cast<std::size_t>(x_dim), 1),
        one_row_each_(index.size(0) == count && index.equal(at::arange(count, index.options()))) {
    row_shape_[0] = index.size(0);
  }

  /// Per-row values (R) summed over each group: (G).
  at::Tensor sum(const at::Tensor& per_row /* (R) */) const {
    if (one_row_each_) return per_row; // (a synthesis: one map per problem) no scatter needed
    return at::zeros({count_}, per_row.options()).index_add(0, index_, per_row);
  }
  /// <a, b> over each group's rows: (R, ...), (R, ...) -> (G).
  at::Tensor dot(const at::Tensor& a, const at::Tensor& b) const {
    const at::Tensor ab = a * b;
    return sum(ab.dim() == 1 ? ab : ab.flatten(1).sum(1));
  }
  /// Per-group values (G) on the rows, broadcastable against x: (R, 1, ...).
  at::Tensor rows(const at::Tensor& per_group /* (G) */) const {
    return (one_row_each_ ? per_group : per_group.index_select(0, index_)).view(row_shape_);
  }
  std::int64_t count() const { return count_; }

private:
  at::Tensor index_;
  std::int64_t count_;
  std::vector<std::int64_t> row_shape_;
  bool one_row_each_; ///< row r is group r: sums and broadcasts are views
};

/// The objective's calls, with their outputs checked, detached and counted.
class Evaluator {
public:
  /// `calls`: the count so far (a resumed minimisation goes on counting).
  Evaluator(const LbfgsObjective& f, const at::Tensor& x0, std::int64_t groups,
            std::int64_t calls = 0)
      : f_(f), x_sizes_(x0.sizes().vec()), groups_(groups), calls_(calls) {}

  std::pair<at::Tensor, at::Tensor> value_and_grad(const at::Tensor& x) {
    auto [value, grad] = f_.value_and_grad(x);
    ++calls_;
    check_value(value, "value_and_grad");
    if (!grad.defined() || grad.sizes() != at::IntArrayRef(x_sizes_))
      throw ShapeError("minimize_lbfgs: value_and_grad returned a gradient " +
                       (grad.defined() ? sizes_text(grad) : std::string("(nothing)")) + ", x is " +
                       sizes_text(x));
    return {value.detach(), grad.detach()};
  }

  at::Tensor value(const at::Tensor& x) {
    if (!f_.value) return value_and_grad(x).first;
    at::Tensor v = f_.value(x);
    ++calls_;
    check_value(v, "value");
    return v.detach();
  }

  std::int64_t calls() const { return calls_; }

private:
  void check_value(const at::Tensor& v, const char* which) const {
    if (!v.defined() || v.dim() != 1 || v.size(0) != groups_)
      throw ShapeError(std::string("minimize_lbfgs: ") + which + " returned values " +
                       (v.defined() ? sizes_text(v) : std::string("(nothing)")) + ", expected (" +
                       std::to_string(groups_) + "), one per group");
  }

  const LbfgsObjective& f_;
  std::vector<std::int64_t> x_sizes_;
  std::int64_t groups_;
  std::int64_t calls_ = 0;
};

/// Where a line search ends, per group: the new point, its value and gradient, and whether a
/// length was accepted (groups that were done are accepted at the start and stay put).
struct Step {
  at::Tensor x, value, grad; // (R, ...), (G), (R, ...)
  at::Tensor accepted;       // (G) bool
};

/// The line search's common inputs: the point, its value and the direction, for every group.
struct Ray {
  const at::Tensor& x;     // (R, ...)
  const at::Tensor& value; // (G)
  const at::Tensor& grad;  // (R, ...)
  const at::Tensor& d;     // (R, ...) zero for done groups
  const at::Tensor& slope; // (G) g.d, < 0 for running groups
  const at::Tensor& done;  // (G) bool
};

/// Backtracking: lengths 1, 1/2, 1/4, ... until the Armijo condition holds, each group its own.
Step armijo(const Ray& r, const Groups& groups, const LbfgsOptions& o, Evaluator& f) {
  at::Tensor alpha = at::ones({groups.count()}, r.value.options());
  at::Tensor accepted = r.done.clone(), x_new = r.x;
  for (int k = 0; k < o.max_backtracks; ++k) {
    const at::Tensor x_try = r.x + groups.rows(alpha) * r.d;
    const at::Tensor f_try = f.value(x_try);
    const at::Tensor ok = (~accepted) & at::isfinite(f_try) &
                          (f_try <= r.value + o.sufficient_decrease * alpha * r.slope);
    x_new = at::where(groups.rows(ok), x_try, x_new);
    accepted = accepted | ok;
    alpha = at::where(accepted, alpha, 0.5 * alpha);
    if (accepted.all().item<bool>()) break;
  }
  auto [value, grad] = f.value_and_grad(x_new);
  return {x_new, value, grad, accepted};
}

/// Minimiser of the cubic through (a, fa, slope sa) and (b, fb, sb), safeguarded into the middle
/// 80 % of the interval; the midpoint where the cubic has no minimum or an end is not finite.
at::Tensor cubic_step(const at::Tensor& a, const at::Tensor& fa, const at::Tensor& sa,
                      const at::Tensor& b, const at::Tensor& fb, const at::Tensor& sb) {
  const at::Tensor d1 = sa + sb - 3 * (fa - fb) / (a - b);
  const at::Tensor d2 = at::sign(b - a) * (d1 * d1 - sa * sb).sqrt();
  const at::Tensor c = b - (b - a) * (sb + d2 - d1) / (sb - sa + 2 * d2);
  const at::Tensor lo = at::minimum(a, b), hi = at::maximum(a, b), w = hi - lo;
  const at::Tensor usable = at::isfinite(c) & at::isfinite(fb) & at::isfinite(sb);
  return at::where(usable, at::clamp(c, lo + 0.1 * w, hi - 0.1 * w), 0.5 * (a + b));
}

/// Strong Wolfe (Nocedal & Wright, algorithms 3.5 and 3.6, batched): per group a bracket
/// [lo, hi] of step lengths, lo the best length meeting the Armijo condition so far.
Step strong_wolfe(const Ray& r, const Groups& groups, const LbfgsOptions& o, Evaluator& f) {
  constexpr double kMaxLength = 1024; // 2^10: lengths double at most ten times
  const double inf = std::numeric_limits<double>::infinity();
  const auto opt = r.value.options();
  const int64_t G = groups.count();
  at::Tensor alpha = at::ones({G}, opt), accepted = r.done.clone();
  at::Tensor x_new = r.x, f_new = r.value, g_new = r.grad;
  at::Tensor a_lo = at::zeros({G}, opt), f_lo = r.value, s_lo = r.slope, x_lo = r.x, g_lo = r.grad;
  at::Tensor a_hi = at::full({G}, inf, opt), f_hi = a_hi, s_hi = at::zeros({G}, opt);
  for (int k = 0; k < o.max_backtracks; ++k) {
    const at::Tensor x_try = r.x + groups.rows(alpha) * r.d;
    const auto [f_try, g_try] = f.value_and_grad(x_try);
    const at::Tensor s_try = groups.dot(g_try, r.d);
    const at::Tensor running = ~accepted;
    const at::Tensor sufficient = at::isfinite(f_try) & at::isfinite(s_try) &
                                  (f_try <= r.value + o.sufficient_decrease * alpha * r.slope);
    const at::Tensor ok = running & sufficient & (s_try.abs() <= o.curvature * r.slope.abs());
    x_new = at::where(groups.rows(ok), x_try, x_new);
    f_new = at::where(ok, f_try, f_new);
    g_new = at::where(groups.rows(ok), g_try, g_new);
    accepted = accepted | ok;

    // The bracket of the groups still searching.
    const at::Tensor live = running & ~ok;
    const at::Tensor high = live & (~sufficient | (f_try >= f_lo));
    const at::Tensor low = live & ~high;
    // A new lo whose slope points back at the old lo: the minimum lies between them.
    const at::Tensor towards_hi =
        at::where(at::isinf(a_hi), at::ones_like(a_hi), at::sign(a_hi - a_lo));
    const at::Tensor flip = low & (s_try * towards_hi >= 0);
    a_hi = at::where(high, alpha, at::where(flip, a_lo, a_hi));
    f_hi = at::where(high, f_try, at::where(flip, f_lo, f_hi));
    s_hi = at::where(high, s_try, at::where(flip, s_lo, s_hi));
    a_lo = at::where(low, alpha, a_lo);
    f_lo = at::where(low, f_try, f_lo);
    s_lo = at::where(low, s_try, s_lo);
    x_lo = at::where(groups.rows(low), x_try, x_lo);
    g_lo = at::where(groups.rows(low), g_try, g_lo);
    // Next length: doubling until bracketed, then inside the bracket.
    const at::Tensor bracketed = at::isfinite(a_hi);
    const at::Tensor inside =
        cubic_step(a_lo, f_lo, s_lo, at::where(bracketed, a_hi, a_lo + 1), f_hi, s_hi);
    const at::Tensor next = at::where(bracketed, inside, at::clamp_max(2 * a_lo, kMaxLength));
    alpha = at::where(live, next, alpha);
    if (accepted.all().item<bool>()) break;
  }
  // Out of trials: the best length meeting the Armijo condition, if any.
  const at::Tensor fallback = ~accepted & (a_lo > 0);
  x_new = at::where(groups.rows(fallback), x_lo, x_new);
  f_new = at::where(fallback, f_lo, f_new);
  g_new = at::where(groups.rows(fallback), g_lo, g_new);
  return {x_new, f_new, g_new, accepted | fallback};
}

} // namespace

namespace {

void check_groups(const at::Tensor& x0, const RowGroups& groups) {
  if (!x0.defined() || x0.dim() < 1 || !at::isFloatingType(x0.scalar_type()))
    throw ValueError("minimize_lbfgs: x0 must be a real floating-point tensor (R, ...), got " +
                     (x0.defined()
                          ? std::string(c10::toString(x0.scalar_type())) + " " + sizes_text(x0)
                          : std::string("nothing")));
  const int64_t R = x0.size(0), G = groups.count;
  if (!groups.index.defined() || groups.index.dim() != 1 || groups.index.size(0) != R)
    throw ShapeError("minimize_lbfgs: the group index must be (" + std::to_string(R) +
                     ") (one per row of x), got " +
                     (groups.index.defined() ? sizes_text(groups.index) : "nothing"));
  if (groups.index.scalar_type() != at::kLong)
    throw ValueError("minimize_lbfgs: the group index must be int64, got " +
                     std::string(c10::toString(groups.index.scalar_type())));
  if (G < 1)
    throw ValueError("minimize_lbfgs: group count " + std::to_string(G) + ": must be >= 1");
  if (R > 0) {
    const int64_t lo = groups.index.min().item<int64_t>(), hi = groups.index.max().item<int64_t>();
    if (lo < 0 || hi >= G)
      throw ValueError("minimize_lbfgs: group index holds " + std::to_string(lo < 0 ? lo : hi) +
                       ", outside [0, " + std::to_string(G) + ")");
  }
}

} // namespace

LbfgsState lbfgs_start(const LbfgsObjective& objective, const at::Tensor& x0,
                       const RowGroups& groups, const LbfgsOptions& o) {
  check_options(o);
  if (!objective.value_and_grad)
    throw ValueError("minimize_lbfgs: the objective has no value_and_grad");
  check_groups(x0, groups);
  const int64_t G = groups.count;
  Evaluator f(objective, x0, G);
  LbfgsState st;
  st.x = x0.detach().clone();
  std::tie(st.value, st.grad) = f.value_and_grad(st.x);
  const auto bopt = st.value.options().dtype(at::kBool);
  st.done = at::zeros({G}, bopt);
  st.no_step = at::zeros({G}, bopt);
  st.iterations = at::zeros({G}, st.value.options().dtype(at::kLong));
  st.evaluations = f.calls();
  return st;
}

void lbfgs_run(const LbfgsObjective& objective, LbfgsState& st, const RowGroups& groups,
               const LbfgsOptions& o, const std::function<void(const LbfgsState&)>& progress) {
  check_options(o);
  if (!objective.value_and_grad)
    throw ValueError("minimize_lbfgs: the objective has no value_and_grad");
  check_groups(st.x, groups);
  const int64_t G = groups.count;
  if (!st.value.defined() || st.value.dim() != 1 || st.value.size(0) != G || !st.grad.defined() ||
      st.grad.sizes() != st.x.sizes() || st.s.size() != st.y.size() || st.s.size() != st.rho.size())
    throw ShapeError("lbfgs_run: the state does not fit " + std::to_string(G) + " groups and x " +
                     sizes_text(st.x));
  const Groups grp(groups.index.to(st.x.device()), G, st.x.dim());
  Evaluator f(objective, st.x, G, st.evaluations);
  // Without curvature, a step of length first_step_length along -g.
  const auto steepest_scale = [&](const at::Tensor& grad) {
    return o.first_step_length / grp.dot(grad, grad).sqrt().clamp_min(1e-30);
  };
  if (!st.done.logical_not().any().item<bool>()) return;

  while (st.iteration < o.max_iterations) {
    const at::Tensor& g = st.grad;
    st.iterations.add_((~st.done).to(at::kLong));
    // Two-loop recursion, every inner product per group.
    at::Tensor q = g;
    std::vector<at::Tensor> alphas(st.s.size());
    for (int i = static_cast<int>(st.s.size()) - 1; i >= 0; --i) {
      alphas[i] = st.rho[i] * grp.dot(st.s[i], q);
      q = at::addcmul(q, grp.rows(alphas[i]), st.y[i], -1);
    }
    at::Tensor gamma = steepest_scale(g);
    if (!st.s.empty()) {
      const at::Tensor yy = grp.dot(st.y.back(), st.y.back());
      const at::Tensor sy = grp.dot(st.s.back(), st.y.back());
      gamma = at::where((st.rho.back() > 0) & (yy > 0), sy / yy.clamp_min(1e-300), gamma);
    }
    at::Tensor r = grp.rows(gamma) * q;
    for (size_t i = 0; i < st.s.size(); ++i) {
      const at::Tensor beta = st.rho[i] * grp.dot(st.y[i], r);
      r = at::addcmul(r, grp.rows(alphas[i] - beta), st.s[i]);
    }
    at::Tensor d = -r;
    at::Tensor slope = grp.dot(g, d);
    const at::Tensor uphill = ~(slope < 0);
    d = at::where(grp.rows(uphill), -grp.rows(steepest_scale(g)) * g, d);
    d = at::where(grp.rows(st.done), at::zeros_like(d), d);
    slope = grp.dot(g, d);

    const Ray ray{st.x, st.value, g, d, slope, st.done};
    const Step step =
        o.line_search == LineSearch::Armijo ? armijo(ray, grp, o, f) : strong_wolfe(ray, grp, o, f);
    // The curvature pair; one without positive curvature (or a group's zero step) gets rho = 0.
    const at::Tensor s = step.x - st.x, yv = step.grad - g;
    const at::Tensor sy = grp.dot(s, yv);
    const at::Tensor scale = (grp.dot(s, s) * grp.dot(yv, yv)).sqrt();
    st.s.push_back(s), st.y.push_back(yv);
    st.rho.push_back(at::where(sy > 1e-12 * scale, 1.0 / sy, at::zeros_like(sy)));
    if (static_cast<int>(st.s.size()) > o.history) {
      st.s.erase(st.s.begin()), st.y.erase(st.y.begin()), st.rho.erase(st.rho.begin());
    }
    // No acceptable length (a minimum to rounding) or too small a decrease: that group is done.
    st.no_step = st.no_step | ~step.accepted;
    st.done = st.done | ~step.accepted | ((st.value - step.value) <= o.rtol * step.value.abs());
    st.x = step.x, st.value = step.value, st.grad = step.grad;
    ++st.iteration;
    st.evaluations = f.calls();
    const bool running = (~st.done).any().item<bool>();
    if (progress) progress(st);
    if (!running) break;
  }
}

LbfgsResult minimize_lbfgs(const LbfgsObjective& objective, const at::Tensor& x0,
                           const RowGroups& groups, const LbfgsOptions& o,
                           const std::function<void(const LbfgsProgress&)>& progress) {
  LbfgsState st = lbfgs_start(objective, x0, groups, o);
  lbfgs_run(objective, st, groups, o, [&](const LbfgsState& s) {
    if (progress) progress({s.iteration, (~s.done).sum().item<int64_t>(), s.value});
  });
  return {st.x, st.value, st.iterations, st.done, st.no_step, st.evaluations};
}

} // namespace demix

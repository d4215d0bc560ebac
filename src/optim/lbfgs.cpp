#include <demix/core/errors.hpp>
#include <demix/optim/lbfgs.hpp>

#include "core/detail/sizes_text.hpp"
#include "optim/detail/require_option.hpp"

#include <ATen/ATen.h>

#include <algorithm>
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
  /// <h_i, v> over each group's rows for every slot i of a stack: (m, R, ...), (R, ...) -> (G, m),
  /// one batched product over the rows.
  at::Tensor dots(const at::Tensor& stack, const at::Tensor& v) const {
    const int64_t m = stack.size(0), R = v.size(0);
    const at::Tensor per_row =
        at::bmm(stack.reshape({m, R, -1}).transpose(0, 1), v.reshape({R, -1, 1})).view({R, m});
    if (one_row_each_) return per_row;
    return at::zeros({count_, m}, per_row.options()).index_add(0, index_, per_row);
  }
  /// sum_i c_{g,i} h_i on the rows of group g: (G, m), (m, R, ...) -> (R, ...).
  at::Tensor combine(const at::Tensor& c, const at::Tensor& stack) const {
    const int64_t m = stack.size(0), R = stack.size(1);
    const at::Tensor rows = one_row_each_ ? c : c.index_select(0, index_); // (R, m)
    const at::Tensor out = at::bmm(rows.view({R, 1, m}), stack.reshape({m, R, -1}).transpose(0, 1));
    return out.view(stack.sizes().slice(1));
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
  bool settled = false;      ///< the last call of the search's `all_accepted` was about this step
};

/// Asks the host whether every group accepted a candidate step (a device round trip). The caller
/// may bring back, in the same trip, what it needs after the step, computed as if the candidate
/// were final: in the usual case (every group accepts the first length) that is the iteration's
/// only round trip.
using AllAccepted = std::function<bool(const Step& candidate)>;

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
Step strong_wolfe(const Ray& r, const Groups& groups, const LbfgsOptions& o, Evaluator& f,
                  const AllAccepted& all_accepted) {
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
    // As a rule at the first trial: no bracket to update.
    if (all_accepted({x_new, f_new, g_new, accepted})) return {x_new, f_new, g_new, accepted, true};

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
      st.grad.sizes() != st.x.sizes())
    throw ShapeError("lbfgs_run: the state does not fit " + std::to_string(G) + " groups and x " +
                     sizes_text(st.x));
  const Groups grp(groups.index.to(st.x.device()), G, st.x.dim());
  Evaluator f(objective, st.x, G, st.evaluations);
  const int m = o.history;
  if (!st.s.defined()) { // a fresh state: empty history
    std::vector<int64_t> sizes = st.x.sizes().vec();
    sizes.insert(sizes.begin(), m);
    st.s = at::zeros(sizes, st.x.options()), st.y = at::zeros(sizes, st.x.options());
    const auto host = at::TensorOptions().dtype(at::kDouble);
    st.sy = at::zeros({G, m, m}, host), st.yy = at::zeros({G, m, m}, host);
    st.rho = at::zeros({G, m}, host);
    st.pairs = 0;
  }
  if (st.s.size(0) != m || st.s.sizes().slice(1) != st.x.sizes() || st.rho.size(0) != G)
    throw ShapeError("lbfgs_run: the state's history " + sizes_text(st.s) +
                     " does not fit history " + std::to_string(m) + " of x " + sizes_text(st.x));
  const auto cpu_double = [](const at::Tensor& t) {
    return t.to(at::kCPU, at::kDouble).contiguous();
  };
  // What the host needs of a point to choose the next direction, one row per group: s_i.g,
  // y_i.g (i by slot), g.g, done, value: (G, 2m + 3), on the device.
  const auto point_numbers = [&](const at::Tensor& g, const at::Tensor& done,
                                 const at::Tensor& value) {
    return at::cat({grp.dots(st.s, g), grp.dots(st.y, g), grp.dot(g, g).view({G, 1}),
                    done.to(g.scalar_type()).view({G, 1}), value.to(g.scalar_type()).view({G, 1})},
                   1);
  };
  const int64_t kPoint = 2 * m + 3, kPair = 3 * m + 1; // widths of the two parts
  at::Tensor point = cpu_double(point_numbers(st.grad, st.done, st.value)); // (G, kPoint)
  const auto seen = [&](const at::Tensor& numbers /* (G, kPoint) */) {
    st.done_host = numbers.select(1, 2 * m + 1) != 0, st.value_host = numbers.select(1, 2 * m + 2);
  };
  seen(point);
  if (!st.done_host.logical_not().any().item<bool>()) return;

  while (st.iteration < o.max_iterations) {
    const at::Tensor& g = st.grad;
    st.iterations.add_((~st.done).to(at::kLong));
    // The direction d = -H g of the two-loop recursion, computed from inner products: with
    // q_i = g - sum_{j >= i} a_j y_j and r_i = gamma q_0 + sum_{j < i} (a_j - b_j) s_j, every
    // s.q and y.r the recursion takes is a combination of s_i.g, y_i.g and the pairs' products
    // s_i.y_j, y_i.y_j, kept per group on the host. The recursion then runs on m numbers per
    // group in float64 on the host, and d = c_g g + sum_i c_i s_i + e_i y_i is two batched
    // products on the device: a few kernels per iteration instead of ~10 per pair.
    // coef: c_g, c_i by slot, e_i by slot, the slope g.d, per group.
    at::Tensor coef = at::zeros({G, 2 * m + 2}, at::kDouble);
    {
      const auto gd = point.accessor<double, 2>();
      const auto SY = st.sy.accessor<double, 3>(), YY = st.yy.accessor<double, 3>();
      const auto rho = st.rho.accessor<double, 2>();
      auto c = coef.accessor<double, 2>();
      const int k = std::min(st.pairs, m);
      std::vector<int> slot(static_cast<size_t>(k)); // oldest first
      for (int i = 0; i < k; ++i) slot[i] = (st.pairs - k + i) % m;
      std::vector<double> a(static_cast<size_t>(k)), b(static_cast<size_t>(k));
      for (int64_t grp_i = 0; grp_i < G; ++grp_i) {
        if (gd[grp_i][2 * m + 1] != 0) continue; // done: d = 0, slope 0
        const auto Sg = [&](int i) { return gd[grp_i][slot[i]]; };
        const auto Yg = [&](int i) { return gd[grp_i][m + slot[i]]; };
        const auto sy = [&](int i, int j) { return SY[grp_i][slot[i]][slot[j]]; };
        const auto yy = [&](int i, int j) { return YY[grp_i][slot[i]][slot[j]]; };
        const auto r = [&](int i) { return rho[grp_i][slot[i]]; };
        const auto c_s = [&](int i) -> double& { return c[grp_i][1 + i]; };     // by slot
        const auto c_y = [&](int i) -> double& { return c[grp_i][1 + m + i]; }; // by slot
        const double gg = gd[grp_i][2 * m];
        for (int i = k - 1; i >= 0; --i) { // a_i = rho_i s_i.q_{i+1}
          double sq = Sg(i);
          for (int j = i + 1; j < k; ++j) sq -= a[j] * sy(i, j);
          a[i] = r(i) * sq;
        }
        const double steepest = o.first_step_length / std::max(std::sqrt(gg), 1e-30);
        double gamma = steepest;
        if (k > 0 && r(k - 1) > 0 && yy(k - 1, k - 1) > 0)
          gamma = sy(k - 1, k - 1) / std::max(yy(k - 1, k - 1), 1e-300);
        for (int i = 0; i < k; ++i) { // b_i = rho_i y_i.r_i
          double yq = Yg(i);
          for (int j = 0; j < k; ++j) yq -= a[j] * yy(i, j);
          double yr = gamma * yq;
          for (int j = 0; j < i; ++j) yr += (a[j] - b[j]) * sy(j, i);
          b[i] = r(i) * yr;
        }
        // d = -(gamma g - gamma sum_j a_j y_j + sum_j (a_j - b_j) s_j)
        double sl = -gamma * gg;
        for (int i = 0; i < k; ++i) {
          c_s(slot[i]) = -(a[i] - b[i]), c_y(slot[i]) = gamma * a[i];
          sl += c_s(slot[i]) * Sg(i) + c_y(slot[i]) * Yg(i);
        }
        c[grp_i][0] = -gamma;
        if (!(sl < 0)) { // not a descent direction (or NaN): the steepest-descent step
          for (int i = 0; i < m; ++i) c_s(i) = 0, c_y(i) = 0;
          c[grp_i][0] = -steepest, sl = -steepest * gg;
        }
        c[grp_i][2 * m + 1] = sl;
      }
    }
    const at::Tensor coef_dev = coef.to(g.options()); // one transfer for all of them
    const at::Tensor d = grp.rows(coef_dev.select(1, 0)) * g +
                         grp.combine(coef_dev.narrow(1, 1, m), st.s) +
                         grp.combine(coef_dev.narrow(1, 1 + m, m), st.y);
    const at::Tensor slope = coef_dev.select(1, 2 * m + 1);

    // After the step, the host needs the new pair's products with the history and the new point's
    // numbers. The new pair goes into the oldest slot, which the line search does not read (d is
    // made): a candidate step can be written there and its numbers brought back with the search's
    // question whether every group accepted it. (G, kPair + 1 + kPoint) on the device.
    const int p = st.pairs % m;
    at::Tensor s_new = st.s[p], y_new = st.y[p]; // views of the slot
    const auto step_numbers = [&](const Step& c) {
      at::sub_out(s_new, c.x, st.x), at::sub_out(y_new, c.grad, g);
      const at::Tensor done =
          st.done | ~c.accepted | ((st.value - c.value) <= o.rtol * c.value.abs());
      return at::cat({grp.dots(st.s, y_new), grp.dots(st.y, s_new), grp.dots(st.y, y_new),
                      grp.dot(s_new, s_new).view({G, 1}),
                      c.accepted.to(g.scalar_type()).view({G, 1}),
                      point_numbers(c.grad, done, c.value)},
                     1);
    };
    at::Tensor numbers; // (G, kPair + 1 + kPoint) float64 CPU, of the last candidate
    const AllAccepted all_accepted = [&](const Step& c) {
      numbers = cpu_double(step_numbers(c));
      return (numbers.select(1, kPair) != 0).all().item<bool>(); // (on the host: no round trip)
    };
    const Ray ray{st.x, st.value, g, d, slope, st.done};
    const Step step = o.line_search == LineSearch::Armijo
                          ? armijo(ray, grp, o, f)
                          : strong_wolfe(ray, grp, o, f, all_accepted);
    if (!step.settled) numbers = cpu_double(step_numbers(step));
    // A pair without positive curvature (or a group's zero step) gets rho = 0: it is kept but
    // ignored.
    ++st.pairs;
    {
      const auto pd = numbers.accessor<double, 2>(); // s_i.y_p, y_i.s_p, y_i.y_p, s_p.s_p
      auto SY = st.sy.accessor<double, 3>(), YY = st.yy.accessor<double, 3>();
      auto rho = st.rho.accessor<double, 2>();
      for (int64_t gi = 0; gi < G; ++gi) {
        for (int i = 0; i < m; ++i) {
          SY[gi][i][p] = pd[gi][i], SY[gi][p][i] = pd[gi][m + i];
          YY[gi][i][p] = YY[gi][p][i] = pd[gi][2 * m + i];
        }
        const double sy = SY[gi][p][p], scale = std::sqrt(pd[gi][3 * m] * YY[gi][p][p]);
        rho[gi][p] = sy > 1e-12 * scale ? 1.0 / sy : 0.0;
      }
    }
    // No acceptable length (a minimum to rounding) or too small a decrease: that group is done.
    st.no_step = st.no_step | ~step.accepted;
    st.done = st.done | ~step.accepted | ((st.value - step.value) <= o.rtol * step.value.abs());
    st.x = step.x, st.value = step.value, st.grad = step.grad;
    ++st.iteration;
    st.evaluations = f.calls();
    point = numbers.narrow(1, kPair + 1, kPoint).contiguous();
    seen(point);
    const bool running = st.done_host.logical_not().any().item<bool>();
    if (progress) progress(st);
    if (!running) break;
  }
}

LbfgsResult minimize_lbfgs(const LbfgsObjective& objective, const at::Tensor& x0,
                           const RowGroups& groups, const LbfgsOptions& o,
                           const std::function<void(const LbfgsProgress&)>& progress) {
  LbfgsState st = lbfgs_start(objective, x0, groups, o);
  lbfgs_run(objective, st, groups, o, [&](const LbfgsState& s) {
    if (progress) progress({s.iteration, (~s.done_host).sum().item<int64_t>(), s.value});
  });
  return {st.x, st.value, st.iterations, st.done, st.no_step, st.evaluations};
}

} // namespace demix

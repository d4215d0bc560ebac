#pragma once
// Batched L-BFGS (Nocedal & Wright 2006, algorithms 7.4 and 7.5): G independent minimisations
// solved together. The variables are the rows of one tensor x (R, ...); row r belongs to problem
// (group) group[r]. For instance one problem per map of a batch (x (B, H, W), group = arange(B)),
// or the latents of the galaxies of a batch of blends (x (M, D), group = the blend of each
// galaxy). The objective is evaluated for all groups at once and returns one value per group.
//
// Each group has its own curvature history and inner products (sums over its rows), its own line
// search and step length, and stops on its own. Per iteration k and group:
//  1. Direction d = -H g by the two-loop recursion over the group's last `history` pairs
//     (s, y) = (x_{k+1} - x_k, g_{k+1} - g_k), with initial scaling gamma = s.y / y.y of the newest
//     pair, or first_step_length / |g| where that pair is not usable. A pair with
//     s.y <= 1e-12 |s| |y| (no positive curvature) is kept but ignored. At the first iteration d
//     is thus the steepest-descent step of length first_step_length, -g first_step_length / |g|;
//     where d is not a descent direction (g.d >= 0 or NaN), that step replaces it. The recursion
//     runs on the host in float64 over the inner products of g and the pairs (s_i.g, y_i.g,
//     s_i.y_j, y_i.y_j, the last two kept from the iteration that made each pair); the device
//     forms d from them in two batched products (the same direction, in exact arithmetic).
//  2. Line search along d from step length alpha = 1:
//     - Armijo (backtracking): trial lengths 1, 1/2, 1/4, ..., at most max_backtracks of them; the
//       first with a finite value f(x + alpha d) <= f(x) + sufficient_decrease alpha g.d is taken.
//     - StrongWolfe: the first trial that also meets |g(x + alpha d).d| <= curvature |g.d| is
//       taken; lengths double until the minimum along d is bracketed (at most 2^10), then the
//       bracket shrinks by safeguarded cubic interpolation; at most max_backtracks trials, after
//       which the best trial meeting the Armijo condition (if any) is taken.
//     A group whose line search finds no acceptable length takes no step and stops (at a minimum
//     to rounding, usually).
//  3. The group stops when its value decreased by no more than rtol |f(x_{k+1})| in the iteration,
//     or after max_iterations iterations.
//
// Cost. Every objective call gets all R rows (shapes stay fixed, whatever the groups do): a
// finished group keeps its share of each call and of the per-row arithmetic of the
// direction, but takes no more steps: its rows of x, its value, history and counters are frozen
// (its direction is zero and its line search is over before it starts). Calls per iteration: one
// value_and_grad, plus with Armijo one value per trial length (as many as the slowest running
// group needs), with StrongWolfe one value_and_grad per trial length instead. The host waits for
// the device once per trial and three times per iteration (the inner products of the direction
// and of the new pair, the test that all groups are done). Memory: 2 history copies of x.

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

enum class LineSearch {
  Armijo,     ///< backtracking by halving until the sufficient-decrease condition holds
  StrongWolfe ///< sufficient decrease and |slope| <= curvature |initial slope|
};

struct LbfgsOptions {
  int history = 8;          ///< stored curvature pairs (s, y) per group; >= 1
  int max_iterations = 100; ///< iterations at most (the deblender: MadnessOptions::lbfgs_steps)
  int max_backtracks = 12;  ///< trial step lengths per line search (Armijo: 1 down to 2^-11); >= 1
  double rtol = 1e-9;       ///< a group stops when an iteration lowers its value by no more than
                            ///< this fraction of the value's magnitude; >= 0
  /// Length (L2 norm over the group's rows, in units of x) of a steepest-descent step, taken
  /// without a usable curvature pair; > 0. The deblender uses its Adam learning_rate (0.05).
  double first_step_length = 0.05;
  LineSearch line_search = LineSearch::Armijo;
  double sufficient_decrease = 1e-4; ///< Armijo constant c1; in (0, 1)
  double curvature = 0.9;            ///< strong-Wolfe constant c2; in (sufficient_decrease, 1)
};

/// The objective of every group at once. Both callables receive x (R, ...) and must not modify
/// it; values are (G), one per group, in x's dtype and on its device; the gradient is shaped like
/// x (the gradient of the sum of the values: group g's values depend on its rows only).
struct LbfgsObjective {
  std::function<std::pair<at::Tensor, at::Tensor>(const at::Tensor& x)> value_and_grad;
  /// Values only (Armijo's trial points); may be left empty, then value_and_grad is used.
  std::function<at::Tensor(const at::Tensor& x)> value;
};

/// Rows of x grouped into independent problems.
struct RowGroups {
  at::Tensor index;       // (R) int64 on x's device: the group of each row, in [0, count)
  std::int64_t count = 0; ///< G, >= 1 (a group may hold no row)
};

struct LbfgsProgress {
  int iteration = 0;               ///< iterations done
  std::int64_t running_groups = 0; ///< groups not yet stopped
  at::Tensor value;                // (G) the objective at the current x
};

struct LbfgsResult {
  at::Tensor x;          // (R, ...) the final point, a new tensor
  at::Tensor value;      // (G) the objective there
  at::Tensor iterations; // (G) int64: iterations each group took part in (the one it stopped in
                         // included)
  at::Tensor converged;  // (G) bool: its stopping test passed within max_iterations (a decrease
                         // <= rtol |value|, or no acceptable step length)
  at::Tensor no_step;    // (G) bool: stopped because its last line search found no length
  std::int64_t evaluations = 0; ///< objective calls (value_and_grad and value)
};

/// Everything an interrupted minimisation needs to go on exactly where it stopped (a synthesis
/// checkpoint saves it): the point, its value and gradient, each group's history and flags.
struct LbfgsState {
  at::Tensor x, value, grad; // (R, ...), (G), (R, ...)
  at::Tensor done, no_step;  // (G) bool
  at::Tensor iterations;     // (G) int64
  /// Curvature pairs in rings of `history` slots, filled by the first lbfgs_run: pair p (the p-th
  /// made) in slot p % history; the last min(pairs, history) are the live ones.
  at::Tensor s, y;   // (history, R, ...) on x's device
  at::Tensor sy, yy; // (G, history, history) float64 CPU: per group s_i.y_j and y_i.y_j by slot
  at::Tensor rho;    // (G, history) float64 CPU: 1 / s_i.y_i, or 0 for a pair without positive
                     // curvature (kept but ignored)
  /// value and done as the host last received them with the step's other numbers (float64 and
  /// bool, CPU), so that a progress callback reads them without another device round trip.
  at::Tensor value_host, done_host; // (G), (G)
  int pairs = 0;                    ///< pairs made
  int iteration = 0;                ///< iterations done
  std::int64_t evaluations = 0;     ///< objective calls so far
};

/// Minimises each group's objective from x0 (real floating point, (R, ...)). ValueError for
/// options out of range (naming field and value), a group index outside [0, count), or a
/// non-floating x0; ShapeError for an index that is not (R) or objective outputs of wrong shapes.
/// `progress`, if given, is called after every iteration.
LbfgsResult minimize_lbfgs(const LbfgsObjective& objective, const at::Tensor& x0 /* (R, ...) */,
                           const RowGroups& groups, const LbfgsOptions& options = {},
                           const std::function<void(const LbfgsProgress&)>& progress = {});

/// The two halves of minimize_lbfgs, for callers that save and resume: lbfgs_start evaluates the
/// objective at x0 (same checks); lbfgs_run iterates `state` in place until options.max_iterations
/// iterations are done in all (counting those before) or every group has stopped, calling
/// `progress` with the state after each iteration. Running a state saved after iteration k gives
/// the same iterates as the uninterrupted run, to the objective's own determinism. ShapeError for
/// a state that does not fit the groups.
LbfgsState lbfgs_start(const LbfgsObjective& objective, const at::Tensor& x0 /* (R, ...) */,
                       const RowGroups& groups, const LbfgsOptions& options = {});
void lbfgs_run(const LbfgsObjective& objective, LbfgsState& state, const RowGroups& groups,
               const LbfgsOptions& options = {},
               const std::function<void(const LbfgsState&)>& progress = {});

} // namespace demix
#pragma GCC visibility pop

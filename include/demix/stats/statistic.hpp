#pragma once
// The interface every statistic implements (WPH, WST, scattering covariance, power spectrum), so
// that synthesis, separation, the command line and the Python package handle them alike. Build
// one with make_statistic (stats/registry.hpp) from its options and a grid, or construct the
// concrete operator directly.
//
// Maps are (B, H, W) batches or single (H, W) maps of the grid's size, on any device (cast to the
// operator's device and precision, differentiably). A channel axis, (B, C, H, W) with
// auto-statistics per channel and cross-statistics between channels labelled by columns "c1" and
// "c2", is planned for multi-channel statistics (I, Q, U; several frequencies).
//
// Thread safety: every method is const and the operator keeps no state between calls (references
// are values passed in), so one operator serves several threads.

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/coefficients.hpp>
#include <demix/stats/loss.hpp>
#include <demix/stats/reference.hpp>

#include <ATen/core/TensorBody.h>

#include <string>
#include <variant>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// A keyword that describes a statistic's options in output files (FITS header, JSON).
struct StatisticKeyword {
  std::string fits;                                   ///< FITS keyword, e.g. "DN"
  std::string json;                                   ///< JSON key, e.g. "dn"
  std::variant<long long, double, std::string> value; ///< its value
  std::string comment;                                ///< FITS comment
};

class Statistic {
public:
  virtual ~Statistic() = default;

  /// Short name, as the registry and output files know it: "wph", "wst", "scov", "ps".
  virtual const char* name() const = 0;
  /// The maps' grid and the device and precision the statistic computes in, fixed at construction.
  const Grid& grid() const { return grid_; }
  const Context& context() const { return context_; }
  /// The coefficients' labels (classes, label columns) without computing anything; values
  /// undefined. forward() returns these labels in this order.
  virtual const Coefficients& labels() const = 0;
  int64_t size() const { return labels().size(); }
  /// The options as output-file keywords (J, L, normalisation...).
  virtual std::vector<StatisticKeyword> keywords() const = 0;
  /// Whether forward_cross is implemented (else it throws ValueError), and complex maps accepted.
  virtual bool supports_cross() const { return false; }
  virtual bool supports_complex() const { return false; }

  /// Normalisation statistics of reference maps (B0, H, W) or (H, W), detached, for statistics
  /// that normalise by a reference (WPH with norm Auto, the scattering covariance with P00 or
  /// P11): an empty Reference for the others.
  virtual Reference reference(const at::Tensor& maps /* (B0, H, W) or (H, W) */) const;

  /// The statistics of each map: values (B, K), in the order of labels(). `ref`: empty (each map
  /// normalised by its own statistics, where the statistic normalises) or from reference(), with
  /// B0 = 1 or B maps. Differentiable with respect to x.
  virtual Coefficients forward(const at::Tensor& x /* (B, H, W) or (H, W) */,
                               const Reference& ref = {}) const = 0;

  /// Cross statistics of x and y (same shape): ValueError where not supported (supports_cross).
  virtual Coefficients forward_cross(const at::Tensor& x /* (B, H, W) or (H, W) */,
                                     const at::Tensor& y /* like x */,
                                     const Reference& ref = {}) const;

  /// The loss of each map and, if want_grad, its gradient with respect to x. The default is
  /// autograd over forward(); statistics with a memory-bounded engine (WPH) override it and feed
  /// the loss chunk by chunk. Everything is detached from the caller's graph.
  virtual LossResult loss_and_grad(const at::Tensor& x /* (B, H, W) or (H, W) */,
                                   const CoefficientLoss& loss, const Reference& ref = {},
                                   bool want_grad = true) const;

protected:
  Statistic(const Grid& grid, const Context& context) : grid_(grid), context_(context) {}
  /// The grid of a planar statistic (all of today's): the one its constructor took.
  const Grid2d& plane() const { return std::get<Grid2d>(grid_); }

private:
  Grid grid_;
  Context context_;
};

} // namespace demix
#pragma GCC visibility pop

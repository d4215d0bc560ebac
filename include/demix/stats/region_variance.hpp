#pragma once
// The variance of a map in each region of a label map, for non-stationary levels: the
// separation's residual-variance term matches the variance of d - u in each region to the
// contamination's (separation/component_separation.hpp, SeparationTerms::residual_variance).
//
//   V[r] = (1 / n_r) sum over the n_r pixels p of region r of |x(p) - m_r|^2,
//   m_r  = (1 / n_r) sum over the same pixels of x(p)
//
// Regions are integer labels 0..R-1 per pixel; a negative label puts a pixel in no region (a
// mask). Plain ATen operations: differentiable, the same on CPU and CUDA.

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/coefficients.hpp>
#include <demix/stats/statistic.hpp>

#include <ATen/core/TensorBody.h>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

class RegionVarianceOperator final : public Statistic {
public:
  /// `regions` (H, W) integer: labels 0..R-1, each holding at least 2 pixels, or negative (no
  /// region). ShapeError for another shape, ValueError for a non-integer tensor, no region, or a
  /// label with fewer than 2 pixels (its variance is undefined; the message names it).
  RegionVarianceOperator(const at::Tensor& regions, const Grid2d& grid, const Context& context);

  const char* name() const override { return "regvar"; }
  /// Class {"VAR"}, labels ("region") = 0..R-1.
  const Coefficients& labels() const override { return labels_; }
  std::vector<StatisticKeyword> keywords() const override;
  bool supports_complex() const override { return true; }

  /// The variance of each map in each region: values (B, R) real. x: (B, H, W) or (H, W), real
  /// or complex (|.|^2), cast to the operator's device and dtype (differentiably).
  Coefficients forward(const at::Tensor& x, const Reference& ref = {}) const override;

  int64_t regions() const { return labels_.size(); }

private:
  Coefficients labels_;
  at::Tensor index_;      // (H W) int64 on the device: each pixel's region, R for none
  at::Tensor inv_counts_; // (R) 1 / n_r on the device, in the operator's real dtype
};

} // namespace demix
#pragma GCC visibility pop

#pragma once
// A statistic of masked maps, for skies that are not stationary or not whole (Galactic plane,
// point sources, survey edges): any statistic computed on w_r x for R masks w_r (H, W) in
// [0, 1], one set of coefficients per mask. A mask's 0 pixels are excluded; apodised edges (a
// smooth fall to 0 over a few pixels) keep the wavelets from seeing a sharp cut. Several masks
// give statistics per region (e.g. latitude bands). The values are those of the weighted map,
// comparable between maps under the same masks (what matching them in synthesis or separation
// needs), not rescaled to unmasked ones.

#include <demix/stats/statistic.hpp>

#include <ATen/core/TensorBody.h>

#include <memory>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

class MaskedStatistic final : public Statistic {
public:
  /// `inner` on the grid of the masks (R, H, W) (or one (H, W) mask), real, finite, in [0, 1],
  /// none all zero. ShapeError / ValueError naming the problem.
  MaskedStatistic(std::shared_ptr<const Statistic> inner, const at::Tensor& masks);

  /// The inner statistic's name: terms, keywords and files read as before, with NMASKS added.
  const char* name() const override { return inner_->name(); }
  /// The inner labels once per mask, classes prefixed "m<r>." (m0.S11, m1.S11, ...).
  const Coefficients& labels() const override { return labels_; }
  std::vector<StatisticKeyword> keywords() const override;
  bool supports_cross() const override { return inner_->supports_cross(); }
  bool supports_complex() const override { return inner_->supports_complex(); }
  /// The inner references of each masked reference map, in one Reference (names "m<r>.<name>").
  Reference reference(const at::Tensor& maps /* (B0, H, W) or (H, W) */) const override;
  /// values (B, R K): region r's block is the inner statistic of w_r x.
  Coefficients forward(const at::Tensor& x /* (B, H, W) or (H, W) */,
                       const Reference& ref = {}) const override;
  Coefficients forward_cross(const at::Tensor& x, const at::Tensor& y,
                             const Reference& ref = {}) const override;

  int64_t masks() const { return masks_.size(0); }
  const Statistic& inner() const { return *inner_; }

private:
  /// Region r's part of a reference from reference().
  Reference region_reference(const Reference& ref, int64_t r) const;

  std::shared_ptr<const Statistic> inner_;
  at::Tensor masks_; // (R, H, W) on the inner statistic's device and precision
  Coefficients labels_;
};

} // namespace demix
#pragma GCC visibility pop

#include <demix/core/errors.hpp>
#include <demix/stats/region_variance.hpp>

#include "stats/detail/map_batch.hpp"

#include <ATen/ATen.h>

#include <string>

namespace demix {

RegionVarianceOperator::RegionVarianceOperator(const at::Tensor& regions, const Grid2d& grid,
                                               const Context& context)
    : Statistic(grid, context) {
  if (!regions.defined() || regions.dim() != 2 || regions.size(0) != grid.height ||
      regions.size(1) != grid.width)
    throw ShapeError("region variance: the regions must be an (" + std::to_string(grid.height) +
                     ", " + std::to_string(grid.width) + ") label map, got " +
                     (regions.defined() ? std::to_string(regions.dim()) + " dimension(s)"
                                        : std::string("nothing")));
  if (at::isFloatingType(regions.scalar_type()) || regions.is_complex()) {
    const at::Tensor r = regions.detach().to(at::kCPU, at::kDouble);
    if (!at::equal(r, r.round()) || !at::isfinite(r).all().item<bool>())
      throw ValueError("region variance: region labels must be integers (negative: no region)");
  } else if (regions.scalar_type() == at::kBool) {
    throw ValueError("region variance: region labels must be integers, got a boolean mask (give "
                     "0 for the pixels kept and -1 for the others)");
  }
  const at::Tensor labels = regions.detach().to(at::kCPU, at::kLong).flatten();
  const int64_t R = labels.numel() > 0 ? labels.max().item<int64_t>() + 1 : 0;
  if (R <= 0) throw ValueError("region variance: no pixel is in a region (every label < 0)");
  const at::Tensor inside = labels >= 0;
  const at::Tensor counts = at::zeros({R}, at::kLong)
                                .index_add(0, labels.index({inside}),
                                           at::ones({inside.sum().item<int64_t>()}, at::kLong));
  for (int64_t r = 0; r < R; ++r)
    if (counts[r].item<int64_t>() < 2)
      throw ValueError("region variance: region " + std::to_string(r) + " holds " +
                       std::to_string(counts[r].item<int64_t>()) + " pixel(s); each label 0.." +
                       std::to_string(R - 1) + " needs at least 2 (negative labels: no region)");
  const at::TensorOptions o = context.options();
  index_ = at::where(inside, labels, at::full({}, R, at::kLong)).to(o.device());
  inv_counts_ = (1.0 / counts.to(at::kDouble)).to(o.device(), o.dtype().toScalarType());
  labels_.classes = {"VAR"};
  labels_.class_id = at::zeros({R}, at::kLong);
  labels_.label_names = {"region"};
  labels_.labels = at::arange(R, at::kLong).unsqueeze(1);
}

std::vector<StatisticKeyword> RegionVarianceOperator::keywords() const {
  return {{"NREGION", "regions", static_cast<long long>(regions()), "regions of the label map"}};
}

Coefficients RegionVarianceOperator::forward(const at::Tensor& x, const Reference&) const {
  const at::Tensor maps =
      detail::map_batch(x, plane().height, plane().width, "region variance: input");
  if (!maps.is_complex() && !at::isFloatingType(maps.scalar_type()))
    throw ValueError("region variance: the input must be real or complex floating point, got " +
                     std::string(c10::toString(maps.scalar_type())));
  const at::ScalarType real = context().options().dtype().toScalarType();
  const at::Tensor y =
      maps.to(context().device(), maps.is_complex() ? c10::toComplexType(real) : real)
          .flatten(1); // (B, H W)
  const int64_t B = y.size(0), R = regions();
  // Per-region sums (one extra column gathers the pixels in no region; it is dropped).
  const auto region_sum = [&](const at::Tensor& v) {
    return at::zeros({B, R + 1}, v.options()).index_add(1, index_, v).narrow(1, 0, R);
  };
  const at::Tensor mean = region_sum(y) * inv_counts_; // (B, R)
  // Two passes (deviations from the region's mean), exact also for a large mean in float32.
  const at::Tensor mean_at_pixel =
      at::cat({mean, at::zeros({B, 1}, mean.options())}, 1).index_select(1, index_);
  const at::Tensor dev = y - mean_at_pixel;
  const at::Tensor sq = y.is_complex() ? at::real(dev * dev.conj()) : dev * dev;
  Coefficients c = labels_;
  c.values = region_sum(sq) * inv_counts_;
  return c;
}

} // namespace demix

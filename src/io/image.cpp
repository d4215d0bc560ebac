#include <demix/core/errors.hpp>
#include <demix/io/image.hpp>

#include <ATen/ATen.h>

namespace demix {

at::Tensor apply_non_finite_policy(const at::Tensor& data, NonFinitePolicy policy,
                                   const std::string& what) {
  if (policy == NonFinitePolicy::Keep) return data;
  const at::Tensor bad = data.is_complex()
                             ? ~at::isfinite(at::real(data)) | ~at::isfinite(at::imag(data))
                             : ~at::isfinite(data);
  const int64_t n_bad = bad.sum().item<int64_t>();
  if (n_bad == 0) return data;
  switch (policy) {
  case NonFinitePolicy::Reject: {
    const int64_t n_nan = (data.is_complex() ? at::isnan(at::real(data)) | at::isnan(at::imag(data))
                                             : at::isnan(data))
                              .sum()
                              .item<int64_t>();
    throw ValueError(what + " has " + std::to_string(n_bad) + " non-finite pixel(s) (" +
                     std::to_string(n_nan) + " NaN, " + std::to_string(n_bad - n_nan) +
                     " Inf) out of " + std::to_string(data.numel()) +
                     "; replace them explicitly with --nan zero|mean, or --nan keep");
  }
  case NonFinitePolicy::Zero: return at::where(bad, at::zeros({}, data.options()), data);
  case NonFinitePolicy::Mean: {
    // Per plane: the mean of each (H, W) plane's finite pixels (0 for an all-bad plane).
    const at::Tensor good = (~bad).to(data.scalar_type());
    const at::Tensor clean = at::where(bad, at::zeros({}, data.options()), data);
    const at::Tensor n = good.sum({-2, -1}, /*keepdim=*/true);
    const at::Tensor mean = clean.sum({-2, -1}, true) / at::clamp_min(at::real(n), 1);
    return at::where(bad, mean.expand_as(data), data);
  }
  case NonFinitePolicy::Keep: break;
  }
  return data;
}

PixelSummary summarize(const at::Tensor& data) {
  const at::Tensor v = (data.is_complex() ? data.abs() : data).detach().to(at::kDouble).flatten();
  PixelSummary s;
  s.count = v.numel();
  s.nan = at::isnan(v).sum().item<int64_t>();
  s.inf = at::isinf(v).sum().item<int64_t>();
  const at::Tensor finite = v.index({at::isfinite(v)});
  if (finite.numel() > 0) {
    s.min = finite.min().item<double>();
    s.max = finite.max().item<double>();
    s.mean = finite.mean().item<double>();
    s.std = finite.std(/*unbiased=*/false).item<double>();
  }
  return s;
}

} // namespace demix

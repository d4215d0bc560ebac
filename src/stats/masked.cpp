#include <demix/core/errors.hpp>
#include <demix/stats/masked.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>

#include <string>
#include <utility>

namespace demix {

namespace {

std::string prefix(int64_t r) { return "m" + std::to_string(r) + "."; }

const Statistic& checked(const std::shared_ptr<const Statistic>& s) {
  if (!s) throw ValueError("masked statistic: no statistic to mask");
  return *s;
}

} // namespace

MaskedStatistic::MaskedStatistic(std::shared_ptr<const Statistic> inner, const at::Tensor& masks)
    : Statistic(checked(inner).grid(), checked(inner).context()), inner_(std::move(inner)) {
  const Grid2d& g = plane();
  at::Tensor m = masks.defined() && masks.dim() == 2 ? masks.unsqueeze(0) : masks;
  if (!m.defined() || m.dim() != 3 || m.size(1) != g.height || m.size(2) != g.width ||
      m.size(0) < 1)
    throw ShapeError("masked statistic: the masks must be (R, " + std::to_string(g.height) + ", " +
                     std::to_string(g.width) + ") or one (" + std::to_string(g.height) + ", " +
                     std::to_string(g.width) + ") map, got " +
                     (m.defined() ? detail::sizes_text(m) : std::string("nothing")));
  if (m.is_complex() || !(at::isFloatingType(m.scalar_type()) || m.scalar_type() == at::kBool ||
                          at::isIntegralType(m.scalar_type(), false)))
    throw ValueError("masked statistic: masks must be real weights in [0, 1]");
  const at::Tensor d = m.detach().to(at::kCPU, at::kDouble);
  if (!at::isfinite(d).all().item<bool>() || (d < 0).any().item<bool>() ||
      (d > 1).any().item<bool>())
    throw ValueError("masked statistic: mask weights must be finite and in [0, 1], got values in "
                     "[" +
                     std::to_string(d.min().item<double>()) + ", " +
                     std::to_string(d.max().item<double>()) + "]");
  for (int64_t r = 0; r < d.size(0); ++r)
    if (!(d[r] > 0).any().item<bool>())
      throw ValueError("masked statistic: mask " + std::to_string(r) +
                       " is zero everywhere (it keeps no pixel)");
  masks_ = context().to(d);
  std::vector<Coefficients> parts(static_cast<std::size_t>(masks_.size(0)), inner_->labels());
  std::vector<std::string> prefixes;
  for (int64_t r = 0; r < masks_.size(0); ++r) prefixes.push_back("m" + std::to_string(r));
  labels_ = Coefficients::concat(parts, prefixes);
}

std::vector<StatisticKeyword> MaskedStatistic::keywords() const {
  std::vector<StatisticKeyword> k = inner_->keywords();
  k.push_back({"NMASKS", "masks", static_cast<long long>(masks()), "statistics per mask"});
  return k;
}

Reference MaskedStatistic::reference(const at::Tensor& maps) const {
  std::vector<std::pair<std::string, at::Tensor>> all;
  std::string name;
  for (int64_t r = 0; r < masks(); ++r) {
    const Reference ref = inner_->reference(context().to(maps) * masks_[r]);
    if (ref.empty()) return {};
    name = ref.statistic();
    for (const auto& [key, t] : ref.tensors()) all.emplace_back(prefix(r) + key, t);
  }
  return Reference(name, std::move(all));
}

Reference MaskedStatistic::region_reference(const Reference& ref, int64_t r) const {
  if (ref.empty()) return {};
  const std::string p = prefix(r);
  std::vector<std::pair<std::string, at::Tensor>> mine;
  for (const auto& [key, t] : ref.tensors())
    if (key.compare(0, p.size(), p) == 0) mine.emplace_back(key.substr(p.size()), t);
  if (mine.empty())
    throw ValueError("masked statistic: the reference holds nothing for mask " + std::to_string(r) +
                     " (compute it with this statistic's reference())");
  return Reference(ref.statistic(), std::move(mine));
}

Coefficients MaskedStatistic::forward(const at::Tensor& x, const Reference& ref) const {
  std::vector<Coefficients> parts;
  std::vector<std::string> prefixes;
  const at::Tensor maps = context().to(x);
  for (int64_t r = 0; r < masks(); ++r) {
    parts.push_back(inner_->forward(maps * masks_[r], region_reference(ref, r)));
    prefixes.push_back("m" + std::to_string(r));
  }
  return Coefficients::concat(parts, prefixes);
}

Coefficients MaskedStatistic::forward_cross(const at::Tensor& x, const at::Tensor& y,
                                            const Reference& ref) const {
  std::vector<Coefficients> parts;
  std::vector<std::string> prefixes;
  const at::Tensor a = context().to(x), b = context().to(y);
  for (int64_t r = 0; r < masks(); ++r) {
    parts.push_back(inner_->forward_cross(a * masks_[r], b * masks_[r], region_reference(ref, r)));
    prefixes.push_back("m" + std::to_string(r));
  }
  return Coefficients::concat(parts, prefixes);
}

} // namespace demix

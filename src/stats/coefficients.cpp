#include <demix/core/errors.hpp>
#include <demix/stats/coefficients.hpp>

#include <ATen/ATen.h>

#include <algorithm>

namespace demix {

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

} // namespace

at::Tensor Coefficients::mask(const std::string& name) const {
  const auto it = std::find(classes.begin(), classes.end(), name);
  if (it == classes.end())
    throw ValueError("no coefficient class '" + name + "'; classes: " + join(classes));
  return class_id == static_cast<int64_t>(it - classes.begin());
}

Coefficients Coefficients::select(const std::string& name) const {
  const at::Tensor keep = mask(name).nonzero().flatten();
  Coefficients out = *this;
  out.values = values.index_select(-1, keep.to(values.device()));
  out.class_id = class_id.index_select(0, keep);
  out.labels = labels.index_select(0, keep);
  return out;
}

at::Tensor Coefficients::label(const std::string& name) const {
  const auto it = std::find(label_names.begin(), label_names.end(), name);
  if (it == label_names.end())
    throw ValueError("no label '" + name + "'; labels: " + join(label_names));
  return labels.select(1, it - label_names.begin());
}

} // namespace demix

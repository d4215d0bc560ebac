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

Coefficients Coefficients::concat(const std::vector<Coefficients>& parts,
                                  const std::vector<std::string>& prefixes) {
  if (!prefixes.empty() && prefixes.size() != parts.size())
    throw ValueError("Coefficients::concat: " + std::to_string(prefixes.size()) + " prefixes for " +
                     std::to_string(parts.size()) + " parts");
  Coefficients out;
  for (const auto& part : parts)
    for (const auto& name : part.label_names)
      if (std::find(out.label_names.begin(), out.label_names.end(), name) == out.label_names.end())
        out.label_names.push_back(name);
  const int64_t n_labels = static_cast<int64_t>(out.label_names.size());
  const bool with_values = !parts.empty() && parts.front().values.defined();
  const bool complex = std::any_of(parts.begin(), parts.end(), [](const Coefficients& c) {
    return c.values.defined() && c.values.is_complex();
  });
  std::vector<at::Tensor> values, ids, labels;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Coefficients& part = parts[i];
    if (part.values.defined() != with_values)
      throw ValueError("Coefficients::concat: part " + std::to_string(i) +
                       (with_values ? " has no values" : " has values") + ", part 0 " +
                       (with_values ? "has" : "has none"));
    const int64_t first_class = static_cast<int64_t>(out.classes.size());
    for (const auto& name : part.classes) {
      const std::string renamed = prefixes.empty() ? name : prefixes[i] + "." + name;
      if (std::find(out.classes.begin(), out.classes.end(), renamed) != out.classes.end())
        throw ValueError("Coefficients::concat: class '" + renamed +
                         "' appears twice; give each part a prefix");
      out.classes.push_back(renamed);
    }
    ids.push_back(part.class_id + first_class);
    // Label columns moved to their place in the union, -1 where the part has no such column.
    at::Tensor rows = at::full({part.size(), n_labels}, -1, at::kLong);
    for (std::size_t c = 0; c < part.label_names.size(); ++c) {
      const auto at =
          std::find(out.label_names.begin(), out.label_names.end(), part.label_names[c]);
      rows.select(1, at - out.label_names.begin()).copy_(part.labels.select(1, c));
    }
    labels.push_back(rows);
    if (!with_values) continue;
    if (part.values.size(0) != parts.front().values.size(0))
      throw ShapeError("Coefficients::concat: part " + std::to_string(i) + " holds " +
                       std::to_string(part.values.size(0)) + " maps, part 0 " +
                       std::to_string(parts.front().values.size(0)));
    values.push_back(complex && !part.values.is_complex()
                         ? at::complex(part.values, at::zeros_like(part.values))
                         : part.values);
  }
  out.class_id = ids.empty() ? at::zeros({0}, at::kLong) : at::cat(ids);
  out.labels = labels.empty() ? at::zeros({0, n_labels}, at::kLong) : at::cat(labels);
  if (with_values) out.values = at::cat(values, 1);
  return out;
}

} // namespace demix

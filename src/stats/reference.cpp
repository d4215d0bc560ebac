#include <demix/core/errors.hpp>
#include <demix/stats/reference.hpp>

#include <ATen/ATen.h>

namespace demix {

Reference::Reference(std::string statistic, std::vector<std::pair<std::string, at::Tensor>> tensors)
    : statistic_(std::move(statistic)), tensors_(std::move(tensors)) {
  int64_t b0 = -1;
  for (const auto& [name, t] : tensors_) {
    if (!t.defined() || t.dim() < 1)
      throw ValueError("reference of '" + statistic_ + "': tensor '" + name +
                       "' is undefined or has no map axis");
    if (b0 >= 0 && t.size(0) != b0)
      throw ShapeError("reference of '" + statistic_ + "': tensor '" + name + "' holds " +
                       std::to_string(t.size(0)) + " maps, the others " + std::to_string(b0));
    b0 = t.size(0);
  }
}

const at::Tensor& Reference::get(const std::string& name) const {
  std::string names;
  for (const auto& [n, t] : tensors_) {
    if (n == name) return t;
    names += (names.empty() ? "" : ", ") + n;
  }
  throw ValueError("reference of '" + statistic_ + "' has no tensor '" + name +
                   "' (it holds: " + (names.empty() ? "nothing" : names) + ")");
}

int64_t Reference::maps() const { return empty() ? 0 : tensors_.front().second.size(0); }

Reference Reference::narrow(int64_t start, int64_t n) const {
  if (maps() <= 1) return *this;
  std::vector<std::pair<std::string, at::Tensor>> parts;
  for (const auto& [name, t] : tensors_) parts.emplace_back(name, t.narrow(0, start, n));
  return Reference(statistic_, std::move(parts));
}

void Reference::check(const std::string& statistic, int64_t batch, const std::string& what) const {
  if (empty()) return;
  if (statistic_ != statistic)
    throw ValueError(what + ": the reference was computed by '" + statistic_ + "', not by '" +
                     statistic + "'");
  if (maps() != 1 && maps() != batch)
    throw ShapeError(what + ": the reference holds " + std::to_string(maps()) +
                     " maps but the batch has " + std::to_string(batch) +
                     " (a reference serves batches of its size, or is one map for all)");
}

void Reference::require_empty(const std::string& what) const {
  if (!empty())
    throw ValueError(what + " normalises nothing and takes no reference, got one computed by '" +
                     statistic_ + "'");
}

} // namespace demix

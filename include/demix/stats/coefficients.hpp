#pragma once
// The result of every statistics operator (WPH, WST, scattering covariance, power spectrum): one
// value per coefficient and per map of the batch, with a label row per coefficient so that users
// can select, compare and plot classes of coefficients.

#include <ATen/core/TensorBody.h>

#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct Coefficients {
  at::Tensor values;                    // (B, K) real or complex, on the operator's device
  std::vector<std::string> classes;     // class names, e.g. {"S11", "S00", "S01", ...}
  at::Tensor class_id;                  // (K,) int64 CPU: index into `classes`
  std::vector<std::string> label_names; // names of the label columns, e.g. {"j1", "t1", ...}
  at::Tensor labels;                    // (K, label_names.size()) int64 CPU; -1 = not applicable

  int64_t size() const { return class_id.numel(); }
  /// (K,) bool CPU: the coefficients of class `name` (ValueError if there is no such class).
  at::Tensor mask(const std::string& name) const;
  /// The coefficients of one class, values and labels restricted to it.
  Coefficients select(const std::string& name) const;
  /// Column `name` of the labels, (K,) int64 (ValueError if absent).
  at::Tensor label(const std::string& name) const;

  /// Coefficients of several statistics side by side, e.g. the target of a loss over all of them:
  /// values concatenated along K (complex when any part is; all parts defined with the same B, or
  /// all undefined, for labels alone); classes renamed "<prefix>.<class>" with one prefix per part
  /// (no prefixes: class names must already be distinct); label columns the union of the parts'
  /// in first-seen order, -1 where a part has no such column. ValueError for a prefix count that
  /// is not the part count or repeated class names, ShapeError for batch sizes that differ.
  static Coefficients concat(const std::vector<Coefficients>& parts,
                             const std::vector<std::string>& prefixes = {});
};

} // namespace demix
#pragma GCC visibility pop

#pragma once
// The normalisation statistics of reference maps (pywph's norm="auto" means and deviations,
// Cheng et al.'s P00 and P11 of a reference): computed by Statistic::reference(), then passed to
// forward, forward_cross and loss_and_grad. A value, not state of the operator, so that one
// operator serves many references (syntheses of several targets, separations with many
// realizations) and threads.

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

class Reference {
public:
  /// No reference: each map is normalised by its own statistics.
  Reference() = default;
  /// `statistic`: the name of the statistic that computed it ("wph", "scov"); `tensors`: named
  /// tensors whose first axis runs over the B0 reference maps (B0 the same for all).
  Reference(std::string statistic, std::vector<std::pair<std::string, at::Tensor>> tensors);

  bool empty() const { return tensors_.empty(); }
  const std::string& statistic() const { return statistic_; }
  /// The tensor `name` (ValueError naming the names it holds if absent).
  const at::Tensor& get(const std::string& name) const;
  const std::vector<std::pair<std::string, at::Tensor>>& tensors() const { return tensors_; }
  /// B0, the number of reference maps (0 when empty).
  int64_t maps() const;
  /// The reference of maps [start, start + n) when it holds one per map (B0 > 1), else itself:
  /// what a slice of a batch of maps is normalised with.
  Reference narrow(int64_t start, int64_t n) const;
  /// ValueError unless the reference is empty or was computed by `statistic` and holds 1 or
  /// `batch` maps (ShapeError then); `what` prefixes the message.
  void check(const std::string& statistic, int64_t batch, const std::string& what) const;
  /// ValueError unless empty: for statistics that normalise nothing.
  void require_empty(const std::string& what) const;

private:
  std::string statistic_;
  std::vector<std::pair<std::string, at::Tensor>> tensors_;
};

} // namespace demix
#pragma GCC visibility pop

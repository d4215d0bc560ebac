#include "support/pywph_match.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace demix::test {

namespace {
std::vector<int64_t> row(const at::Tensor& t /* (K) int64 */) {
  const at::Tensor c = t.contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}
} // namespace

double max_relative_error(const at::Tensor& ours, const at::Tensor& ref) {
  const double floor = 1e-6 * ref.abs().max().item<double>();
  return ((ours - ref).abs() / at::clamp_min(ref.abs(), floor)).max().item<double>();
}

std::vector<int64_t> pywph_order(const Coefficients& got, const at::Tensor& wph_idx,
                                 const at::Tensor& sm_idx) {
  EXPECT_EQ(got.size(), wph_idx.size(0) + sm_idx.size(0));
  std::map<std::vector<int64_t>, int64_t> row_of;
  for (int64_t k = 0; k < got.size(); ++k) {
    std::vector<int64_t> key = row(got.labels[k]);
    if (got.class_id[k].item<int64_t>() == 5)
      key = {key[0], key[2], key[5], key[8]}; // L: j p1 p2 pseudo
    if (!row_of.emplace(key, k).second) {
      ADD_FAILURE() << "duplicate label " << got.labels[k];
      return {};
    }
  }
  std::vector<int64_t> order;
  for (const at::Tensor* idx : {&wph_idx, &sm_idx})
    for (int64_t r = 0; r < idx->size(0); ++r) {
      const auto it = row_of.find(row((*idx)[r]));
      if (it == row_of.end()) {
        ADD_FAILURE() << "missing moment " << (*idx)[r];
        return {};
      }
      order.push_back(it->second);
    }
  return order;
}

} // namespace demix::test

// WPH of a complex map (I_1 + i I_2, standardised, 128 x 128) against pywph 1.1.3 with cplx=True in
// double precision: 2L angles over [0, 2 pi), pseudo S11 and pseudo scaling moments, J = 5, L = 4,
// dn = 2, for norm None/Auto and periodic/non-periodic boundaries. The oracle files and the command
// that made them: scripts/oracles/make_pywph_complex.py. Moments are matched by their labels.

#include <demix/npy.hpp>
#include <demix/wph.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <vector>

namespace {

const std::string kData = std::string(DEMIX_TEST_DATA_DIR) + "/pywph_complex/";

/// Relative error per coefficient, with a floor at 1e-6 of the largest |value| so that coefficients
/// which vanish analytically (e.g. imaginary parts of S11 at tau = 0, ~1e-17) do not count.
double max_error(const at::Tensor &ours, const at::Tensor &ref) {
  const double floor = 1e-6 * ref.abs().max().item<double>();
  return ((ours - ref).abs() / at::clamp_min(ref.abs(), floor)).max().item<double>();
}

std::vector<int64_t> row(const at::Tensor &t /* (K) int64 */) {
  const at::Tensor c = t.contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

} // namespace

TEST(WphPywphComplex, MomentsMatchEveryConfiguration) {
  const demix::Context ctx(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  const at::Tensor z = demix::read_npy(kData + "input.npy");
  ASSERT_TRUE(z.is_complex());
  const at::Tensor wph_idx = demix::read_npy(kData + "wph_indices.npy");
  const at::Tensor sm_idx = demix::read_npy(kData + "sm_indices.npy");
  for (const char *norm : {"none", "auto"}) {
    for (int pbc : {1, 0}) {
      const std::string name = std::string("norm-") + norm + "_pbc-" + std::to_string(pbc);
      SCOPED_TRACE(name);
      const demix::WphOptions o{
          .J = 5,
          .L = 4,
          .dn = 2,
          .complex_data = true,
          .norm = std::string(norm) == "auto" ? demix::WphNorm::Auto : demix::WphNorm::None,
          .boundary = pbc ? demix::WphBoundary::Periodic : demix::WphBoundary::NonPeriodic};
      const demix::WphOperator op(o, z.size(0), z.size(1), ctx);
      const demix::Coefficients got = op.forward(z);

      // Same moment list as pywph's (every reference label found once, nothing extra).
      ASSERT_EQ(got.size(), wph_idx.size(0) + sm_idx.size(0));
      std::map<std::vector<int64_t>, int64_t> row_of;
      for (int64_t k = 0; k < got.size(); ++k) {
        std::vector<int64_t> key = row(got.labels[k]);
        if (got.class_id[k].item<int64_t>() == 5)
          key = {key[0], key[2], key[5], key[8]};
        ASSERT_TRUE(row_of.emplace(key, k).second) << "duplicate label " << got.labels[k];
      }
      std::vector<int64_t> order;
      for (const at::Tensor *idx : {&wph_idx, &sm_idx})
        for (int64_t r = 0; r < idx->size(0); ++r) {
          const auto it = row_of.find(row((*idx)[r]));
          ASSERT_NE(it, row_of.end()) << "missing moment " << (*idx)[r];
          order.push_back(it->second);
        }
      const at::Tensor ours = got.values[0].index_select(0, at::tensor(order, at::kLong));
      const at::Tensor wph_val = demix::read_npy(kData + name + "_wph.npy");
      const at::Tensor sm_val = demix::read_npy(kData + name + "_sm.npy");
      ASSERT_EQ(wph_val.size(-1), wph_idx.size(0));
      ASSERT_EQ(sm_val.size(-1), sm_idx.size(0));
      const double err_wph = max_error(ours.narrow(0, 0, wph_idx.size(0)), wph_val.reshape({-1}));
      const double err_sm =
          max_error(ours.narrow(0, wph_idx.size(0), sm_idx.size(0)), sm_val.reshape({-1}));
      EXPECT_LT(err_wph, 1e-8); // double vs double: the bound for WPH
      EXPECT_LT(err_sm, 1e-8);
      std::cout << name << ": max relative error WPH " << err_wph << ", scaling " << err_sm << "\n";
    }
  }
}

// WPH of a complex map (I_1 + i I_2, standardised, 128 x 128) against pywph 1.1.3 with cplx=True in
// double precision: 2L angles over [0, 2 pi), pseudo S11 and pseudo scaling moments, J = 5, L = 4,
// dn = 2, for norm None/Auto and periodic/non-periodic boundaries. The oracle files and the command
// that made them: scripts/oracles/make_pywph_complex.py. Moments are matched by their labels.

#include <demix/io/npy.hpp>
#include <demix/stats/wph.hpp>

#include "support/pywph_match.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iostream>
#include <vector>

namespace {

const std::string kData = std::string(DEMIX_TEST_DATA_DIR) + "/pywph_complex/";

} // namespace

TEST(WphPywphComplex, MomentsMatchEveryConfiguration) {
  const demix::Context ctx(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  const at::Tensor z = demix::read_npy(kData + "input.npy");
  ASSERT_TRUE(z.is_complex());
  const at::Tensor wph_idx = demix::read_npy(kData + "wph_indices.npy");
  const at::Tensor sm_idx = demix::read_npy(kData + "sm_indices.npy");
  for (const char* norm : {"none", "auto"}) {
    for (int pbc : {1, 0}) {
      const std::string name = std::string("norm-") + norm + "_pbc-" + std::to_string(pbc);
      SCOPED_TRACE(name);
      const demix::WphOptions o{.J = 5,
                                .L = 4,
                                .dn = 2,
                                .complex_data = true,
                                .norm = std::string(norm) == "auto" ? demix::WphNorm::Auto
                                                                    : demix::WphNorm::None};
      const demix::WphOperator op(
          o, {z.size(0), z.size(1), pbc ? demix::Boundary::Periodic : demix::Boundary::NonPeriodic},
          ctx);
      const demix::Coefficients got = op.forward(z);

      // Same moment list as pywph's (every reference label found once, nothing extra).
      const std::vector<int64_t> order = demix::test::pywph_order(got, wph_idx, sm_idx);
      ASSERT_FALSE(order.empty());
      const at::Tensor ours = got.values[0].index_select(0, at::tensor(order, at::kLong));
      const at::Tensor wph_val = demix::read_npy(kData + name + "_wph.npy");
      const at::Tensor sm_val = demix::read_npy(kData + name + "_sm.npy");
      ASSERT_EQ(wph_val.size(-1), wph_idx.size(0));
      ASSERT_EQ(sm_val.size(-1), sm_idx.size(0));
      const double err_wph = demix::test::max_relative_error(ours.narrow(0, 0, wph_idx.size(0)),
                                                             wph_val.reshape({-1}));
      const double err_sm = demix::test::max_relative_error(
          ours.narrow(0, wph_idx.size(0), sm_idx.size(0)), sm_val.reshape({-1}));
      EXPECT_LT(err_wph, 1e-8); // double vs double: the bound for WPH
      EXPECT_LT(err_sm, 1e-8);
      std::cout << name << ": max relative error WPH " << err_wph << ", scaling " << err_sm << "\n";
    }
  }
}

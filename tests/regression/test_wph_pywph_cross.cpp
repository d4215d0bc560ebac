// Cross-WPH of two maps (I_1, I_2, standardised, 128 x 128) against pywph 1.1.3's apply([x, y],
// cross=True) in double precision, J = 5, L = 4, dn = 2, periodic, norm None/Auto. The oracle files
// and the command that made them: scripts/oracles/make_pywph_cross.py. Plus the identities and
// errors of forward_cross that need no oracle.

#include <demix/core/errors.hpp>
#include <demix/io/npy.hpp>
#include <demix/stats/wph.hpp>

#include "support/gradient_check.hpp"
#include "support/pywph_match.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iostream>

namespace {

const std::string kData = std::string(DEMIX_TEST_DATA_DIR) + "/pywph_cross/";

const demix::Context& cpu64() {
  static const demix::Context c(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  return c;
}

} // namespace

TEST(WphPywphCross, MomentsMatchBothNorms) {
  const at::Tensor x = demix::read_npy(kData + "x.npy"), y = demix::read_npy(kData + "y.npy");
  const at::Tensor wph_idx = demix::read_npy(kData + "wph_indices.npy");
  const at::Tensor sm_idx = demix::read_npy(kData + "sm_indices.npy");
  for (const char* norm : {"none", "auto"}) {
    SCOPED_TRACE(norm);
    const demix::WphOperator op(
        {.J = 5,
         .L = 4,
         .dn = 2,
         .norm = std::string(norm) == "auto" ? demix::WphNorm::Auto : demix::WphNorm::None},
        {x.size(0), x.size(1)}, cpu64());
    const demix::Coefficients got = op.forward_cross(x, y);
    const std::vector<int64_t> order = demix::test::pywph_order(got, wph_idx, sm_idx);
    ASSERT_FALSE(order.empty());
    const at::Tensor ours = got.values[0].index_select(0, at::tensor(order, at::kLong));
    const std::string name = std::string("norm-") + norm;
    const at::Tensor wph_val = demix::read_npy(kData + name + "_wph.npy").reshape({-1});
    const at::Tensor sm_val = demix::read_npy(kData + name + "_sm.npy").reshape({-1});
    const int64_t nw = wph_idx.size(0);
    const double err_wph = demix::test::max_relative_error(ours.narrow(0, 0, nw), wph_val);
    const double err_sm =
        demix::test::max_relative_error(ours.narrow(0, nw, sm_idx.size(0)), sm_val);
    EXPECT_LT(err_wph, 1e-8); // double vs double: the bound for WPH
    EXPECT_LT(err_sm, 1e-8);
    std::cout << "cross " << name << ": max relative error WPH " << err_wph << ", scaling "
              << err_sm << "\n";
  }
}

TEST(WphCross, OfAMapWithItselfIsItsWph) {
  const at::Tensor x = demix::read_npy(kData + "x.npy").narrow(0, 0, 64).narrow(1, 0, 64);
  for (auto norm : {demix::WphNorm::None, demix::WphNorm::Auto}) {
    const demix::WphOperator op({.J = 4, .L = 4, .dn = 1, .norm = norm}, {64, 64}, cpu64());
    const at::Tensor auto_ = op.forward(x).values, cross = op.forward_cross(x, x).values;
    // Same fields, same arithmetic on each side: float64 rounding only.
    EXPECT_LT((cross - auto_).abs().max().item<double>(), 1e-12 * auto_.abs().max().item<double>());
  }
}

TEST(WphCross, GradientMatchesFiniteDifferences) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({1, 16, 16}, at::kDouble), y = at::randn({1, 16, 16}, at::kDouble);
  const demix::WphOperator op({.J = 2, .L = 4, .dn = 1}, {16, 16}, cpu64());
  const at::Tensor w = at::randn({op.size()}, at::kDouble);
  // A real scalar of both maps' cross statistics; its gradient with respect to x and to y by
  // autograd against central differences (h = 1e-5 in float64: O(h^2) truncation, ~1e-11 rounding).
  auto of_y = [&](const at::Tensor& yy) {
    return (op.forward_cross(x, yy).values.abs().square() * w).sum();
  };
  auto of_x = [&](const at::Tensor& xx) {
    return (op.forward_cross(xx, y).values.abs().square() * w).sum();
  };
  EXPECT_LT(demix::test::max_directional_gradient_error(of_y, y, 4, 1e-5), 1e-6);
  EXPECT_LT(demix::test::max_directional_gradient_error(of_x, x, 4, 1e-5), 1e-6);
}

TEST(WphCross, RefusesWhatItCannotDo) {
  const at::Tensor x = at::randn({2, 16, 16}, at::kDouble);
  const demix::WphOperator op({.J = 2, .L = 4}, {16, 16}, cpu64());
  EXPECT_THROW(op.forward_cross(x, x.narrow(0, 0, 1)), demix::ShapeError);
  const demix::WphOperator nonperiodic({.J = 2, .L = 4}, {16, 16, demix::Boundary::NonPeriodic},
                                       cpu64());
  EXPECT_THROW(nonperiodic.forward_cross(x, x), demix::ValueError);
}

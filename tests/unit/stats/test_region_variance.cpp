// RegionVarianceOperator: each region's variance against a direct computation over its pixels,
// its gradient against the formula 2 (x_p - m_r) / n_r, complex maps, and bad label maps.

#include <demix/core/errors.hpp>
#include <demix/stats/region_variance.hpp>

#include "support/expect_error.hpp"
#include "support/statistics.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace {

using demix::test::cpu64;
using demix::test::expect_error_naming;

/// Regions of a 6 x 8 map: 0 the left half, 1 the right half but its last column, -1 there.
at::Tensor halves() {
  at::Tensor r = at::zeros({6, 8}, at::kLong);
  r.narrow(1, 4, 4).fill_(1);
  r.narrow(1, 7, 1).fill_(-1);
  return r;
}

TEST(RegionVariance, IsEachRegionsVarianceAndItsGradientTheFormula) {
  const demix::Grid2d grid{6, 8};
  const demix::RegionVarianceOperator op(halves(), grid, cpu64());
  EXPECT_EQ(op.regions(), 2);
  EXPECT_EQ(op.labels().classes, std::vector<std::string>{"VAR"});
  at::manual_seed(4);
  const at::Tensor x = (at::randn({3, 6, 8}, at::kDouble) * 2 + 5).requires_grad_(); // mean 5
  const at::Tensor v = op.forward(x).values;                                         // (3, 2)
  ASSERT_EQ(v.sizes(), (std::vector<int64_t>{3, 2}));
  const at::Tensor left = x.detach().narrow(2, 0, 4).flatten(1),
                   right = x.detach().narrow(2, 4, 3).flatten(1); // the -1 column left out
  EXPECT_TRUE(at::allclose(v.select(1, 0), left.var(1, /*unbiased=*/false), 1e-12, 0));
  EXPECT_TRUE(at::allclose(v.select(1, 1), right.var(1, false), 1e-12, 0));
  // d V_r / d x_p = 2 (x_p - m_r) / n_r in region r, 0 outside it.
  v.select(1, 1).sum().backward();
  const at::Tensor g = x.grad();
  const at::Tensor m = right.mean(1, true);
  EXPECT_TRUE(at::allclose(g.narrow(2, 4, 3).flatten(1), 2 * (right - m) / 18.0, 1e-12, 1e-15));
  EXPECT_EQ(g.narrow(2, 0, 4).abs().max().item<double>(), 0.0);
  EXPECT_EQ(g.narrow(2, 7, 1).abs().max().item<double>(), 0.0);
}

TEST(RegionVariance, ComplexMapsUseTheModulus) {
  const demix::Grid2d grid{6, 8};
  const demix::RegionVarianceOperator op(halves(), grid, cpu64());
  at::manual_seed(5);
  const at::Tensor q = at::randn({6, 8}, at::kDouble), u = at::randn({6, 8}, at::kDouble);
  const at::Tensor v = op.forward(at::complex(q, u)).values[0];
  EXPECT_TRUE(at::allclose(v, op.forward(q).values[0] + op.forward(u).values[0], 1e-12, 0));
}

TEST(RegionVariance, BadLabelMapsAreRefused) {
  const demix::Grid2d grid{6, 8};
  EXPECT_THROW(demix::RegionVarianceOperator(at::zeros({6, 7}, at::kLong), grid, cpu64()),
               demix::ShapeError);
  expect_error_naming<demix::ValueError>(
      [&] {
        demix::RegionVarianceOperator(at::full({6, 8}, -1, at::kLong), grid, cpu64());
      },
      {"no pixel"});
  at::Tensor lonely = halves();
  lonely[0][0] = 2; // region 2 has one pixel
  expect_error_naming<demix::ValueError>(
      [&] { demix::RegionVarianceOperator(lonely, grid, cpu64()); }, {"region 2", "1 pixel"});
  expect_error_naming<demix::ValueError>(
      [&] { demix::RegionVarianceOperator(halves().to(at::kDouble) + 0.5, grid, cpu64()); },
      {"integers"});
  expect_error_naming<demix::ValueError>(
      [&] {
        demix::RegionVarianceOperator(at::ones({6, 8}, at::kBool), grid, cpu64());
      },
      {"boolean"});
}

} // namespace

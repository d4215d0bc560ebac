// MaskedStatistic: each mask's block is the inner statistic of the weighted map (with its own
// reference), masked pixels get no gradient, labels and keywords, bad masks.

#include <demix/core/errors.hpp>
#include <demix/stats/masked.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/stats/registry.hpp>

#include "support/expect_error.hpp"
#include "support/statistics.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

namespace {

using demix::test::cpu64;
using demix::test::expect_error_naming;

std::shared_ptr<const demix::Statistic> wph(const demix::Grid2d& grid) {
  return demix::make_statistic(
      demix::WphOptions{.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto}, grid, cpu64());
}

/// Two masks of a 32 x 32 map: the left half with an apodised edge, a disc (radius 8 at column
/// 20, row 12).
at::Tensor two_masks() {
  const at::Tensor col = at::arange(32, at::kDouble).view({1, 32}).expand({32, 32});
  const at::Tensor row = at::arange(32, at::kDouble).view({32, 1}).expand({32, 32});
  // 1 up to column 12, 0 from column 18, a cos^2 taper between.
  const at::Tensor left =
      at::cos(M_PI / 2 * ((col - 12) / 6.0).clamp(0, 1)).square() * (col < 18); // (cos: 1e-33)
  const at::Tensor disc = ((col - 20).square() + (row - 12).square() <= 64).to(at::kDouble);
  return at::stack({left, disc});
}

TEST(MaskedStatistic, EachBlockIsTheStatisticOfTheWeightedMap) {
  const demix::Grid2d grid{32, 32};
  const auto inner = wph(grid);
  const at::Tensor masks = two_masks();
  const demix::MaskedStatistic op(inner, masks);
  EXPECT_STREQ(op.name(), "wph");
  EXPECT_EQ(op.masks(), 2);
  const int64_t K = inner->size();
  ASSERT_EQ(op.size(), 2 * K);
  EXPECT_EQ(op.labels().classes[0], "m0." + inner->labels().classes[0]);
  at::manual_seed(1);
  const at::Tensor x = at::randn({3, 32, 32}, at::kDouble);
  const at::Tensor ref_maps = at::randn({1, 32, 32}, at::kDouble);
  // Each map its own reference, then a reference map's: both as the inner statistic computes
  // them on the weighted maps.
  const at::Tensor own = op.forward(x).values;
  const demix::Reference ref = op.reference(ref_maps);
  const at::Tensor with_ref = op.forward(x, ref).values;
  for (int64_t r = 0; r < 2; ++r) {
    EXPECT_TRUE(
        at::allclose(own.narrow(1, r * K, K), inner->forward(x * masks[r]).values, 1e-12, 1e-12))
        << r;
    const demix::Reference inner_ref = inner->reference(ref_maps * masks[r]);
    EXPECT_TRUE(at::allclose(with_ref.narrow(1, r * K, K),
                             inner->forward(x * masks[r], inner_ref).values, 1e-12, 1e-12))
        << r;
  }
  EXPECT_FALSE(at::allclose(with_ref.narrow(1, 0, K), with_ref.narrow(1, K, K)));
  // A mask of ones: the inner statistic itself.
  const demix::MaskedStatistic whole(inner, at::ones({32, 32}, at::kDouble));
  EXPECT_TRUE(at::allclose(whole.forward(x).values, inner->forward(x).values, 1e-12, 1e-12));
  bool has_nmasks = false;
  for (const auto& k : op.keywords()) has_nmasks |= k.fits == "NMASKS";
  EXPECT_TRUE(has_nmasks);
}

TEST(MaskedStatistic, MaskedPixelsGetNoGradient) {
  const demix::Grid2d grid{32, 32};
  const at::Tensor masks = two_masks();
  // Pixels outside both masks (the right half's far side beyond the disc) are excluded.
  const at::Tensor outside = (masks.sum(0) == 0);
  ASSERT_GT(outside.sum().item<int64_t>(), 100);
  const std::shared_ptr<const demix::Statistic> ps =
      demix::make_statistic(demix::PowerSpectrumOptions{}, grid, cpu64());
  for (const auto& inner : {wph(grid), ps}) {
    const demix::MaskedStatistic op(inner, masks);
    at::manual_seed(2);
    const at::Tensor x = at::randn({2, 32, 32}, at::kDouble).requires_grad_();
    op.forward(x).values.abs().square().sum().backward();
    const at::Tensor g = x.grad();
    EXPECT_EQ(g.masked_select(outside.expand_as(g)).abs().max().item<double>(), 0.0)
        << inner->name();
    EXPECT_GT(g.abs().max().item<double>(), 0.0) << inner->name();
  }
}

TEST(MaskedStatistic, BadMasksAreRefused) {
  const demix::Grid2d grid{32, 32};
  const auto inner = wph(grid);
  expect_error_naming<demix::ValueError>(
      [&] {
        demix::MaskedStatistic(inner, at::full({32, 32}, 1.5, at::kDouble));
      },
      {"[0, 1]", "1.5"});
  expect_error_naming<demix::ValueError>(
      [&] {
        demix::MaskedStatistic(inner, at::zeros({2, 32, 32}, at::kDouble));
      },
      {"mask 0", "zero everywhere"});
  expect_error_naming<demix::ShapeError>(
      [&] {
        demix::MaskedStatistic(inner, at::ones({32, 16}, at::kDouble));
      },
      {"(R, 32, 32)"});
  expect_error_naming<demix::ValueError>([&] { demix::MaskedStatistic(nullptr, two_masks()); },
                                         {"no statistic"});
}

} // namespace

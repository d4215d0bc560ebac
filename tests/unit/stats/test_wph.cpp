// WphOperator's own behaviour: the model's size, options checks, references and slicing of
// batches, per-map losses. (Its numbers against pywph: tests/regression/test_wph_pywph*.cpp; its
// invariances, gradients and devices: tests/properties/.)

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/stats/wph.hpp>

#include "support/statistics.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using demix::test::cpu64;
using demix::test::rel_diff;
const auto maps = demix::test::positive_maps;

int64_t count(const demix::Coefficients& c, const std::string& cls) {
  return c.mask(cls).sum().item<int64_t>();
}

TEST(Wph, ModelSizesFollowTheDefaultModel) {
  // J = 3, L = 4, dn = 0 (no shifts), real maps: S11 and S00 one per (j, t): 12 each; S01 12;
  // C01: j1 < j2 (3 pairs) x t1 (4) x t2 within pi/2 (L/2 * 2 = 4 values): 48; Cphase: 3 pairs
  // x 4 angles: 12; L (scaling moments): scales -1 .. J/4 = 0 (2) x (p1, p2) pairs (3): 6.
  const demix::WphOperator op({.J = 3, .L = 4}, {32, 32}, cpu64());
  const demix::Coefficients& l = op.labels();
  EXPECT_EQ(count(l, "S11"), 12);
  EXPECT_EQ(count(l, "S00"), 12);
  EXPECT_EQ(count(l, "S01"), 12);
  EXPECT_EQ(count(l, "C01"), 48);
  EXPECT_EQ(count(l, "Cphase"), 12);
  EXPECT_EQ(count(l, "L"), 6);
  EXPECT_EQ(op.size(), 102);
  // dn = 1 adds, for S11 and S00, A = 4 shifts of radius 2 per (j, t).
  const demix::WphOperator shifted({.J = 3, .L = 4, .dn = 1}, {32, 32}, cpu64());
  EXPECT_EQ(count(shifted.labels(), "S11"), 12 * 5);
}

TEST(Wph, RejectsOptionsOutOfRangeNamingTheValue) {
  const auto message = [](const auto& make) {
    try {
      make();
    } catch (const demix::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] {
              demix::WphOperator({.J = 0}, {32, 32}, cpu64());
            }).find("J must be >= 1"),
            std::string::npos);
  EXPECT_NE(message([] {
              demix::WphOperator({.J = 2, .A = 0}, {32, 32}, cpu64());
            }).find("got 0"),
            std::string::npos);
  EXPECT_THROW(demix::WphOperator({.J = 2}, {4, 32}, cpu64()), demix::ShapeError);
  // A border cut of 2^J * 4 = 16 pixels per side leaves nothing of a 16-pixel side.
  EXPECT_NE(message([] {
              demix::WphOperator({.J = 2, .cut_param = 4.0}, {16, 16, demix::Boundary::NonPeriodic},
                                 cpu64());
            }).find("cut"),
            std::string::npos);
  const demix::WphOperator real({.J = 2}, {16, 16}, cpu64());
  EXPECT_THROW(real.forward(at::complex(maps(1, 16, 1), maps(1, 16, 2))), demix::ValueError);
  EXPECT_THROW(real.forward(maps(1, 16, 1).narrow(2, 0, 15)), demix::ShapeError);
}

TEST(Wph, ReferenceHoldsEachFieldsStatistics) {
  const demix::WphOperator op({.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto}, {32, 32},
                              cpu64());
  const demix::Reference ref = op.reference(maps(2, 32, 3));
  EXPECT_EQ(ref.statistic(), "wph");
  EXPECT_EQ(ref.maps(), 2);
  const at::Tensor mean = ref.get("field_mean"), std = ref.get("field_std");
  EXPECT_EQ(mean.sizes(), std.sizes());
  EXPECT_TRUE((at::real(std) > 0).all().item<bool>());
  EXPECT_EQ(ref.get("scaling").sizes().back(), 2);
  // norm None normalises by nothing a reference could hold.
  const demix::WphOperator none({.J = 3, .L = 4, .dn = 1}, {32, 32}, cpu64());
  EXPECT_TRUE(none.reference(maps(1, 32, 3)).empty());
  EXPECT_TRUE(at::equal(none.forward(maps(2, 32, 4), ref).values,
                        none.forward(maps(2, 32, 4)).values)); // ignored under None
}

TEST(Wph, SlicedBatchesGiveTheWholeBatchsResults) {
  // 64 KB forces one map per slice and many chunks; a reference per map must follow the slices.
  const demix::WphOptions base{.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto};
  demix::WphOptions small = base;
  small.memory_bytes = 1 << 16;
  for (auto boundary : {demix::Boundary::Periodic, demix::Boundary::NonPeriodic}) {
    const demix::WphOperator whole(base, {32, 32, boundary}, cpu64());
    const demix::WphOperator sliced(small, {32, 32, boundary}, cpu64());
    const demix::Reference ref = whole.reference(maps(3, 32, 5));
    const at::Tensor x = maps(3, 32, 6);
    // Same arithmetic, other groupings: float64 rounding only.
    EXPECT_LT(rel_diff(sliced.forward(x, ref).values, whole.forward(x, ref).values), 1e-12);
    // Map b of the batch with map b of the reference: the same as that map alone.
    const at::Tensor one = whole.forward(x.narrow(0, 1, 1), ref.narrow(1, 1)).values;
    EXPECT_LT(rel_diff(whole.forward(x, ref).values.narrow(0, 1, 1), one), 1e-12);
  }
}

// The progress callback hears every chunk of a periodic map's moments, in order, to done ==
// total, and changes nothing in the values (one map: one slice of the batch).
TEST(Wph, ProgressHearsEveryChunk) {
  demix::WphOptions o{.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto};
  o.memory_bytes = 1 << 16; // many chunks
  const demix::WphOperator plain(o, {32, 32}, cpu64());
  std::vector<std::pair<int64_t, int64_t>> heard;
  o.progress = [&](int64_t done, int64_t total) { heard.emplace_back(done, total); };
  const demix::WphOperator told(o, {32, 32}, cpu64());
  const at::Tensor x = maps(1, 32, 7);
  EXPECT_TRUE(at::equal(told.forward(x).values, plain.forward(x).values));
  ASSERT_GT(heard.size(), 3u);
  for (std::size_t i = 0; i < heard.size(); ++i) {
    EXPECT_EQ(heard[i].first, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(heard[i].second, heard.back().second);
  }
  EXPECT_EQ(heard.back().first, heard.back().second);
}

TEST(Wph, LossIsPerMapAndTargetsMayBePerMap) {
  const demix::WphOperator op(
      {.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto, .memory_bytes = 1 << 16}, {32, 32},
      cpu64());
  const demix::Reference ref = op.reference(maps(1, 32, 7));
  const at::Tensor x = maps(3, 32, 8);
  const at::Tensor targets = op.forward(maps(3, 32, 9), ref).values; // (3, K): one per map
  const demix::LossResult all = op.loss_and_grad(x, demix::SquaredDistance(targets), ref);
  for (int64_t b = 0; b < 3; ++b) {
    const demix::LossResult one =
        op.loss_and_grad(x.narrow(0, b, 1), demix::SquaredDistance(targets[b]), ref);
    // Each map's loss and gradient depend on that map alone: float64 rounding only.
    EXPECT_LT(rel_diff(all.loss.narrow(0, b, 1), one.loss), 1e-12) << b;
    EXPECT_LT(rel_diff(all.grad.narrow(0, b, 1), one.grad), 1e-10) << b;
  }
}

TEST(Wph, KeywordsDescribeTheOptions) {
  const demix::WphOperator op({.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto},
                              {32, 32, demix::Boundary::NonPeriodic}, cpu64());
  std::vector<std::string> fits;
  for (const auto& k : op.keywords()) fits.push_back(k.fits);
  EXPECT_EQ(fits, (std::vector<std::string>{"J", "L", "DN", "NORM", "BOUNDARY"}));
  EXPECT_EQ(std::get<std::string>(op.keywords()[3].value), "auto");
  EXPECT_EQ(std::get<std::string>(op.keywords()[4].value), "nonperiodic");
  EXPECT_FALSE(op.supports_cross()); // cross statistics: periodic maps only
}

} // namespace

// plot_series: points land on the pixels the documented mapping gives, separators are drawn
// between points, the background is white and bad arguments are refused.

#include <demix/core/errors.hpp>
#include <demix/viz/plot.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace {

demix::Rgb pixel(const at::Tensor& rgb, int64_t row, int64_t col) {
  const at::Tensor p = rgb[row][col];
  return {p[0].item<uint8_t>(), p[1].item<uint8_t>(), p[2].item<uint8_t>()};
}

bool same(demix::Rgb a, demix::Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

constexpr demix::Rgb kWhite{255, 255, 255};

} // namespace

TEST(Plot, PointsLandWhereExpected) {
  // 5 points over 105 x 45 pixels with margin 4: columns 4 + 24 i, rows 4 + (2 - y) * 36 / 2.
  const int W = 105, H = 45, m = demix::kPlotMargin;
  ASSERT_EQ(m, 4);
  const at::Tensor y = at::tensor({0.0, 1.0, 2.0, 1.0, 0.0}, at::kDouble);
  const demix::Rgb red{200, 0, 0};
  const at::Tensor rgb = demix::plot_series({y}, {red}, {}, W, H);
  ASSERT_EQ(rgb.sizes(), (std::vector<int64_t>{H, W, 3}));
  EXPECT_EQ(rgb.scalar_type(), at::kByte);
  const int64_t cols[] = {4, 28, 52, 76, 100}, rows[] = {40, 22, 4, 22, 40};
  int64_t coloured = 0;
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("point " + std::to_string(i));
    // The 3 x 3 marker centred on (row, col).
    for (int dr = -1; dr <= 1; ++dr)
      for (int dc = -1; dc <= 1; ++dc)
        EXPECT_TRUE(same(pixel(rgb, rows[i] + dr, cols[i] + dc), red));
    EXPECT_TRUE(same(pixel(rgb, rows[i] + 2, cols[i]), kWhite));
    EXPECT_TRUE(same(pixel(rgb, rows[i], cols[i] + 2), kWhite));
    coloured += 9;
  }
  // Nothing else is drawn: the rest is white.
  const int64_t non_white = (rgb != 255).any(2).sum().item<int64_t>();
  EXPECT_EQ(non_white, coloured);
}

TEST(Plot, SeparatorsAndSeriesOrder) {
  const int W = 105, H = 45;
  const at::Tensor a = at::tensor({1.0, 1.0, 1.0, 1.0, 1.0}, at::kDouble);
  const at::Tensor b = at::tensor({1.0, 3.0, 1.0, 3.0, 1.0}, at::kDouble);
  const demix::Rgb ca{31, 119, 180}, cb{255, 127, 14};
  const at::Tensor rgb = demix::plot_series({a, b}, {ca, cb}, {2}, W, H);
  // Separator between points 1 and 2: column 4 + round(1.5 * 24) = 40, full height, grey.
  for (int64_t row : {0, 10, 30, 43})
    EXPECT_TRUE(same(pixel(rgb, row, 40), demix::kSeparatorColour)) << "row " << row;
  EXPECT_TRUE(same(pixel(rgb, 10, 39), kWhite));
  EXPECT_TRUE(same(pixel(rgb, 10, 41), kWhite));
  // Range [1, 3]: y = 1 at row 40, y = 3 at row 4. Point 0 of b covers point 0 of a.
  EXPECT_TRUE(same(pixel(rgb, 40, 4), cb));
  EXPECT_TRUE(same(pixel(rgb, 40, 28), ca)); // a at index 1 (b is at the top there)
  EXPECT_TRUE(same(pixel(rgb, 4, 28), cb));
}

TEST(Plot, NonFiniteSkippedAndConstantSeries) {
  const double inf = std::numeric_limits<double>::infinity();
  const at::Tensor y = at::tensor({2.0, -inf, 2.0}, at::kDouble); // log10(0) = -inf
  const demix::Rgb c{0, 0, 0};
  const at::Tensor rgb = demix::plot_series({y}, {c}, {}, 32, 20);
  // Constant finite values: range 1.5 .. 2.5, so y = 2 sits mid-height (row 4 + 5.5 -> 10).
  const int64_t row = 4 + std::llround(0.5 * 11);
  EXPECT_TRUE(same(pixel(rgb, row, 4), c));
  EXPECT_TRUE(same(pixel(rgb, row, 27), c));
  EXPECT_TRUE(same(pixel(rgb, row, 16), kWhite)); // the -inf point is not drawn
}

TEST(Plot, RejectsBadArguments) {
  const at::Tensor y = at::ones({4}, at::kDouble);
  const demix::Rgb c{0, 0, 0};
  EXPECT_THROW(demix::plot_series({y}, {c}, {}, 8, 100), demix::ValueError);
  EXPECT_THROW(demix::plot_series({y}, {}, {}, 100, 100), demix::ValueError);
  EXPECT_THROW(demix::plot_series({y}, {c}, {4}, 100, 100), demix::ValueError);
  EXPECT_THROW(demix::plot_series({at::ones({2, 2})}, {c}, {}, 100, 100), demix::ShapeError);
}

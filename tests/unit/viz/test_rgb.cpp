// Colour pictures with the Lupton et al. (2004) asinh stretch: grey stays grey, brightness grows
// with intensity, saturated pixels keep their hue, and the PNG has the image's shape.

#include <demix/core/errors.hpp>
#include <demix/viz/rgb.hpp>

#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

using demix::test::TempDir;

namespace {

int channel(const at::Tensor& rgb, int64_t row, int64_t col, int c) {
  return rgb[row][col][c].item<uint8_t>();
}

} // namespace

TEST(Rgb, GreyStaysGreyAndBrightnessIsMonotonic) {
  // Equal channels: a horizontal ramp from 0 to 10 (stretch 5: half the ramp saturates).
  const at::Tensor ramp = at::linspace(0, 10, 64, at::kDouble).repeat({3, 8, 1});
  const at::Tensor rgb = demix::render_rgb(ramp, {.stretch = 5.0});
  ASSERT_EQ(rgb.sizes(), (std::vector<int64_t>{8, 64, 3}));
  ASSERT_EQ(rgb.scalar_type(), at::kByte);
  int previous = -1;
  for (int64_t j = 0; j < 64; ++j) {
    const int r = channel(rgb, 0, j, 0);
    EXPECT_EQ(r, channel(rgb, 0, j, 1));
    EXPECT_EQ(r, channel(rgb, 0, j, 2));
    EXPECT_GE(r, previous);
    previous = r;
  }
  EXPECT_EQ(channel(rgb, 0, 0, 0), 0);
  EXPECT_EQ(channel(rgb, 0, 63, 0), 255);
  // I = stretch gives asinh(Q) / asinh(Q) = 1: full brightness; I = stretch / 2 the asinh value.
  const at::Tensor two = at::tensor({2.5, 5.0}, at::kDouble).view({1, 1, 2}).repeat({3, 1, 1});
  const at::Tensor out = demix::render_rgb(two, {.stretch = 5.0});
  EXPECT_EQ(channel(out, 0, 1, 0), 255);
  EXPECT_EQ(channel(out, 0, 0, 0), std::lround(255 * std::asinh(4.0) / std::asinh(8.0)));
}

TEST(Rgb, SaturatedPixelsKeepTheirHue) {
  // A pixel far above the stretch with channels 4 : 2 : 1 is scaled so that its largest channel
  // is 1: (255, 128, 64) after rounding, instead of white.
  at::Tensor img = at::zeros({3, 2, 2}, at::kDouble);
  img.select(1, 0).select(1, 0).copy_(at::tensor({4000.0, 2000.0, 1000.0}, at::kDouble));
  const at::Tensor rgb = demix::render_rgb(img, {.stretch = 1.0, .origin_lower = false});
  EXPECT_EQ(channel(rgb, 0, 0, 0), 255);
  EXPECT_EQ(channel(rgb, 0, 0, 1), 128);
  EXPECT_EQ(channel(rgb, 0, 0, 2), 64);
  // Negative values are black; a NaN pixel is mid-grey; origin lower flips the rows.
  img[0][1][1] = -5.0;
  img[1][1][0] = NAN;
  const at::Tensor flipped = demix::render_rgb(img, {.stretch = 1.0});
  EXPECT_EQ(channel(flipped, 1, 0, 0), 255); // row 0 drawn at the bottom
  EXPECT_EQ(channel(flipped, 0, 1, 0), 0);
  EXPECT_EQ(channel(flipped, 0, 0, 1), 128);
  EXPECT_EQ(channel(flipped, 0, 0, 0), 128);
}

TEST(Rgb, DefaultStretchAndPngFile) {
  TempDir dir;
  const at::Tensor img = at::rand({3, 20, 30}, at::kDouble) * 100;
  demix::write_rgb_png(dir.path("c.png"), img);
  std::ifstream in(dir.path("c.png"), std::ios::binary);
  unsigned char head[24];
  in.read(reinterpret_cast<char*>(head), 24);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(head) + 1, 3), "PNG");
  EXPECT_EQ((head[16] << 24) | (head[17] << 16) | (head[18] << 8) | head[19], 30); // width
  EXPECT_EQ((head[20] << 24) | (head[21] << 16) | (head[22] << 8) | head[23], 20); // height
  // The default stretch is the largest intensity: for a grey image its pixel is white, and so are
  // those within ~1.5% below it (asinh is flat there: they round to 255), ~1.5% of a uniform image.
  const at::Tensor grey = at::rand({1, 40, 50}, at::kDouble).repeat({3, 1, 1});
  const at::Tensor rgb = demix::render_rgb(grey, {.origin_lower = false});
  const int64_t brightest = grey[0].argmax().item<int64_t>();
  EXPECT_EQ(channel(rgb, brightest / 50, brightest % 50, 0), 255);
  const double saturated = (std::get<0>(rgb.max(2)) == 255).to(at::kDouble).mean().item<double>();
  EXPECT_LT(saturated, 0.03);
  EXPECT_THROW(demix::render_rgb(at::zeros({4, 3, 3})), demix::ShapeError);
  EXPECT_THROW(demix::render_rgb(img, {.q = 0}), demix::ValueError);
  EXPECT_THROW(demix::render_rgb(img, {.scales = {1, 2}}), demix::ValueError);
}

// Previews: colour-map ends, clipping, stretches, orientation, NaN colour, and the PNG read back
// with libpng (an independent decoder of what we wrote).

#include <demix/core/errors.hpp>
#include <demix/viz/preview.hpp>

#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>

#include <png.h>

using demix::test::TempDir;

namespace {

demix::Rgb pixel(const at::Tensor& rgb, int64_t row, int64_t col) {
  const auto p = rgb[row][col];
  return {p[0].item<unsigned char>(), p[1].item<unsigned char>(), p[2].item<unsigned char>()};
}

bool same(demix::Rgb a, demix::Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

} // namespace

TEST(Preview, ColormapEndsAreTheAnchors) {
  const demix::Rgb lo = demix::colormap_lookup(demix::Colormap::Viridis, 0.0);
  const demix::Rgb hi = demix::colormap_lookup(demix::Colormap::Viridis, 1.0);
  EXPECT_TRUE(same(lo, {68, 1, 84}));
  EXPECT_TRUE(same(hi, {253, 231, 37}));
  EXPECT_TRUE(same(demix::colormap_lookup(demix::Colormap::Gray, 0.5), {128, 128, 128}));
  EXPECT_TRUE(
      same(demix::colormap_lookup(demix::Colormap::Magma, 2.0), {252, 253, 191})); // clamped
}

TEST(Preview, ClipsStretchesAndOrients) {
  // A horizontal ramp 0..1 over 256 columns, 2 rows; row 0 has a NaN at column 0.
  at::Tensor map = at::linspace(0, 1, 256, at::kDouble).repeat({2, 1});
  map[0][0] = NAN;
  const demix::PreviewOptions linear{.stretch = demix::Stretch::Linear,
                                     .colormap = demix::Colormap::Gray,
                                     .origin = demix::Origin::Upper,
                                     .vmin = 0.0,
                                     .vmax = 1.0};
  const at::Tensor rgb = demix::render_preview(map, linear);
  ASSERT_EQ(rgb.sizes(), (std::vector<int64_t>{2, 256, 3}));
  EXPECT_TRUE(same(pixel(rgb, 0, 0), {128, 128, 128})); // NaN: mid-grey
  EXPECT_TRUE(same(pixel(rgb, 1, 0), {0, 0, 0}));
  EXPECT_TRUE(same(pixel(rgb, 1, 100), {100, 100, 100})); // linear: value i/255 -> grey level i
  EXPECT_TRUE(same(pixel(rgb, 1, 255), {255, 255, 255}));

  // Origin lower: row 0 of the map is the last row of the picture.
  auto lower = linear;
  lower.origin = demix::Origin::Lower;
  EXPECT_TRUE(same(pixel(demix::render_preview(map, lower), 1, 0), {128, 128, 128}));

  // Clipping: values above vmax saturate.
  auto clipped = linear;
  clipped.vmax = 0.5;
  EXPECT_TRUE(same(pixel(demix::render_preview(map, clipped), 1, 200), {255, 255, 255}));

  // Log, asinh and sqrt lift faint values above the linear level, keeping both ends fixed.
  for (auto s : {demix::Stretch::Sqrt, demix::Stretch::Log, demix::Stretch::Asinh}) {
    auto o = linear;
    o.stretch = s;
    const at::Tensor r = demix::render_preview(map, o);
    EXPECT_GT(pixel(r, 1, 30).r, 30);
    EXPECT_EQ(pixel(r, 1, 0).r, 0);
    EXPECT_EQ(pixel(r, 1, 255).r, 255);
  }
}

TEST(Preview, PercentilesIgnoreOutliers) {
  at::Tensor map = at::linspace(0, 1, 1000, at::kDouble).view({10, 100});
  map[0][0] = -1e6; // a hot pixel must not squash the range
  map[9][99] = 1e6;
  const at::Tensor rgb = demix::render_preview(map, {.stretch = demix::Stretch::Linear,
                                                     .colormap = demix::Colormap::Gray,
                                                     .origin = demix::Origin::Upper});
  EXPECT_GT(pixel(rgb, 5, 0).r, 100); // the middle of the ramp stays mid-grey
  EXPECT_LT(pixel(rgb, 5, 0).r, 155);
}

TEST(Preview, RejectsBadInput) {
  EXPECT_THROW(demix::render_preview(at::ones({2, 2, 2})), demix::ShapeError);
  EXPECT_THROW(demix::render_preview(at::ones({2, 2}, at::kComplexFloat)), demix::ShapeError);
  EXPECT_THROW(demix::render_preview(at::ones({2, 2}), {.vmin = 1.0, .vmax = 0.0}),
               demix::ValueError);
  EXPECT_THROW(
      demix::render_preview(at::ones({2, 2}), {.lower_percentile = 50, .upper_percentile = 10}),
      demix::ValueError);
  EXPECT_NO_THROW(demix::render_preview(at::ones({2, 2}))); // constant map: no division by zero
}

TEST(Preview, PngReadsBackWithLibpng) {
  TempDir dir;
  const at::Tensor map = at::randn({37, 53});
  const demix::PreviewOptions options{.origin = demix::Origin::Upper};
  demix::write_preview(dir.path("p.png"), map, options);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&image, dir.path("p.png").c_str())) << image.message;
  EXPECT_EQ(image.width, 53u);
  EXPECT_EQ(image.height, 37u);
  image.format = PNG_FORMAT_RGB;
  std::vector<unsigned char> buffer(PNG_IMAGE_SIZE(image));
  ASSERT_TRUE(png_image_finish_read(&image, nullptr, buffer.data(), 0, nullptr));
  const at::Tensor expected = demix::render_preview(map, options);
  EXPECT_EQ(std::memcmp(buffer.data(), expected.data_ptr<unsigned char>(), buffer.size()), 0);
  EXPECT_THROW(demix::write_png(dir.path("bad.png"), at::ones({3, 3})), demix::ShapeError);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"p.png"});
}

// Stamp placement: extract and render against explicit pixel loops (galaxies inside, across and
// beyond the image edges), the adjoint identity that autograd relies on, and the galaxy list.

#include <demix/core/errors.hpp>
#include <demix/deblend/stamps.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace {

/// Three blends of 13 x 17 pixels: 3 galaxies (one across the left edge, one beyond the bottom
/// right corner's pixels but with its stamp overlapping), none, and 2 galaxies.
demix::BlendGalaxies sample_galaxies() {
  return demix::BlendGalaxies::from_list({
      at::tensor({6.2, 5.5, -1.6, 3.0, 18.4, 14.49}, at::kDouble).view({3, 2}),
      at::zeros({0, 2}, at::kDouble),
      at::tensor({0.0, 0.0, 16.0, 12.0}, at::kDouble).view({2, 2}),
  });
}

constexpr int64_t kH = 13, kW = 17, kS = 7;

/// Brute-force stamp of galaxy m of blend n from frames (N, C, H, W).
at::Tensor loop_extract(const at::Tensor& frames, const demix::BlendGalaxies& g) {
  const int64_t M = g.size(), C = frames.size(1), h = kS / 2;
  at::Tensor out = at::zeros({M, C, kS, kS}, frames.options());
  const at::Tensor pix = g.pixel();
  for (int64_t m = 0; m < M; ++m) {
    const int64_t n = g.blend[m].item<int64_t>();
    const int64_t px = pix[m][0].item<int64_t>(), py = pix[m][1].item<int64_t>();
    for (int64_t i = 0; i < kS; ++i)
      for (int64_t j = 0; j < kS; ++j) {
        const int64_t r = py - h + i, c = px - h + j;
        if (r >= 0 && r < kH && c >= 0 && c < kW)
          for (int64_t b = 0; b < C; ++b) out[m][b][i][j] = frames[n][b][r][c];
      }
  }
  return out;
}

at::Tensor loop_render(const at::Tensor& stamps, const demix::BlendGalaxies& g) {
  const int64_t M = g.size(), C = stamps.size(1), h = kS / 2;
  at::Tensor out = at::zeros({g.num_blends, C, kH, kW}, stamps.options());
  const at::Tensor pix = g.pixel();
  for (int64_t m = 0; m < M; ++m) {
    const int64_t n = g.blend[m].item<int64_t>();
    const int64_t px = pix[m][0].item<int64_t>(), py = pix[m][1].item<int64_t>();
    for (int64_t i = 0; i < kS; ++i)
      for (int64_t j = 0; j < kS; ++j) {
        const int64_t r = py - h + i, c = px - h + j;
        if (r >= 0 && r < kH && c >= 0 && c < kW)
          for (int64_t b = 0; b < C; ++b) out[n][b][r][c] += stamps[m][b][i][j];
      }
  }
  return out;
}

TEST(Stamps, NearestPixelRoundsHalvesUp) {
  const demix::BlendGalaxies g = sample_galaxies();
  // floor(x + 1/2): 6.2 -> 6, 5.5 -> 6, -1.6 -> -2, 14.49 -> 14.
  const at::Tensor expected =
      at::tensor({6, 6, -2, 3, 18, 14, 0, 0, 16, 12}, at::kLong).view({5, 2});
  EXPECT_TRUE(at::equal(g.pixel(), expected));
  EXPECT_TRUE(at::equal(g.counts(), at::tensor({3, 0, 2}, at::kLong)));
  EXPECT_TRUE(at::equal(g.first(), at::tensor({0, 3, 3}, at::kLong)));
  EXPECT_TRUE(
      at::equal(g.positions_of(2), at::tensor({0.0, 0.0, 16.0, 12.0}, at::kDouble).view({2, 2})));
}

TEST(Stamps, NearestPixelIsOneRuleForNumbersAndTensors) {
  // floor(v + 1/2): half-integers go up, whatever the sign.
  const std::vector<double> v{-1.5, -0.51, -0.5, 0.0, 0.49, 0.5, 2.5, 3.4999, 14.49, 1e6 + 0.5};
  const std::vector<int64_t> expected{-1, -1, 0, 0, 0, 1, 3, 3, 14, 1000001};
  const at::Tensor t = demix::nearest_pixel(at::tensor(v, at::kDouble));
  EXPECT_EQ(t.scalar_type(), at::kLong);
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(demix::nearest_pixel(v[i]), expected[i]) << v[i];
    EXPECT_EQ(t[static_cast<int64_t>(i)].item<int64_t>(), expected[i]) << v[i];
  }
  // Any shape; BlendGalaxies::pixel is this rule.
  const demix::BlendGalaxies g = sample_galaxies();
  EXPECT_TRUE(at::equal(demix::nearest_pixel(g.xy), g.pixel()));
}

TEST(Stamps, ExtractAndRenderMatchPixelLoops) {
  const demix::BlendGalaxies g = sample_galaxies();
  const demix::StampPlacer placer(g, 2, kH, kW, kS, at::kCPU);
  at::manual_seed(3);
  const at::Tensor frames = at::randn({3, 2, kH, kW}, at::kDouble);
  const at::Tensor stamps = at::randn({5, 2, kS, kS}, at::kDouble);
  // Pure copies and sums of the same numbers: exact up to the order of additions (1e-14).
  EXPECT_TRUE(at::allclose(placer.extract(frames), loop_extract(frames, g), 0, 1e-14));
  EXPECT_TRUE(at::allclose(placer.render(stamps), loop_render(stamps, g), 0, 1e-14));
  // Blend 1 has no galaxy: nothing rendered there.
  EXPECT_EQ(placer.render(stamps)[1].abs().max().item<double>(), 0.0);
}

TEST(Stamps, RenderIsTheAdjointOfExtract) {
  const demix::BlendGalaxies g = sample_galaxies();
  const demix::StampPlacer placer(g, 3, kH, kW, kS, at::kCPU);
  at::manual_seed(4);
  const at::Tensor f = at::randn({3, 3, kH, kW}, at::kDouble);
  const at::Tensor s = at::randn({5, 3, kS, kS}, at::kDouble);
  const double lhs = (placer.render(s) * f).sum().item<double>();
  const double rhs = (s * placer.extract(f)).sum().item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-12 * std::abs(lhs)); // float64 sums of ~600 terms
  const at::Tensor fe = at::randn({5, 3, kH, kW}, at::kDouble);
  EXPECT_NEAR((placer.render_each(s) * fe).sum().item<double>(),
              (s * placer.extract_each(fe)).sum().item<double>(), 1e-10);
  // The galaxies' own frames add up to their blends' frames.
  const at::Tensor each = placer.render_each(s); // (5, 3, H, W)
  const at::Tensor summed = at::stack(
      {each.narrow(0, 0, 3).sum(0), at::zeros_like(each[0]), each.narrow(0, 3, 2).sum(0)});
  EXPECT_TRUE(at::allclose(summed, placer.render(s), 0, 1e-13));
}

TEST(Stamps, ChannelsFirstLayoutGivesTheSameStamps) {
  const demix::BlendGalaxies g = sample_galaxies();
  const demix::StampPlacer placer(g, 2, kH, kW, kS, at::kCPU);
  const at::Tensor f = at::randn({3, 2, kH, kW}, at::kDouble);
  EXPECT_TRUE(
      at::equal(placer.extract_channels_first(f.transpose(0, 1).contiguous()).transpose(0, 1),
                placer.extract(f)));
}

TEST(Stamps, GalaxyListsFromPaddedAndSelections) {
  const at::Tensor padded =
      at::tensor({1.0, 2.0, 3.0, 4.0, 9.0, 9.0, 5.0, 6.0, 9.0, 9.0, 9.0, 9.0}, at::kDouble)
          .view({2, 3, 2});
  const demix::BlendGalaxies g = demix::BlendGalaxies::from_padded(padded, at::tensor({2, 1}));
  EXPECT_EQ(g.size(), 3);
  EXPECT_TRUE(at::equal(g.blend, at::tensor({0, 0, 1}, at::kLong)));
  EXPECT_TRUE(at::equal(g.xy[2], at::tensor({5.0, 6.0}, at::kDouble)));
  const demix::BlendGalaxies s = g.select_blends(at::tensor({1}, at::kLong));
  EXPECT_EQ(s.num_blends, 1);
  EXPECT_TRUE(at::equal(s.xy, at::tensor({5.0, 6.0}, at::kDouble).view({1, 2})));
  EXPECT_TRUE(at::equal(s.blend, at::zeros({1}, at::kLong)));
  EXPECT_THROW(demix::BlendGalaxies::from_padded(padded, at::tensor({4, 1})), demix::ValueError);
  demix::BlendGalaxies bad = g;
  bad.blend = at::tensor({1, 0, 1}, at::kLong);
  EXPECT_THROW(bad.check("test"), demix::ValueError); // not sorted by blend
  bad.blend = at::tensor({0, 0, 2}, at::kLong);
  EXPECT_THROW(bad.check("test"), demix::ValueError); // blend index out of range
  EXPECT_THROW(demix::StampPlacer(g, 1, 10, 10, 4, at::kCPU), demix::ValueError); // even stamp
  const demix::StampPlacer placer(g, 1, 10, 10, 5, at::kCPU);
  EXPECT_THROW(placer.extract(at::zeros({3, 1, 10, 10})), demix::ShapeError); // 3 blends, not 2
  EXPECT_THROW(placer.extract(at::zeros({2, 2, 10, 10})), demix::ShapeError); // 2 channels, not 1
}

} // namespace

// SDSS-style deblender: children add up to their blend exactly (noise and edges included), the
// templates and amplitudes against explicit loops and least squares, and isolated symmetric
// galaxies handed back unchanged.

#include <demix/core/errors.hpp>
#include <demix/deblend/classical.hpp>
#include <demix/deblend/detection.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <numbers>
#include <vector>

namespace {

const demix::Context& cpu64() {
  static const demix::Context c(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  return c;
}

at::Tensor gaussian(int64_t H, int64_t W, double x0, double y0, double sx, double sy, double flux) {
  const at::Tensor x = at::arange(W, at::kDouble).view({1, W}) - x0;
  const at::Tensor y = at::arange(H, at::kDouble).view({H, 1}) - y0;
  return flux / (2 * std::numbers::pi * sx * sy) *
         at::exp(-0.5 * (x.square() / (sx * sx) + y.square() / (sy * sy)));
}

/// Three noisy blends of 2 bands, 30 x 34 pixels: 2 overlapping galaxies, 1 galaxy near a corner
/// (most of its mirror outside), 3 galaxies.
struct Sample {
  at::Tensor images;
  demix::BlendGalaxies galaxies;
};
Sample sample() {
  const int64_t H = 30, W = 34;
  const std::vector<std::vector<double>> pos = {{10, 12, 15, 14}, {2, 27}, {8, 8, 20, 20, 26, 10}};
  at::Tensor img = at::zeros({3, 2, H, W}, at::kDouble);
  std::vector<at::Tensor> list;
  for (int64_t n = 0; n < 3; ++n) {
    for (size_t k = 0; k < pos[n].size(); k += 2)
      for (int64_t b = 0; b < 2; ++b)
        img[n][b] +=
            gaussian(H, W, pos[n][k], pos[n][k + 1], 2.0 + k * 0.3, 1.5 + b, 5e3 * (1 + b + k));
    list.push_back(at::tensor(pos[n], at::kDouble).view({-1, 2}));
  }
  at::manual_seed(5);
  return {img + 5 * at::randn_like(img), demix::BlendGalaxies::from_list(list)};
}

TEST(ClassicalDeblend, ChildrenAddUpToTheBlend) {
  const Sample s = sample();
  for (const auto sym : {demix::SymmetryImage::PerBand, demix::SymmetryImage::BandSum})
    for (const auto share : {demix::FluxSharing::Fitted, demix::FluxSharing::Proportional}) {
      const demix::ClassicalDeblender deb({.symmetry = sym, .sharing = share}, cpu64());
      const demix::ClassicalResult r = deb.deblend(s.images, s.galaxies);
      ASSERT_EQ(r.children.sizes(), (std::vector<int64_t>{6, 2, 30, 34}));
      const at::Tensor sums = at::stack(
          {r.children.narrow(0, 0, 2).sum(0), r.children[2], r.children.narrow(0, 3, 3).sum(0)});
      // Shares of each pixel sum to 1 up to float64 rounding (a few ulp of ~1e3 e- pixels).
      EXPECT_TRUE(at::allclose(sums, s.images, 0, 1e-10));
    }
}

TEST(ClassicalDeblend, TemplatesAreTheSymmetricMinimum) {
  const Sample s = sample();
  const demix::ClassicalResult r =
      demix::ClassicalDeblender({}, cpu64()).deblend(s.images, s.galaxies);
  const at::Tensor pix = s.galaxies.pixel();
  const int64_t H = 30, W = 34;
  for (int64_t m = 0; m < 6; ++m) {
    const int64_t n = s.galaxies.blend[m].item<int64_t>();
    const int64_t px = pix[m][0].item<int64_t>(), py = pix[m][1].item<int64_t>();
    at::Tensor t = at::zeros({2, H, W}, at::kDouble);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          const int64_t mi = 2 * py - i, mj = 2 * px - j;
          if (mi < 0 || mi >= H || mj < 0 || mj >= W) continue;
          t[b][i][j] = std::max(0.0, std::min(s.images[n][b][i][j].item<double>(),
                                              s.images[n][b][mi][mj].item<double>()));
        }
    EXPECT_TRUE(at::equal(r.templates[m], t)) << "galaxy " << m; // min and max: exact
  }
  // Amplitudes: the least-squares solution of each blend and band, solved one by one.
  for (int64_t b = 0; b < 2; ++b) {
    const at::Tensor T = r.templates.narrow(0, 3, 3).select(1, b).reshape({3, -1}).t(); // (HW, 3)
    const at::Tensor y = s.images[2][b].reshape({-1, 1});
    const at::Tensor w = at::linalg_solve(T.t().mm(T), T.t().mm(y)).view({3}).clamp_min(0);
    // The solver's ridge of 1e-9 of the diagonal moves the solution by ~1e-9 relative.
    EXPECT_TRUE(at::allclose(r.amplitudes.narrow(0, 3, 3).select(1, b), w, 1e-7, 0));
  }
}

TEST(ClassicalDeblend, IsolatedSymmetricGalaxiesComeBackUnchanged) {
  // Each galaxy 30 pixels (10 widths) from the edges, so that every pixel holding its light has
  // its mirror inside the image.
  const int64_t H = 96, W = 96;
  const at::Tensor g1 = gaussian(H, W, 30, 30, 2.0, 3.0, 1e4),
                   g2 = gaussian(H, W, 66, 64, 3.0, 2.0, 2e4);
  const at::Tensor img = at::stack({g1 + g2, 2 * (g1 + g2)}).unsqueeze(0);
  const demix::BlendGalaxies g = demix::BlendGalaxies::from_list(
      {at::tensor({30.0, 30.0, 66.0, 64.0}, at::kDouble).view({2, 2})});
  const demix::ClassicalResult r = demix::ClassicalDeblender({}, cpu64()).deblend(img, g);
  // 36 pixels apart with widths <= 3: each galaxy's light at the other's position is < 1e-30 of
  // its peak, so the children are the galaxies to float64 precision relative to the peaks.
  EXPECT_TRUE(at::allclose(r.children[0], at::stack({g1, 2 * g1}), 0, 1e-10));
  EXPECT_TRUE(at::allclose(r.children[1], at::stack({g2, 2 * g2}), 0, 1e-10));
  const at::Tensor stamps = r.stamps(21);
  EXPECT_NEAR(stamps[0][0][10][10].item<double>(), g1[30][30].item<double>(), 1e-12);
}

TEST(ClassicalDeblend, FootprintKeepsNoiseOutOfTheTemplates) {
  // Two galaxies 11 pixels apart in 6 bands of noise 30-90 e-.
  const int64_t H = 60, W = 64;
  const at::Tensor sig = at::tensor({50.0, 30.0, 30.0, 40.0, 60.0, 90.0}, at::kDouble);
  at::Tensor truth = at::zeros({2, 6, H, W}, at::kDouble);
  for (int64_t b = 0; b < 6; ++b) {
    truth[0][b] = gaussian(H, W, 20, 25, 2.5, 2.5, 2e4 * (1 + 0.2 * b));
    truth[1][b] = gaussian(H, W, 30, 30, 3.0, 3.0, 3e4);
  }
  const demix::BlendGalaxies g = demix::BlendGalaxies::from_list(
      {at::tensor({20.0, 25.0, 30.0, 30.0}, at::kDouble).view({2, 2})});
  const demix::ClassicalDeblender deb({}, cpu64());
  at::manual_seed(11);
  const int reps = 10;
  at::Tensor bias_with = at::zeros({6}, at::kDouble), bias_without = at::zeros({6}, at::kDouble);
  const at::Tensor true_flux = truth[0].sum({1, 2});
  for (int k = 0; k < reps; ++k) {
    const at::Tensor img =
        (truth.sum(0) + sig.view({6, 1, 1}) * at::randn({6, H, W}, at::kDouble)).unsqueeze(0);
    const demix::ClassicalResult with = deb.deblend(img, g, sig);
    const demix::ClassicalResult without = deb.deblend(img, g);
    EXPECT_TRUE(at::allclose(with.children.sum(0), img[0], 0, 1e-9)); // still adds up
    bias_with += (with.children[0].sum({1, 2}) - true_flux) / true_flux / reps;
    bias_without += (without.children[0].sum({1, 2}) - true_flux) / true_flux / reps;
    if (k == 0) {
      // The templates vanish wherever the pixel or its mirror lies outside the footprint.
      const at::Tensor in = demix::PeakDetector({}, cpu64()).significance(img, sig)[0] > 2.0;
      at::Tensor both = at::zeros({H, W}, at::kBool);
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          const int64_t mi = 60 - i, mj = 60 - j; // mirror through galaxy 1 at (30, 30)
          if (mi >= 0 && mi < H && mj >= 0 && mj < W)
            both[i][j] = in[i][j].item<bool>() && in[mi][mj].item<bool>();
        }
      EXPECT_EQ(with.templates[1].masked_select(~both.expand({6, H, W})).abs().max().item<double>(),
                0.0);
      EXPECT_GT(with.templates[1].masked_select(both.expand({6, H, W})).min().item<double>(),
                -1e-300);
    }
  }
  std::cout << "[ measured ] classical flux bias of the fainter galaxy over " << reps
            << " noise draws, per band: with footprint " << bias_with << " without " << bias_without
            << "\n";
  // Without a footprint the noise's positive half feeds the templates over the whole image and
  // the fainter galaxy loses 15-30% of its flux to the brighter one; with it, a few percent.
  EXPECT_LT(bias_with.abs().max().item<double>(), 0.1);
  EXPECT_LT(bias_with.abs().mean().item<double>(), 0.5 * bias_without.abs().mean().item<double>());
}

TEST(ClassicalDeblend, ChunksGiveTheSameChildren) {
  const Sample s = sample();
  const demix::ClassicalResult a =
      demix::ClassicalDeblender({}, cpu64()).deblend(s.images, s.galaxies);
  const demix::ClassicalResult b =
      demix::ClassicalDeblender({.max_blends_per_batch = 1}, cpu64()).deblend(s.images, s.galaxies);
  EXPECT_TRUE(at::allclose(a.children, b.children, 0, 1e-10));
  EXPECT_THROW(demix::ClassicalDeblender({.max_blends_per_batch = 0}, cpu64()), demix::ValueError);
  EXPECT_THROW(demix::ClassicalDeblender({}, cpu64()).deblend(s.images[0], s.galaxies),
               demix::ShapeError);
}

} // namespace

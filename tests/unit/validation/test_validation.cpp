// Validation measures (include/demix/validation/compare.hpp) against exact answers: identical
// sets deviate by nothing, Minkowski functionals of discs, rings and squares, the PDF is a
// density, the reduced bispectrum equals a brute-force sum over triangles and modes, peaks are
// counted, a spectrum scaled by 4 deviates by 3, and the figure is written as a PNG of the
// documented size.

#include <demix/core/errors.hpp>
#include <demix/validation/compare.hpp>
#include <demix/viz/chart.hpp>

#include "support/expect_error.hpp"
#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

namespace {

using demix::test::expect_error_naming;

at::Tensor smooth_field(int64_t N, int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  const at::Tensor k = at::fft_fftfreq(n, 1.0, at::kDouble);
  const at::Tensor amp = (k.view({-1, 1}).square() + k.view({1, -1}).square() + 1e-2).pow(-0.75);
  return at::real(at::fft_ifft2(at::fft_fft2(at::randn({N, n, n}, at::kDouble)) * amp)).exp();
}

/// The value of curve `name` at threshold index i, targets' mean.
double target_at(const demix::ValidationReport& r, const std::string& name, size_t i) {
  return r.curve(name).target_mean.at(i);
}

TEST(Validation, IdenticalSetsDeviateByNothing) {
  const at::Tensor t = smooth_field(3, 32, 1);
  const demix::ValidationReport r = demix::validate_maps(t, t);
  EXPECT_EQ(r.ks_distance, 0.0);
  ASSERT_EQ(r.curves.size(), 8u);
  for (const demix::MeasureCurve& c : r.curves) {
    EXPECT_EQ(c.max_deviation, 0.0) << c.name;
    EXPECT_EQ(c.target_mean, c.sample_mean) << c.name;
  }
  EXPECT_DOUBLE_EQ(r.skewness.target_mean, r.skewness.sample_mean);
  // Not vacuous: another set deviates, and the exp field is skewed.
  const demix::ValidationReport other = demix::validate_maps(t, smooth_field(3, 32, 2));
  EXPECT_GT(other.ks_distance, 0.01);
  EXPECT_GT(r.skewness.target_mean, 0.5);
}

TEST(Validation, MinkowskiFunctionalsOfDiscsRingsAndSquares) {
  // Maps of 0 and 1 (u then takes two values); thresholds between them select the shape.
  const int64_t n = 32;
  const at::Tensor yy = at::arange(n, at::kDouble).view({-1, 1}) - 15.5;
  const at::Tensor xx = at::arange(n, at::kDouble).view({1, -1}) - 15.5;
  const at::Tensor r2 = yy.square() + xx.square();
  const at::Tensor disc = (r2 < 64).to(at::kDouble);
  const at::Tensor ring = ((r2 < 100) & (r2 >= 25)).to(at::kDouble);
  const at::Tensor two =
      ((yy.abs() < 3) & ((xx + 8).abs() < 3 | (xx - 8).abs() < 3)).to(at::kDouble);
  at::Tensor square = at::zeros({n, n}, at::kDouble);
  square.narrow(0, 4, 6).narrow(1, 10, 6).fill_(1);
  const at::Tensor maps = at::stack({disc, ring, two, square});
  const double pixels = n * n;
  for (int64_t m = 0; m < 4; ++m) {
    // One target map, its u = (x - mu) / sigma; thresholds so that one lies between 0 and 1.
    const at::Tensor x = maps[m].unsqueeze(0);
    const double mu = x.mean().item<double>(), sigma = x.std(false).item<double>();
    const double mid = (0.5 - mu) / sigma;
    demix::ValidationOptions o;
    o.threshold_min = mid - 0.01, o.threshold_max = mid + 0.01, o.thresholds = 2;
    const demix::ValidationReport r = demix::validate_maps(x, x, o);
    EXPECT_NEAR(target_at(r, "minkowski_v0", 0), x.sum().item<double>() / pixels, 1e-12);
    const double euler[4] = {1, 0, 2, 1};
    EXPECT_NEAR(target_at(r, "minkowski_v2", 0) * pixels, euler[m], 1e-9) << "map " << m;
  }
  // The square's boundary: 4 x 6 edges of unit length.
  const at::Tensor x = square.unsqueeze(0);
  const double mid = (0.5 - x.mean().item<double>()) / x.std(false).item<double>();
  demix::ValidationOptions o;
  o.threshold_min = mid - 0.01, o.threshold_max = mid + 0.01, o.thresholds = 2;
  EXPECT_NEAR(target_at(demix::validate_maps(x, x, o), "minkowski_v1", 0) * pixels, 24, 1e-9);
}

TEST(Validation, PdfIsADensityAndPeaksAreCounted) {
  const at::Tensor t = smooth_field(2, 32, 3);
  const demix::ValidationReport r = demix::validate_maps(t, t);
  const demix::MeasureCurve& pdf = r.curve("pdf");
  const double width = pdf.x[1] - pdf.x[0];
  double total = 0;
  for (const double d : pdf.target_mean) total += d * width;
  EXPECT_NEAR(total, 1.0, 1e-9);
  // Three isolated spikes on a flat map (plus a tilt so that the flat part has no peak ties).
  at::Tensor spikes = at::zeros({1, 32, 32}, at::kDouble);
  spikes[0][5][5] = 10, spikes[0][20][8] = 10, spikes[0][12][25] = 10;
  demix::ValidationOptions o;
  o.peak_min = -100, o.peak_max = 100, o.peak_bins = 1;
  const demix::ValidationReport p = demix::validate_maps(spikes, spikes, o);
  EXPECT_EQ(p.curve("peak_counts").target_mean[0], 3);
}

TEST(Validation, BispectrumEqualsTheSumOverTriangles) {
  // Brute force on a 16 x 16 map: B = the mean over all (k1, k2) with k1, k2, k3 = -k1 - k2 in the
  // configuration's shells of x_hat(k1) x_hat(k2) x_hat(k3) / (H W), of u = (x - mu) / sigma,
  // reduced by the shells' mean powers: Q = B / (P1 P2 + P2 P3 + P3 P1).
  const int64_t n = 16;
  const at::Tensor x = smooth_field(1, n, 4);
  demix::ValidationOptions o;
  o.bispectrum_bins = 2; // dk = 1/8: shells centred on 1/8, 2/8, 3/8
  const demix::ValidationReport r = demix::validate_maps(x, x, o);
  const at::Tensor u = (x[0] - x.mean()) / x.std(false);
  const at::Tensor xh = at::fft_fft2(u - u.mean());
  const at::Tensor f = at::fft_fftfreq(n, 1.0, at::kDouble);
  const double dk = 1.0 / 8;
  const auto shell = [&](int64_t i, int64_t j) {
    const double k = std::hypot(f[i].item<double>(), f[j].item<double>());
    return static_cast<int>(std::floor(k / dk - 0.5)); // shell b: [(b + 0.5) dk, (b + 1.5) dk)
  };
  const auto brute = [&](int a, int b, int c) {
    c10::complex<double> sum = 0;
    int64_t count = 0;
    for (int64_t i1 = 0; i1 < n; ++i1)
      for (int64_t j1 = 0; j1 < n; ++j1) {
        if (shell(i1, j1) != a) continue;
        for (int64_t i2 = 0; i2 < n; ++i2)
          for (int64_t j2 = 0; j2 < n; ++j2) {
            const int64_t i3 = (2 * n - i1 - i2) % n, j3 = (2 * n - j1 - j2) % n;
            if (shell(i2, j2) != b || shell(i3, j3) != c) continue;
            sum += xh[i1][j1].item<c10::complex<double>>() *
                   xh[i2][j2].item<c10::complex<double>>() *
                   xh[i3][j3].item<c10::complex<double>>();
            ++count;
          }
      }
    const double B = sum.real() / count / static_cast<double>(n * n);
    const auto power = [&](int shell_index) {
      double p = 0;
      int64_t modes = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j)
          if (shell(i, j) == shell_index)
            p += std::norm(xh[i][j].item<c10::complex<double>>()), ++modes;
      return p / modes / static_cast<double>(n * n);
    };
    const double Pa = power(a), Pb = power(b), Pc = power(c);
    return B / (Pa * Pb + Pb * Pc + Pc * Pa);
  };
  const demix::MeasureCurve& eq = r.curve("bispectrum_equilateral");
  ASSERT_EQ(eq.x.size(), 2u);
  EXPECT_NEAR(eq.target_mean[0], brute(0, 0, 0), 1e-9 * std::abs(brute(0, 0, 0)) + 1e-12);
  EXPECT_NEAR(eq.target_mean[1], brute(1, 1, 1), 1e-9 * std::abs(brute(1, 1, 1)) + 1e-12);
  const demix::MeasureCurve& folded = r.curve("bispectrum_folded");
  ASSERT_EQ(folded.x.size(), 1u); // (0, 0, 1); (1, 1, 3) would need a shell beyond Nyquist
  EXPECT_NEAR(folded.target_mean[0], brute(0, 0, 1), 1e-9 * std::abs(brute(0, 0, 1)) + 1e-12);
  EXPECT_GT(std::abs(brute(0, 0, 0)), 1e-6); // a skewed field: not vacuous
}

TEST(Validation, ScaledSpectrumAndErrors) {
  const at::Tensor t = smooth_field(2, 64, 5);
  const at::Tensor s = t.mean() + 2 * (t - t.mean());
  const demix::ValidationReport r = demix::validate_maps(t, s);
  EXPECT_NEAR(r.curve("power_spectrum").max_deviation, 3.0, 1e-9);
  EXPECT_NEAR(r.std.sample_mean / r.std.target_mean, 2.0, 1e-9);
  expect_error_naming<demix::ShapeError>([&] { demix::validate_maps(t, smooth_field(1, 32, 1)); },
                                         {"differ"});
  expect_error_naming<demix::ShapeError>([&] { demix::validate_maps(t[0], t); }, {"(N, H, W)"});
  at::Tensor bad = t.clone();
  bad[0][1][1] = std::nan("");
  expect_error_naming<demix::ValueError>([&] { demix::validate_maps(bad, t); }, {"targets", "NaN"});
  expect_error_naming<demix::ValueError>([&] { demix::validate_maps(t, t, {.pdf_bins = 1}); },
                                         {"pdf_bins"});
  expect_error_naming<demix::ValueError>([&] { r.curve("nothing"); }, {"power_spectrum"});
}

TEST(Chart, FigureIsAPngOfTheDocumentedSize) {
  if (!demix::charts_available()) GTEST_SKIP() << "built without cairo";
  const demix::test::TempDir dir;
  const at::Tensor t = smooth_field(2, 32, 6);
  const demix::ValidationReport r = demix::validate_maps(t, smooth_field(3, 32, 7));
  const std::string path = dir.path("v.png");
  demix::write_validation_figure(path, r, "test");
  std::ifstream f(path, std::ios::binary);
  std::vector<unsigned char> head(24);
  f.read(reinterpret_cast<char*>(head.data()), 24);
  ASSERT_TRUE(f.good());
  EXPECT_EQ(std::string(head.begin() + 1, head.begin() + 4), "PNG");
  const auto be32 = [&](int i) {
    return (head[i] << 24) | (head[i + 1] << 16) | (head[i + 2] << 8) | head[i + 3];
  };
  EXPECT_EQ(be32(16), 4 * 440);      // 8 panels in 4 columns of 440 pixels
  EXPECT_EQ(be32(20), 2 * 330 + 34); // 2 rows of 330 and the title
  EXPECT_EQ(dir.files().size(), 1u); // no temporary left
  expect_error_naming<demix::ValueError>([&] { demix::write_chart_png(path, {}); }, {"no panel"});
  demix::ChartPanel p;
  p.series.push_back({"bad", {1, 2}, {1}, {}, {}, {}, false, false});
  expect_error_naming<demix::ValueError>([&] { demix::write_chart_png(path, {p}); }, {"bad"});
}

} // namespace

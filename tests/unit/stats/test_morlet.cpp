// Morlet filter banks: zero mean band-pass, unit-mass low-pass, one filter value against the
// formula evaluated by brute force (every pixel, every periodisation copy, a direct DFT), the
// orientation convention, kymatio's periodisation, the cache.

#include <demix/core/errors.hpp>
#include <demix/stats/morlet.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <complex>

namespace {

constexpr double kPi = 3.14159265358979323846;
using cd = std::complex<double>;

// The periodised Gabor function at pixel (r, c), straight from the formula.
cd gabor_direct(int64_t M, int64_t N, int64_t r, int64_t c, double sigma, double theta, double xi,
                double slant, demix::MorletVariant v) {
  const bool ky = v == demix::MorletVariant::Kymatio;
  // kymatio builds its rotation matrices in float32.
  const double cs = ky ? static_cast<float>(std::cos(theta)) : std::cos(theta);
  const double sn = ky ? static_cast<float>(std::sin(theta)) : std::sin(theta);
  const int lo = ky ? -2 : -1, hi = ky ? 2 : 0;
  cd sum = 0;
  for (int ex = lo; ex <= hi; ++ex)
    for (int ey = lo; ey <= hi; ++ey) {
      const double x = static_cast<double>(r + ex * M), y = static_cast<double>(c + ey * N);
      // Rotate into the filter's frame: u along theta, w across.
      const double u = cs * x + sn * y, w = -sn * x + cs * y;
      const double q = (u * u + slant * slant * w * w) / (2 * sigma * sigma);
      sum += std::exp(cd(-q, xi * (x * std::cos(theta) + y * std::sin(theta))));
    }
  return sum / (2 * (ky ? 3.1415 : kPi) * sigma * sigma / slant);
}

// Re FFT2(morlet)[kr, kc] by a direct sum over the M x N pixels.
double morlet_hat_direct(int64_t M, int64_t N, int64_t kr, int64_t kc, double sigma, double theta,
                         double xi, double slant, demix::MorletVariant v) {
  std::vector<cd> wave(M * N), env(M * N);
  cd sw = 0, se = 0;
  for (int64_t r = 0; r < M; ++r)
    for (int64_t c = 0; c < N; ++c) {
      wave[r * N + c] = gabor_direct(M, N, r, c, sigma, theta, xi, slant, v);
      env[r * N + c] = gabor_direct(M, N, r, c, sigma, theta, 0.0, slant, v);
      sw += wave[r * N + c];
      se += env[r * N + c];
    }
  const cd K = sw / se;
  cd f = 0;
  for (int64_t r = 0; r < M; ++r)
    for (int64_t c = 0; c < N; ++c)
      f += (wave[r * N + c] - K * env[r * N + c]) *
           std::exp(cd(0, -2 * kPi * (double(kr * r) / M + double(kc * c) / N)));
  return f.real();
}

} // namespace

TEST(Morlet, BandPassHasZeroMeanAndLowPassUnitMass) {
  for (auto v : {demix::MorletVariant::Kymatio, demix::MorletVariant::Cheng}) {
    const auto bank =
        demix::morlet_filter_bank({.J = 3, .L = 4, .variant = v}, 64, 48, at::kDouble, at::kCPU);
    ASSERT_EQ(bank.psi.sizes(), (std::vector<int64_t>{3, 4, 64, 48}));
    ASSERT_EQ(bank.phi.sizes(), (std::vector<int64_t>{64, 48}));
    const at::Tensor dc = bank.psi.select(-1, 0).select(-1, 0); // (J, L)
    if (v == demix::MorletVariant::Cheng) {
      EXPECT_TRUE(at::equal(dc, at::zeros_like(dc))); // forced to 0, as that code does
    } else {
      // Zero mean by construction (K gabor_0 subtracted): only float64 rounding of a sum of
      // O(1) values remains.
      EXPECT_LT((dc.abs().max() / bank.psi.abs().max()).item<double>(), 1e-14);
    }
    // phi_hat(0) = sum of a Gaussian of mass 2 pi sigma^2 over the grid / (2 pi' sigma^2), with
    // pi' = 3.1415 in kymatio; by Poisson summation the lattice sum equals the integral to
    // exp(-2 pi^2 sigma^2) ~ 1e-87 here (sigma = 3.2), so only rounding is left.
    const double expected = v == demix::MorletVariant::Kymatio ? kPi / 3.1415 : 1.0;
    EXPECT_NEAR(bank.phi[0][0].item<double>(), expected, 1e-12);
    EXPECT_NEAR(bank.phi.max().item<double>(), expected, 1e-12); // the maximum is at 0
  }
}

TEST(Morlet, FilterValuesMatchTheFormulaByBruteForce) {
  const int64_t M = 24, N = 20;
  const int J = 3, L = 4;
  for (auto v : {demix::MorletVariant::Kymatio, demix::MorletVariant::Cheng}) {
    const auto bank =
        demix::morlet_filter_bank({.J = J, .L = L, .variant = v}, M, N, at::kDouble, at::kCPU);
    const double scale = bank.psi.abs().max().item<double>();
    // A few (j, t, frequency) triples, including negative frequencies and the largest scale.
    for (auto [j, t, kr, kc] :
         {std::tuple{0, 1, 5, 3}, {1, 3, 21, 2}, {2, 0, 1, 19}, {1, 2, 3, 17}}) {
      const double direct = morlet_hat_direct(M, N, kr, kc, 0.8 * std::pow(2.0, j),
                                              (int(L - L / 2.0 - 1) - t) * kPi / L,
                                              0.75 * kPi / std::pow(2.0, j), 4.0 / L, v);
      // Two float64 evaluations of the same sums in different orders: ~1e-15 relative.
      EXPECT_NEAR(bank.psi[j][t][kr][kc].item<double>(), direct, 1e-12 * scale)
          << "variant " << static_cast<int>(v) << " j=" << j << " t=" << t;
    }
  }
}

TEST(Morlet, AngleConventionAndPeakDirection) {
  // theta_t = (int(L - L/2 - 1) - t) pi / L: for L = 8, t = 0 is 3 pi / 8 and angles decrease.
  EXPECT_DOUBLE_EQ(demix::morlet_angle(0, 8), 3 * kPi / 8);
  EXPECT_DOUBLE_EQ(demix::morlet_angle(7, 8), -4 * kPi / 8);
  EXPECT_DOUBLE_EQ(demix::morlet_angle(0, 4), kPi / 4);
  EXPECT_DOUBLE_EQ(demix::morlet_angle(0, 3), 0.0); // int(0.5) = 0
  // The Fourier peak of psi_{0,t} sits at +xi (cos theta_t, sin theta_t) in (row, column)
  // frequency, so its direction is theta_t up to the grid resolution.
  const int64_t M = 128;
  const int L = 8;
  const auto bank = demix::morlet_filter_bank({.J = 2, .L = L}, M, M, at::kDouble, at::kCPU);
  for (int t = 0; t < L; ++t) {
    const int64_t arg = bank.psi[0][t].argmax().item<int64_t>();
    int64_t kr = arg / M, kc = arg % M;
    if (kr >= M / 2) kr -= M;
    if (kc >= M / 2) kc -= M;
    const double angle = std::atan2(double(kc), double(kr));
    // 1.5 pixels at radius 3M/8 = 48 pixels is ~0.03 rad; orientations are pi/8 = 0.39 apart.
    EXPECT_NEAR(std::remainder(angle - demix::morlet_angle(t, L), 2 * kPi), 0.0, 0.04) << "t=" << t;
    EXPECT_NEAR(std::hypot(double(kr), double(kc)) * 2 * kPi / M, 0.75 * kPi, 0.1) << "t=" << t;
  }
}

TEST(Morlet, PeriodizationFollowsKymatiosDefinition) {
  const at::Tensor f = at::randn({2, 16, 24}, at::kDouble);
  for (int res : {0, 1, 2, 3}) {
    const int64_t k = int64_t{1} << res, Mr = 16 / k, Nr = 24 / k;
    const at::Tensor p = demix::periodize_filter_fft(f, res);
    ASSERT_EQ(p.sizes(), (std::vector<int64_t>{2, Mr, Nr}));
    // kymatio: zero rows [M 2^-(res+1), M 2^-(res+1) + M (1 - 2^-res)) and the same columns, then
    // crop[a, b] = sum_{i, j} masked[a + i M / 2^res, b + j N / 2^res].
    const auto kept = [&](int64_t i, int64_t size) {
      const int64_t start = size / (2 * k), len = size - size / k;
      return i < start || i >= start + len;
    };
    auto fa = f.accessor<double, 3>();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t r = 0; r < Mr; ++r)
        for (int64_t c = 0; c < Nr; ++c) {
          double s = 0;
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j) {
              const int64_t rr = r + i * Mr, cc = c + j * Nr;
              if (kept(rr, 16) && kept(cc, 24)) s += fa[b][rr][cc];
            }
          EXPECT_NEAR(p[b][r][c].item<double>(), s, 1e-13) << res;
        }
  }
  EXPECT_THROW(demix::periodize_filter_fft(at::zeros({10, 16}), 2), demix::ShapeError);
}

TEST(Morlet, LevelsAreTheMultiResolutionCopies) {
  const auto bank = demix::morlet_filter_bank({.J = 4, .L = 2}, 80, 64, at::kDouble, at::kCPU);
  ASSERT_EQ(bank.psi_levels.size(), 3u); // max(J - 1, 1)
  ASSERT_EQ(bank.phi_levels.size(), 4u); // J
  EXPECT_EQ(bank.psi_levels[2].sizes(), (std::vector<int64_t>{4, 2, 20, 16}));
  EXPECT_TRUE(at::equal(bank.psi_levels[1], demix::periodize_filter_fft(bank.psi, 1)));
  EXPECT_TRUE(at::equal(bank.phi_levels[3], demix::periodize_filter_fft(bank.phi, 3)));
}

TEST(Morlet, CachedPerShapeDtypeAndDevice) {
  const demix::MorletOptions o{.J = 2, .L = 3, .variant = demix::MorletVariant::Cheng};
  const auto a = demix::morlet_filter_bank(o, 40, 40, at::kFloat, at::kCPU);
  const auto b = demix::morlet_filter_bank(o, 40, 40, at::kFloat, at::kCPU);
  EXPECT_EQ(a.psi.scalar_type(), at::kFloat);
  EXPECT_EQ(a.psi.data_ptr(), b.psi.data_ptr()); // the same cached storage
  const auto d = demix::morlet_filter_bank(o, 40, 40, at::kDouble, at::kCPU);
  EXPECT_NE(d.psi.data_ptr(), a.psi.data_ptr());
  // The float32 bank is the float64 bank rounded.
  EXPECT_TRUE(at::equal(a.psi, d.psi.to(at::kFloat)));
  const auto other = demix::morlet_filter_bank(o, 40, 48, at::kDouble, at::kCPU);
  EXPECT_EQ(other.psi.size(-1), 48);
  EXPECT_GE(demix::morlet_cache_size(), 3u);
}

TEST(Morlet, RejectsBadArguments) {
  EXPECT_THROW(demix::morlet_filter_bank({.J = 0}, 32, 32, at::kDouble, at::kCPU),
               demix::ValueError);
  EXPECT_THROW(demix::morlet_filter_bank({.J = 2, .L = 0}, 32, 32, at::kDouble, at::kCPU),
               demix::ValueError);
  EXPECT_THROW(demix::morlet_filter_bank({.J = 6}, 32, 32, at::kDouble, at::kCPU),
               demix::ValueError);
  EXPECT_THROW(demix::morlet_filter_bank({.J = 2}, 32, 32, at::kInt, at::kCPU), demix::ValueError);
}

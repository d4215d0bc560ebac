#include <demix/core/errors.hpp>
#include <demix/stats/filters.hpp>

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <numbers>
#include <sstream>
#include <string>

namespace demix {

namespace {

using std::numbers::pi;

/// Filters are pure functions of their parameters: keep one copy per (key, dtype, device).
at::Tensor cached(const std::string& key, const c10::TensorOptions& options,
                  const std::function<at::Tensor()>& build) {
  static std::mutex mutex;
  static std::map<std::string, at::Tensor> cache;
  std::ostringstream full;
  full << key << '|' << options.dtype() << '|' << options.device();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(full.str());
  if (it == cache.end())
    it =
        cache.emplace(full.str(), build().to(options.device(), options.dtype()).contiguous()).first;
  return it->second;
}

void check_shape(int64_t height, int64_t width, int J, const char* what) {
  if (height < 2 || width < 2)
    throw ShapeError(std::string(what) + ": map size must be at least 2 x 2, got " +
                     std::to_string(height) + " x " + std::to_string(width));
  if (J < 1 || J > 30)
    throw ValueError(std::string(what) + ": J must be in [1, 30], got " + std::to_string(J));
}

/// Angular frequencies of a length-n FFT axis scaled by `factor`: factor * 2 pi * fftfreq(n).
std::vector<double> fftfreq(int64_t n, double factor) {
  std::vector<double> f(n);
  for (int64_t i = 0; i < n; ++i)
    f[i] = factor * 2 * pi * static_cast<double>(i < (n + 1) / 2 ? i : i - n) / n;
  return f;
}

} // namespace

double gaussian_sigma0() { return 1.0 / (0.496 * std::pow(2.0, -0.55) * kBumpK0); }

at::Tensor bump_steerable_bank(int64_t height, int64_t width, int J, int L, int n_angles,
                               const c10::TensorOptions& options) {
  check_shape(height, width, J, "bump-steerable wavelets");
  if (L < 1 || (n_angles != L && n_angles != 2 * L))
    throw ValueError("bump-steerable wavelets: need L >= 1 and n_angles = L or 2L, got L = " +
                     std::to_string(L) + ", n_angles = " + std::to_string(n_angles));
  std::ostringstream key;
  key << "bump|" << height << 'x' << width << "|J" << J << "|L" << L << "|A" << n_angles;
  return cached(key.str(), options, [=] {
    const int64_t M = height, N = width;
    // Normalisation c(L) = 2^(L-1) / 1.29 * (L-1)! / sqrt(L (2(L-1))!), with lgamma for large L.
    const double c =
        std::exp((L - 1) * std::log(2.0) - std::log(1.29) + std::lgamma(L) -
                 0.5 * (std::log(static_cast<double>(L)) + std::lgamma(2.0 * (L - 1) + 1)));
    // Doubled grid: frequencies in [-2 pi, 2 pi), so the part of the bump beyond pi is folded back.
    const std::vector<double> kx = fftfreq(2 * N, 2.0), ky = fftfreq(2 * M, 2.0);
    std::vector<double> mod(4 * M * N), angle(4 * M * N);
    for (int64_t r = 0; r < 2 * M; ++r)
      for (int64_t s = 0; s < 2 * N; ++s) {
        mod[r * 2 * N + s] = std::hypot(kx[s], ky[r]);
        angle[r * 2 * N + s] = std::atan2(ky[r], kx[s]);
      }
    at::Tensor bank = at::zeros({J * n_angles, M, N}, at::kDouble);
    auto out = bank.accessor<double, 3>();
    for (int j = 0; j < J; ++j) {
      const double xi = kBumpK0 / std::pow(2.0, j);
      for (int t = 0; t < n_angles; ++t) {
        const double theta = t * pi / L;
        const int f = j * n_angles + t;
        for (int64_t r = 0; r < 2 * M; ++r) {
          for (int64_t s = 0; s < 2 * N; ++s) {
            const double k = mod[r * 2 * N + s];
            if (!(k > 0.0 && k < 2 * xi)) continue;
            const double phase =
                std::fmod(std::fmod(angle[r * 2 * N + s] - theta, 2 * pi) + 2 * pi, 2 * pi);
            if (!(phase <= pi / 2 || phase >= 3 * pi / 2)) continue;
            const double d = k - xi;
            const double radial = std::exp(-d * d / (xi * xi - d * d));
            out[f][r % M][s % N] +=
                c * radial * std::pow(std::cos(phase), L - 1); // fold mod (M, N)
          }
        }
      }
    }
    return bank;
  });
}

at::Tensor gaussian_lowpass_bank(int64_t height, int64_t width, const std::vector<int>& js,
                                 const c10::TensorOptions& options) {
  check_shape(height, width, 1, "Gaussian low-pass");
  std::ostringstream key;
  key << "gauss|" << height << 'x' << width << '|';
  for (int j : js) key << j << ',';
  return cached(key.str(), options, [=] {
    const int64_t M = height, N = width;
    std::vector<at::Tensor> filters;
    for (int j : js) {
      const double sigma = gaussian_sigma0() * std::pow(2.0, j);
      // Isotropic, so the 4 x 4 periodic copies (offsets -2..1 periods) factor into two axes.
      auto axis = [&](int64_t n) {
        at::Tensor g = at::zeros({n}, at::kDouble);
        auto a = g.accessor<double, 1>();
        for (int64_t i = 0; i < n; ++i)
          for (int e = -2; e <= 1; ++e) {
            const double x = static_cast<double>(i + e * n);
            a[i] += std::exp(-x * x / (2 * sigma * sigma));
          }
        return g;
      };
      const at::Tensor space = at::outer(axis(M), axis(N)) / (2 * pi * sigma * sigma);
      filters.push_back(at::real(at::fft_fft2(space)));
    }
    return at::stack(filters);
  });
}

} // namespace demix

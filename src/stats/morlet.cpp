#include <demix/core/errors.hpp>
#include <demix/stats/morlet.hpp>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace demix {

namespace {

constexpr double kPi = 3.14159265358979323846;

// The periodisation copies of each variant, as multiples of the grid size.
std::vector<int64_t> copy_offsets(MorletVariant variant) {
  return variant == MorletVariant::Kymatio ? std::vector<int64_t>{-2, -1, 0, 1, 2}
                                           : std::vector<int64_t>{-1, 0};
}

void check_bank_arguments(const MorletOptions& o, int64_t M, int64_t N) {
  if (o.J < 1) throw ValueError("Morlet bank: J must be >= 1, got " + std::to_string(o.J));
  if (o.L < 1) throw ValueError("Morlet bank: L must be >= 1, got " + std::to_string(o.L));
  if (M < 1 || N < 1 || o.J > 30 || (int64_t{1} << o.J) > std::min(M, N))
    throw ValueError("Morlet bank: 2^J must be <= min(M, N); got J = " + std::to_string(o.J) +
                     " for a " + std::to_string(M) + " x " + std::to_string(N) + " grid");
}

// Builds the bank in float64 on the CPU.
MorletBank build_bank(const MorletOptions& o, int64_t M, int64_t N) {
  MorletBank bank;
  bank.psi = at::empty({o.J, o.L, M, N}, at::kDouble); // (J, L, M, N)
  for (int j = 0; j < o.J; ++j) {
    const double sigma = 0.8 * std::pow(2.0, j);
    const double xi = 3.0 / 4.0 * kPi / std::pow(2.0, j);
    for (int t = 0; t < o.L; ++t) {
      const at::Tensor psi = morlet_2d(M, N, sigma, morlet_angle(t, o.L), xi, 4.0 / o.L, o.variant);
      at::Tensor psi_hat = at::fft_fft2(psi); // (M, N) complex128
      if (o.variant == MorletVariant::Cheng) psi_hat.index_put_({0, 0}, 0.0);
      bank.psi[j][t].copy_(at::real(psi_hat));
    }
  }
  const at::Tensor phi = gabor_2d(M, N, 0.8 * std::pow(2.0, o.J - 1), 0.0, 0.0, 1.0, o.variant);
  bank.phi = at::real(at::fft_fft2(phi)).contiguous(); // (M, N)

  const auto divides = [&](int r) {
    return M % (int64_t{1} << r) == 0 && N % (int64_t{1} << r) == 0;
  };
  for (int r = 0; r < std::max(o.J - 1, 1) && divides(r); ++r)
    bank.psi_levels.push_back(periodize_filter_fft(bank.psi, r));
  for (int r = 0; r < o.J && divides(r); ++r)
    bank.phi_levels.push_back(periodize_filter_fft(bank.phi, r));
  return bank;
}

MorletBank convert(const MorletBank& b, c10::ScalarType dtype, c10::Device device) {
  const auto to = [&](const at::Tensor& t) { return t.to(device, dtype).contiguous(); };
  MorletBank out;
  out.psi = to(b.psi);
  out.phi = to(b.phi);
  for (const auto& t : b.psi_levels) out.psi_levels.push_back(to(t));
  for (const auto& t : b.phi_levels) out.phi_levels.push_back(to(t));
  return out;
}

using CacheKey = std::tuple<int, int, int, int64_t, int64_t, int, std::string>;

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}
std::map<CacheKey, MorletBank>& cache() {
  static std::map<CacheKey, MorletBank> c;
  return c;
}

} // namespace

double morlet_angle(int t, int L) {
  // Python's int() truncates toward zero, as static_cast does.
  return (static_cast<int>(L - L / 2.0 - 1) - t) * kPi / L;
}

at::Tensor gabor_2d(int64_t M, int64_t N, double sigma, double theta, double xi, double slant,
                    MorletVariant variant) {
  // The curvature R diag(1, slant^2) R^T / (2 sigma^2); kymatio rounds cos/sin to float32 here.
  double c = std::cos(theta), s = std::sin(theta);
  if (variant == MorletVariant::Kymatio) {
    c = static_cast<float>(c);
    s = static_cast<float>(s);
  }
  const double s2 = slant * slant, den = 2.0 * sigma * sigma;
  const double c00 = (c * c + s * s * s2) / den;
  const double c01 = (c * s - s * c * s2) / den; // = c10
  const double c11 = (s * s + c * c * s2) / den;

  // Sum over the periodisation copies, skipping those where the envelope is below
  // exp(-kNegligible) everywhere: their terms (< 1e-43 of the peak) cannot change any float64 value
  // of the filter's Fourier transform. The envelope is at least exp(-lambda_min |u|^2).
  constexpr double kNegligible = 100.0;
  const double lambda_min = 0.99 * std::min(1.0, s2) / den;
  const auto nearest = [](int64_t lo, int64_t hi) { // min |u| over the integers u in [lo, hi)
    return lo <= 0 && hi > 0 ? 0.0 : static_cast<double>(std::min(std::abs(lo), std::abs(hi - 1)));
  };
  const at::Tensor rows = at::arange(M, at::kDouble).view({M, 1});
  const at::Tensor cols = at::arange(N, at::kDouble).view({1, N});
  // exp(i xi (x cos theta + y sin theta)) factorises into a row part and a column part.
  const auto wave = [](const at::Tensor& u, double k) {
    return at::complex(at::cos(k * u), at::sin(k * u));
  };
  at::Tensor g = at::zeros({M, N}, at::kComplexDouble);
  for (int64_t ex : copy_offsets(variant)) {
    const double dx = nearest(ex * M, ex * M + M);
    for (int64_t ey : copy_offsets(variant)) {
      const double dy = nearest(ey * N, ey * N + N);
      if (lambda_min * (dx * dx + dy * dy) > kNegligible) continue;
      const at::Tensor x = rows + static_cast<double>(ex * M); // (M, 1)
      const at::Tensor y = cols + static_cast<double>(ey * N); // (1, N)
      const at::Tensor envelope = at::exp(-(c00 * x * x + (2.0 * c01) * x * y + c11 * y * y));
      g += envelope * (wave(x, xi * std::cos(theta)) * wave(y, xi * std::sin(theta)));
    }
  }
  const double pi = variant == MorletVariant::Kymatio ? 3.1415 : kPi;
  return g / (2.0 * pi * sigma * sigma / slant); // (M, N) complex128
}

at::Tensor morlet_2d(int64_t M, int64_t N, double sigma, double theta, double xi, double slant,
                     MorletVariant variant) {
  const at::Tensor wave = gabor_2d(M, N, sigma, theta, xi, slant, variant);
  const at::Tensor envelope = gabor_2d(M, N, sigma, theta, 0.0, slant, variant);
  const at::Tensor K = wave.sum() / envelope.sum(); // complex scalar
  return wave - K * envelope;
}

at::Tensor periodize_filter_fft(const at::Tensor& f, int res) {
  if (f.dim() < 2)
    throw ShapeError("periodize_filter_fft: expected (..., M, N), got a " +
                     std::to_string(f.dim()) + "-d tensor");
  const int64_t M = f.size(-2), N = f.size(-1), k = int64_t{1} << res;
  if (res < 0 || M % k || N % k)
    throw ShapeError("periodize_filter_fft: " + std::to_string(M) + " x " + std::to_string(N) +
                     " is not divisible by 2^" + std::to_string(res));
  if (res == 0) return f.contiguous();
  // Zero the middle band of frequencies, [M/2^(res+1), M/2^(res+1) + M(1 - 2^-res)), then fold.
  const int64_t Mr = M / k, Nr = N / k;
  at::Tensor mask_rows = at::ones({M}, f.options());
  at::Tensor mask_cols = at::ones({N}, f.options());
  mask_rows.narrow(0, M / (2 * k), M - Mr).zero_();
  mask_cols.narrow(0, N / (2 * k), N - Nr).zero_();
  const at::Tensor masked = f * mask_rows.view({M, 1}) * mask_cols.view({1, N});
  std::vector<int64_t> shape(f.sizes().begin(), f.sizes().end() - 2);
  const int64_t d = static_cast<int64_t>(shape.size());
  shape.insert(shape.end(), {k, Mr, k, Nr});
  return masked.reshape(shape).sum(at::IntArrayRef{d, d + 2}); // (..., Mr, Nr)
}

MorletBank morlet_filter_bank(const MorletOptions& options, int64_t M, int64_t N,
                              c10::ScalarType dtype, c10::Device device) {
  check_bank_arguments(options, M, N);
  if (dtype != at::kFloat && dtype != at::kDouble)
    throw ValueError(std::string("Morlet bank: dtype must be float32 or float64, got ") +
                     c10::toString(dtype));
  const CacheKey key{static_cast<int>(options.variant), options.J,   options.L, M, N,
                     static_cast<int>(dtype),           device.str()};
  const CacheKey key64{
      static_cast<int>(options.variant), options.J, options.L, M, N, static_cast<int>(at::kDouble),
      c10::Device(c10::kCPU).str()};
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto& c = cache();
  if (auto it = c.find(key); it != c.end()) return it->second;
  auto it64 = c.find(key64);
  if (it64 == c.end()) it64 = c.emplace(key64, build_bank(options, M, N)).first;
  if (key == key64) return it64->second;
  return c.emplace(key, convert(it64->second, dtype, device)).first->second;
}

std::size_t morlet_cache_size() {
  std::lock_guard<std::mutex> lock(cache_mutex());
  return cache().size();
}

void morlet_cache_clear() {
  std::lock_guard<std::mutex> lock(cache_mutex());
  cache().clear();
}

} // namespace demix

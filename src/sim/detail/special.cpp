#include "sim/detail/special.hpp"

#include <demix/core/errors.hpp>

#include <cmath>
#include <limits>
#include <numbers>
#include <string>

namespace demix::detail {

double regularized_gamma_p(double a, double x) {
  if (!(a > 0) || !(x >= 0))
    throw ValueError("regularized_gamma_p needs a > 0 and x >= 0, got a = " + std::to_string(a) +
                     ", x = " + std::to_string(x));
  if (x == 0) return 0.0;
  const double log_prefactor = a * std::log(x) - x - std::lgamma(a); // log(x^a e^-x / Gamma(a))
  constexpr double eps = 1e-16;
  if (x < a + 1) {
    // P = x^a e^-x / Gamma(a + 1) * sum_k x^k / ((a + 1) ... (a + k))
    double term = 1.0 / a, sum = term;
    for (int k = 1; k < 100000; ++k) {
      term *= x / (a + k);
      sum += term;
      if (std::abs(term) < std::abs(sum) * eps) break;
    }
    return std::min(1.0, sum * std::exp(log_prefactor));
  }
  // Q = x^a e^-x / Gamma(a) * 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - ...)), modified Lentz.
  constexpr double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) < eps) break;
  }
  return std::max(0.0, 1.0 - std::exp(log_prefactor) * h);
}

std::complex<double> log_gamma(std::complex<double> z) {
  // Shift to Re w >= 15 where Stirling's series with 7 terms is accurate to ~1e-17.
  // log Gamma(z) = log Gamma(z + m) - log(z (z + 1) ... (z + m - 1)): one log of the product
  // (|product| < 1e40 for the arguments used here; its branch only shifts the result by 2 pi i).
  std::complex<double> product = 1.0;
  while (z.real() < 15) {
    product *= z;
    z += 1.0;
  }
  const std::complex<double> shift = std::log(product);
  // Bernoulli numbers B_2k / (2k (2k - 1)), k = 1..7.
  static constexpr double c[] = {1.0 / 12,   -1.0 / 360,      1.0 / 1260, -1.0 / 1680,
                                 1.0 / 1188, -691.0 / 360360, 1.0 / 156};
  const std::complex<double> w2 = 1.0 / (z * z);
  std::complex<double> series = 0, p = 1.0 / z;
  for (double ck : c) {
    series += ck * p;
    p *= w2;
  }
  return (z - 0.5) * std::log(z) - z + 0.5 * std::log(2 * std::numbers::pi) + series - shift;
}

namespace {

/// int_{-inf}^{inf} M(c + iy) H(1 - c - iy) dy, with H the Mellin transform of J0(2 pi kappa r)
/// (see special.hpp). `log_mellin(s)` = log of Mellin[r g(r)](s), analytic for -1 < Re s < 1.
/// The integrand at -y is the conjugate of that at +y (g is real).
template <class LogMellin>
double mellin_barnes_transform(const LogMellin& log_mellin, double kappa) {
  if (kappa == 0) return 1.0;
  if (!(kappa > 0) || !std::isfinite(kappa))
    throw ValueError("radial Fourier transform at kappa = " + std::to_string(kappa));
  const double log_a = std::log(2 * std::numbers::pi * kappa);
  // The integrand's size is a^(c - 1) while the result is ~1 (small kappa) or ~kappa^-(2 + 1/n)
  // (large kappa): c = 1/2 and c = -1/2 keep the cancellation below ~1e-13 at both ends. Poles
  // sit at Re s = -1 and 1, at distance 1/2 from the contour: with step h the trapezoidal error
  // is ~exp(-2 pi 0.5 / h) (times the growth of the Gamma-function phases, < exp(20 x 0.5)).
  const double c = kappa < 1 ? 0.5 : -0.5;
  const double h = 0.05;
  const double log2 = std::log(2.0);
  auto term = [&](double y) {
    const std::complex<double> s(c, y);
    const std::complex<double> lt = log_mellin(s) + (s - 1.0) * log_a - s * log2 +
                                    log_gamma((1.0 - s) / 2.0) - log_gamma((1.0 + s) / 2.0);
    return std::exp(lt);
  };
  const std::complex<double> t0 = term(0);
  double sum = 0.5 * t0.real(), biggest = std::abs(t0);
  for (int j = 1; j < 200000; ++j) {
    const std::complex<double> t = term(j * h);
    sum += t.real();
    const double m = std::abs(t);
    biggest = std::max(biggest, m);
    if (j * h > 2 && m < 1e-18 * biggest) break;
  }
  return 2 * h * sum;
}

} // namespace

double sersic_unit_transform(double n, double kappa) {
  if (!(n >= 0.3 && n <= 10))
    throw ValueError("Sersic index " + std::to_string(n) + " outside [0.3, 10]");
  // Mellin[r exp(-r^(1/n))](s) = n Gamma(n (s + 1)); the flux is 2 pi n Gamma(2n).
  const double log_norm = std::log(2 * std::numbers::pi) + std::lgamma(2 * n);
  return mellin_barnes_transform(
      [&](std::complex<double> s) { return log_gamma(n * (s + 1.0)) - log_norm; }, kappa);
}

double moffat_unit_transform(double beta, double kappa) {
  if (!(beta > 1.05) || !std::isfinite(beta))
    throw ValueError("Moffat beta must be > 1.05 (finite flux), got " + std::to_string(beta));
  // Mellin[r (1 + r^2)^-beta](s) = B((s + 1) / 2, beta - (s + 1) / 2) / 2, poles at Re s <= -1
  // and Re s >= 2 beta - 1 > 1; the flux is pi / (beta - 1).
  const double log_norm = std::log(2 * std::numbers::pi) - std::log(beta - 1) + std::lgamma(beta);
  return mellin_barnes_transform(
      [&](std::complex<double> s) {
        return log_gamma((s + 1.0) / 2.0) + log_gamma(beta - (s + 1.0) / 2.0) - log_norm;
      },
      kappa);
}

} // namespace demix::detail

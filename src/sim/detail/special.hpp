#pragma once
// Special functions for the galaxy and PSF models (double precision, CPU, called a few hundred
// times when tables are built; the per-pixel work is done with tensors elsewhere).

#include <complex>

namespace demix::detail {

/// Regularised lower incomplete gamma P(a, x) = gamma(a, x) / Gamma(a), a > 0, x >= 0: the series
/// for x < a + 1, the continued fraction of Q = 1 - P otherwise (both converge to ~1e-15).
double regularized_gamma_p(double a, double x);

/// log Gamma(z) for Re z > 0, up to a multiple of 2 pi i in the imaginary part (irrelevant to
/// exp(log_gamma(z))): Stirling's series after shifting z to Re z >= 15 by the recurrence.
std::complex<double> log_gamma(std::complex<double> z);

/// The 2D Fourier transform of the unit-flux radial profile g(r) = exp(-r^(1/n)) / norm at spatial
/// frequency kappa (cycles per unit r): 2 pi int_0^inf g(r) J0(2 pi kappa r) r dr, so 1 at 0.
/// Computed as a Mellin-Barnes integral (Mellin-Parseval theorem: the transform is the integral
/// over s = c + iy of Mellin[r g](s) Mellin[J0(2 pi kappa r)](1 - s)), whose integrand is a
/// product of Gamma functions decaying like exp(-pi n |y| / 2): the trapezoidal rule on it
/// converges geometrically for every kappa, without the oscillatory Bessel integral in r.
/// Relative accuracy ~1e-12 for 1e-4 <= kappa <= 1e4; n in [0.3, 10].
double sersic_unit_transform(double n, double kappa);

/// Same for the unit-flux Moffat profile (beta - 1) / pi (1 + r^2)^-beta (alpha = 1), beta > 1.
double moffat_unit_transform(double beta, double kappa);

} // namespace demix::detail

#pragma once
// Filter banks in Fourier space (FFT order: DC at [0, 0]; rows = y = height, columns = x = width),
// as pywph builds them. Built in float64 on the CPU, then cast and moved; cached, so operators that
// share (shape, J, L, dtype, device) share one copy. (Morlet banks: morlet.hpp.)

#include <ATen/core/TensorBody.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// pywph's central wavenumber of the mother bump-steerable wavelet.
inline constexpr double kBumpK0 = 0.85 * 3.14159265358979323846;
/// pywph's width of the mother Gaussian low-pass: 1 / (0.496 * 2^-0.55 * k0) = 1.10539...
double gaussian_sigma0();

/// Bump-steerable wavelets psi_{j,t}, j = 0..J-1 (xi_j = k0 / 2^j), t = 0..n_angles-1 (theta_t =
/// t pi / L; n_angles = L for real data, 2L for complex data), with angular factor cos^(L-1) on a
/// half plane. Evaluated on a doubled frequency grid and folded back (periodised), as pywph does.
at::Tensor bump_steerable_bank(int64_t height, int64_t width, int J, int L, int n_angles,
                               const c10::TensorOptions& options); // -> (J * n_angles, H, W) real

/// Gaussian low-pass filters of width sigma0 * 2^j for each j of `js` (j may be negative), built in
/// space as a sum of 4 x 4 periodic copies, normalised to unit integral, then Fourier transformed.
at::Tensor gaussian_lowpass_bank(int64_t height, int64_t width, const std::vector<int>& js,
                                 const c10::TensorOptions& options); // -> (js.size(), H, W) real

} // namespace demix
#pragma GCC visibility pop

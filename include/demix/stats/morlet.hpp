#pragma once
// Morlet filter banks in Fourier space, as the scattering codes demix reproduces build them.
//
// A Morlet wavelet is a Gabor function minus a multiple of its Gaussian envelope so that its mean
// is exactly zero:
//
//   gabor(u)  = sum_{copies c} exp(-(u+c)^T R D R^T (u+c) / (2 sigma^2) + i xi e_theta.(u+c)) / Z
//   morlet(u) = gabor_xi(u) - K gabor_0(u),   K = sum_u gabor_xi(u) / sum_u gabor_0(u)
//   psi_hat   = Re FFT2(morlet)
//
// with u = (row, column) integer pixel positions, R the rotation by theta, D = diag(1, slant^2),
// e_theta = (cos theta, sin theta), Z = 2 pi sigma^2 / slant and the sum over periodisation
// copies c = (ex M, ey N). For scale j = 0..J-1 and orientation t = 0..L-1:
//
//   sigma = 0.8 2^j,  xi = 3 pi / (4 2^j),  slant = 4 / L,  theta_t = (int(L - L/2 - 1) - t) pi / L
//
// (int() truncates toward zero, so for L = 8, t = 0 is theta = 3pi/8 and angles decrease with t).
// The low-pass filter is gabor with xi = 0, theta = 0, slant = 1, sigma = 0.8 2^(J-1).
//
// Filter tensors are real (the spatial filters are centro-symmetric up to rounding, so the
// imaginary part of their FFT is dropped), in FFT order (frequency 0 at [0, 0]).

#include <ATen/core/TensorBody.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Which published construction of the Morlet bank to reproduce.
enum class MorletVariant {
  /// kymatio 0.3 (`scattering2d/filter_bank.py`): 5 x 5 periodisation copies (ex, ey in -2..2),
  /// Z uses the literal 3.1415 instead of pi, the curvature R D R^T is computed from cos/sin
  /// rounded to float32 (as kymatio's float32 rotation matrices do; changes outputs by < 1e-7).
  /// Built on whatever grid it is asked for (kymatio asks for the padded grid). The band-pass
  /// filters keep their computed DC value (zero up to rounding, ~1e-17).
  Kymatio,
  /// SihaoCheng/scattering_transform (`FiltersSet.generate_wavelets`, wavelets='morlet'):
  /// 2 x 2 periodisation copies (ex, ey in {-1, 0}), exact pi, computed in float64, built on the
  /// unpadded image grid, psi_hat[0, 0] forced to 0. (That code keeps its low-pass in space;
  /// here it is given in Fourier space like every other filter.)
  Cheng,
};

struct MorletOptions {
  int J = 0; ///< number of dyadic scales j = 0..J-1; >= 1, and 2^J <= min(M, N) for the bank
  int L = 8; ///< number of orientations in [0, pi); >= 1 (kymatio's filters are tuned for 8)
  MorletVariant variant = MorletVariant::Kymatio; ///< see MorletVariant
};

/// A filter bank on an M x N grid.
struct MorletBank {
  at::Tensor psi; ///< (J, L, M, N) real: band-pass psi_hat[j][t], Fourier space, FFT order
  at::Tensor phi; ///< (M, N) real: low-pass phi_hat, Fourier space, FFT order; phi_hat(0) ~ 1
  /// kymatio's multi-resolution copies: psi_levels[r] = periodize_filter_fft(psi, r), shape
  /// (J, L, M/2^r, N/2^r), for r = 0 .. R-1 where R = max(J-1, 1) (kymatio needs only j > r; the
  /// others are kept for simplicity). Levels whose 2^r does not divide M and N are absent.
  std::vector<at::Tensor> psi_levels;
  /// phi_levels[r] = periodize_filter_fft(phi, r), shape (M/2^r, N/2^r), for r = 0 .. J-1
  /// (levels whose 2^r does not divide M and N are absent).
  std::vector<at::Tensor> phi_levels;
};

/// The orientation of filter index t (radians): (int(L - L/2 - 1) - t) pi / L.
double morlet_angle(int t, int L);

/// The periodised spatial Gabor function of the given variant on an M x N grid, (M, N)
/// complex128 CPU, value at row r, column c (see the header comment for the formula).
at::Tensor gabor_2d(int64_t M, int64_t N, double sigma, double theta, double xi, double slant,
                    MorletVariant variant);
/// The periodised spatial Morlet wavelet (zero mean), (M, N) complex128 CPU.
at::Tensor morlet_2d(int64_t M, int64_t N, double sigma, double theta, double xi, double slant,
                     MorletVariant variant);

/// kymatio's `periodize_filter_fft`: keeps the frequencies |k| < M/2^(res+1) (resp. N) of a
/// Fourier filter and folds them onto the coarser (M/2^res, N/2^res) grid, so that multiplying a
/// signal subsampled by 2^res with it equals filtering then subsampling.
/// filter_hat: (..., M, N); M and N divisible by 2^res, else ShapeError. -> (..., M/2^res, N/2^res)
at::Tensor periodize_filter_fft(const at::Tensor& filter_hat, int res);

/// The bank for (options, M, N) in `dtype` (float32 or float64) on `device`. Banks are built once
/// in float64 on the CPU, then cast and moved, and cached (thread-safe) by (variant, J, L, M, N,
/// dtype, device): later calls return tensors sharing the cached storage, which must not be
/// modified in place. Throws ValueError (J < 1, L < 1, 2^J > min(M, N), non-real dtype).
MorletBank morlet_filter_bank(const MorletOptions& options, int64_t M, int64_t N,
                              c10::ScalarType dtype, c10::Device device);

/// Number of banks currently cached (for tests) and a way to drop them all.
std::size_t morlet_cache_size();
void morlet_cache_clear();

} // namespace demix
#pragma GCC visibility pop

#pragma once
// The phase harmonic [z]^p = |z| e^{i p arg z} and its backward, one element at a time, written
// once for the CPU loops and the CUDA kernels of phase_harmonic.cpp / phase_harmonic_cuda.cu.

#include <cmath>

#ifdef __CUDACC__
#define DEMIX_HD __host__ __device__ __forceinline__
#else
#define DEMIX_HD inline
#endif

namespace demix::detail::ph {

/// [z]^p for z = (x, y): (re, im). arg 0 = 0, so [0]^p = 0, as at::polar(abs, p * angle) gives.
template <class T> DEMIX_HD void harmonic(T x, T y, T p, T& re, T& im) {
#ifndef __CUDACC__
  using std::atan2, std::cos, std::hypot, std::sin;
#endif
  const T r = hypot(x, y);
  if (p == T(0)) {
    re = r, im = T(0);
    return;
  }
  const T a = p * atan2(y, x);
  re = r * cos(a), im = r * sin(a);
}

/// Gradient with respect to z of [z]^p, given the gradient g = (gx, gy) of its output (LibTorch's
/// conjugate-Wirtinger convention). With f = [z]^p and w = g conj(f): (Re w + i p Im w) / conj(z),
/// and 0 at z = 0 (as LibTorch's angle() backward gives).
template <class T> DEMIX_HD void harmonic_backward(T x, T y, T p, T gx, T gy, T& re, T& im) {
  const T r2 = x * x + y * y;
  if (r2 == T(0)) {
    re = im = T(0);
    return;
  }
  T fx, fy;
  harmonic(x, y, p, fx, fy);
  const T wx = gx * fx + gy * fy, wy = gy * fx - gx * fy; // g conj(f)
  const T nx = wx, ny = p * wy;
  // (nx + i ny) / (x - i y) = (nx + i ny)(x + i y) / r2
  re = (nx * x - ny * y) / r2, im = (nx * y + ny * x) / r2;
}

} // namespace demix::detail::ph

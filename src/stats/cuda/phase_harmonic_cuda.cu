#include "stats/cuda/cuda_launch.cuh"
#include "stats/cuda/phase_harmonic_cuda.hpp"
#include "stats/detail/phase_harmonic_math.hpp"

namespace demix::detail::cuda {

namespace {

template <class T>
__global__ void gather_kernel(const T* wt, const int64_t* idx, const T* p, T* out, int64_t B,
                              int64_t F, int64_t n, int64_t HW) {
  const int64_t total = B * n * HW;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t k = e % HW, t = e / HW, i = t % n, b = t / n;
    const int64_t src = ((b * F + idx[i]) * HW + k) * 2;
    ph::harmonic(wt[src], wt[src + 1], p[i], out[2 * e], out[2 * e + 1]);
  }
}

// One thread per (map, pixel), looping over the fields: repeated indices accumulate without
// atomics.
template <class T>
__global__ void backward_kernel(T* gwt, const T* wt, const int64_t* idx, const T* p, const T* grad,
                                int64_t B, int64_t F, int64_t n, int64_t HW) {
  const int64_t total = B * HW;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t k = e % HW, b = e / HW;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t at = ((b * F + idx[i]) * HW + k) * 2, g = ((b * n + i) * HW + k) * 2;
      T re, im;
      ph::harmonic_backward(wt[at], wt[at + 1], p[i], grad[g], grad[g + 1], re, im);
      gwt[at] += re, gwt[at + 1] += im;
    }
  }
}

} // namespace

template <class T>
const char* gather_harmonics(const T* wt, const int64_t* idx, const T* p, T* out, int64_t B,
                             int64_t F, int64_t n, int64_t HW, void* stream) {
  if (B * n * HW == 0) return nullptr;
  gather_kernel<T><<<blocks_for(B * n * HW), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      wt, idx, p, out, B, F, n, HW);
  return launch_status();
}

template <class T>
const char* add_harmonics_backward(T* gwt, const T* wt, const int64_t* idx, const T* p,
                                   const T* grad, int64_t B, int64_t F, int64_t n, int64_t HW,
                                   void* stream) {
  if (B * n * HW == 0) return nullptr;
  backward_kernel<T><<<blocks_for(B * HW), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      gwt, wt, idx, p, grad, B, F, n, HW);
  return launch_status();
}

template const char* gather_harmonics<float>(const float*, const int64_t*, const float*, float*,
                                             int64_t, int64_t, int64_t, int64_t, void*);
template const char* gather_harmonics<double>(const double*, const int64_t*, const double*, double*,
                                              int64_t, int64_t, int64_t, int64_t, void*);
template const char* add_harmonics_backward<float>(float*, const float*, const int64_t*,
                                                   const float*, const float*, int64_t, int64_t,
                                                   int64_t, int64_t, void*);
template const char* add_harmonics_backward<double>(double*, const double*, const int64_t*,
                                                    const double*, const double*, int64_t, int64_t,
                                                    int64_t, int64_t, void*);

} // namespace demix::detail::cuda

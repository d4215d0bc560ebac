#pragma once
// Launchers of the CUDA kernels of phase_harmonic.cpp (compiled by nvcc in phase_harmonic_cuda.cu,
// without ATen headers). Complex tensors are passed as interleaved (re, im) arrays. Each returns
// nullptr, or CUDA's error message.

#include <cstdint>

namespace demix::detail::cuda {

template <class T>
const char* gather_harmonics(const T* wt, const int64_t* idx, const T* p, T* out, int64_t B,
                             int64_t F, int64_t n, int64_t HW, void* stream);

template <class T>
const char* add_harmonics_backward(T* gwt, const T* wt, const int64_t* idx, const T* p,
                                   const T* grad, int64_t B, int64_t F, int64_t n, int64_t HW,
                                   void* stream);

} // namespace demix::detail::cuda

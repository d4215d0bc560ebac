#pragma once
// Launchers of the CUDA kernels of pair_product.cpp (nvcc, pair_product_cuda.cu, no ATen headers).
// Complex tensors are interleaved (re, im) arrays. Each returns nullptr, or CUDA's error message.

#include <cstdint>

namespace demix::detail::cuda {

template <class T>
const char* pair_products(const T* x, const int64_t* fa, const int64_t* fb, T* out, int64_t B,
                          int64_t F, int64_t n, int64_t K, void* stream);

template <class T>
const char* add_pair_products_backward(T* gx, const T* x, const int64_t* fa, const int64_t* fb,
                                       const T* g, int64_t B, int64_t F, int64_t n, int64_t K,
                                       void* stream);

} // namespace demix::detail::cuda

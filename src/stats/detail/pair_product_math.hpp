#pragma once
// The backward of pair products at one frequency of one map, shared by the CPU loop and the CUDA
// kernel: the products run in sequence, so one thread owns each (map, frequency) and repeated
// fields accumulate without atomics.

#ifdef __CUDACC__
#define DEMIX_PAIR_HD __host__ __device__ __forceinline__
#else
#define DEMIX_PAIR_HD inline
#endif

#include <cstdint>

namespace demix::detail::pair {

/// x, gx: map b's (F, K) interleaved arrays; g: its (n, K) gradients of the products.
template <class T>
DEMIX_PAIR_HD void backward_at(T* gx, const T* x, const int64_t* fa, const int64_t* fb, const T* g,
                               int64_t n, int64_t K, int64_t k) {
  for (int64_t c = 0; c < n; ++c) {
    const T gr = g[(c * K + k) * 2], gi = g[(c * K + k) * 2 + 1];
    const int64_t ia = (fa[c] * K + k) * 2, ib = (fb[c] * K + k) * 2;
    const T ax = x[ia], ay = x[ia + 1], bx = x[ib], by = x[ib + 1];
    gx[ia] += gr * bx - gi * by, gx[ia + 1] += gr * by + gi * bx; // g x[fb]
    gx[ib] += gr * ax + gi * ay, gx[ib + 1] += gr * ay - gi * ax; // conj(g) x[fa]
  }
}

} // namespace demix::detail::pair

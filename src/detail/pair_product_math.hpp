#pragma once
// One field's backward of pair products at one frequency, shared by the CPU loop and the CUDA kernel.

#ifdef __CUDACC__
#define DEMIX_PAIR_HD __host__ __device__ __forceinline__
#else
#define DEMIX_PAIR_HD inline
#endif

#include <cstdint>

namespace demix::detail::pair {

/// Adds to (re, im) the gradient of field s at frequency k from its products in [c0, c0 + n):
/// x and g point at map b's (F, K) and (n, K) interleaved arrays.
template <class T>
DEMIX_PAIR_HD void field_backward(const T* x, const T* g, const int64_t* code, const int64_t* other, int64_t e0,
                                  int64_t e1, int64_t c0, int64_t n, int64_t K, int64_t k, T& re, T& im) {
  for (int64_t e = e0; e < e1; ++e) {
    const int64_t c = (code[e] >> 1) - c0;
    if (c < 0 || c >= n) continue;
    const T gx = g[(c * K + k) * 2], gy = g[(c * K + k) * 2 + 1];
    const T ox = x[(other[e] * K + k) * 2], oy = x[(other[e] * K + k) * 2 + 1];
    if (code[e] & 1) {  // s = fb[c]: conj(g) x[fa]
      re += gx * ox + gy * oy, im += gx * oy - gy * ox;
    } else {  // s = fa[c]: g x[fb]
      re += gx * ox - gy * oy, im += gx * oy + gy * ox;
    }
  }
}

}  // namespace demix::detail::pair

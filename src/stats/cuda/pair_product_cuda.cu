#include "stats/cuda/cuda_launch.cuh"
#include "stats/cuda/pair_product_cuda.hpp"
#include "stats/detail/pair_product_math.hpp"

namespace demix::detail::cuda {

namespace {

template <class T>
__global__ void forward_kernel(const T* x, const int64_t* fa, const int64_t* fb, T* out, int64_t B,
                               int64_t F, int64_t n, int64_t K) {
  const int64_t total = B * n * K;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t k = e % K, t = e / K, c = t % n, b = t / n;
    const int64_t ia = ((b * F + fa[c]) * K + k) * 2, ib = ((b * F + fb[c]) * K + k) * 2;
    const T ax = x[ia], ay = x[ia + 1], bx = x[ib], by = x[ib + 1];
    out[2 * e] = ax * bx + ay * by, out[2 * e + 1] = ay * bx - ax * by;
  }
}

// One thread per (map, frequency), looping over the products: no atomics.
template <class T>
__global__ void backward_kernel(T* gx, const T* x, const int64_t* fa, const int64_t* fb, const T* g,
                                int64_t B, int64_t F, int64_t n, int64_t K) {
  const int64_t total = B * K;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t k = e % K, b = e / K;
    pair::backward_at(gx + b * F * K * 2, x + b * F * K * 2, fa, fb, g + b * n * K * 2, n, K, k);
  }
}

} // namespace

template <class T>
const char* pair_products(const T* x, const int64_t* fa, const int64_t* fb, T* out, int64_t B,
                          int64_t F, int64_t n, int64_t K, void* stream) {
  if (B * n * K == 0) return nullptr;
  forward_kernel<T><<<blocks_for(B * n * K), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, fa, fb, out, B, F, n, K);
  return launch_status();
}

template <class T>
const char* add_pair_products_backward(T* gx, const T* x, const int64_t* fa, const int64_t* fb,
                                       const T* g, int64_t B, int64_t F, int64_t n, int64_t K,
                                       void* stream) {
  if (B * K == 0 || n == 0) return nullptr;
  backward_kernel<T><<<blocks_for(B * K), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      gx, x, fa, fb, g, B, F, n, K);
  return launch_status();
}

template const char* pair_products<float>(const float*, const int64_t*, const int64_t*, float*,
                                          int64_t, int64_t, int64_t, int64_t, void*);
template const char* pair_products<double>(const double*, const int64_t*, const int64_t*, double*,
                                           int64_t, int64_t, int64_t, int64_t, void*);
template const char* add_pair_products_backward<float>(float*, const float*, const int64_t*,
                                                       const int64_t*, const float*, int64_t,
                                                       int64_t, int64_t, int64_t, void*);
template const char* add_pair_products_backward<double>(double*, const double*, const int64_t*,
                                                        const int64_t*, const double*, int64_t,
                                                        int64_t, int64_t, int64_t, void*);

} // namespace demix::detail::cuda

#include "stats/cuda/box_gather_cuda.hpp"
#include "stats/cuda/cuda_launch.cuh"
#include "stats/detail/box_gather_math.hpp"

namespace demix::detail::cuda {

namespace {

// One thread per element of (map, position among the chunk's copies); the task is found by a
// binary search over the chunk's few hundred rows, which stay in cache. Backward: several groups'
// boxes hold the same frequency of a source, hence atomic sums.
template <class T, bool kBackward>
__global__ void box_kernel(T* out, const T* in, const int64_t* table, const int64_t* indices,
                           int64_t n_tasks, int64_t first, int64_t length, int64_t B, int64_t c,
                           int64_t hw, int64_t s0) {
  const int64_t total = B * length;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = e / length, r = first + e % length;
    const int64_t* t = box::task_at(table, 0, n_tasks, r);
    const box::Element el = box::element_of(t, indices, r - t[kTaskStart], b, B, c, hw, s0);
    if constexpr (kBackward) {
      const T im = in[2 * el.box + 1];
      atomicAdd(out + 2 * el.spec, in[2 * el.box]);
      atomicAdd(out + 2 * el.spec + 1, el.conj ? -im : im);
    } else {
      out[2 * el.box] = in[2 * el.spec];
      out[2 * el.box + 1] = el.conj ? -in[2 * el.spec + 1] : in[2 * el.spec + 1];
    }
  }
}

} // namespace

template <class T>
const char* box_copies(bool backward, T* out, const T* in, const int64_t* table,
                       const int64_t* indices, int64_t n_tasks, int64_t first, int64_t length,
                       int64_t B, int64_t c, int64_t hw, int64_t s0, void* stream) {
  if (B * length == 0) return nullptr;
  const auto kernel = backward ? box_kernel<T, true> : box_kernel<T, false>;
  kernel<<<blocks_for(B * length), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      out, in, table, indices, n_tasks, first, length, B, c, hw, s0);
  return launch_status();
}

template const char* box_copies<float>(bool, float*, const float*, const int64_t*, const int64_t*,
                                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                       int64_t, void*);
template const char* box_copies<double>(bool, double*, const double*, const int64_t*,
                                        const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                        int64_t, int64_t, void*);

} // namespace demix::detail::cuda

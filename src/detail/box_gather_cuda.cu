#include "box_gather_cuda.hpp"
#include "box_gather_math.hpp"

#include "cuda_launch.cuh"

namespace demix::detail::cuda {

namespace {

// One thread per element of (map, position among the chunk's copies); the task is found by a
// binary search over the chunk's few hundred rows, which stay in cache.
template <class T>
__global__ void gather_kernel(T *boxes, const T *spec, const int64_t *table, const int64_t *indices,
                              int64_t n_tasks, int64_t first, int64_t length, int64_t B, int64_t c,
                              int64_t hw, int64_t s0) {
  const int64_t total = B * length;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = e / length, r = first + e % length;
    const int64_t *t = box::task_at(table, 0, n_tasks, r);
    const box::Element el = box::element_of(t, indices, r - t[kTaskStart], b, B, c, hw, s0);
    boxes[2 * el.box] = spec[2 * el.spec];
    boxes[2 * el.box + 1] = el.conj ? -spec[2 * el.spec + 1] : spec[2 * el.spec + 1];
  }
}

// Several groups' boxes hold the same frequency of a source: atomic sums.
template <class T>
__global__ void backward_kernel(T *gspec, const T *gboxes, const int64_t *table,
                                const int64_t *indices, int64_t n_tasks, int64_t first,
                                int64_t length, int64_t B, int64_t c, int64_t hw, int64_t s0) {
  const int64_t total = B * length;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = e / length, r = first + e % length;
    const int64_t *t = box::task_at(table, 0, n_tasks, r);
    const box::Element el = box::element_of(t, indices, r - t[kTaskStart], b, B, c, hw, s0);
    const T im = gboxes[2 * el.box + 1];
    atomicAdd(gspec + 2 * el.spec, gboxes[2 * el.box]);
    atomicAdd(gspec + 2 * el.spec + 1, el.conj ? -im : im);
  }
}

} // namespace

template <class T>
const char *gather_boxes(T *boxes, const T *spec, const int64_t *table, const int64_t *indices,
                         int64_t n_tasks, int64_t first, int64_t length, int64_t B, int64_t c,
                         int64_t hw, int64_t s0, void *stream) {
  if (B * length == 0)
    return nullptr;
  gather_kernel<T><<<blocks_for(B * length), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      boxes, spec, table, indices, n_tasks, first, length, B, c, hw, s0);
  return launch_status();
}

template <class T>
const char *add_boxes_backward(T *gspec, const T *gboxes, const int64_t *table,
                               const int64_t *indices, int64_t n_tasks, int64_t first,
                               int64_t length, int64_t B, int64_t c, int64_t hw, int64_t s0,
                               void *stream) {
  if (B * length == 0)
    return nullptr;
  backward_kernel<T><<<blocks_for(B * length), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      gspec, gboxes, table, indices, n_tasks, first, length, B, c, hw, s0);
  return launch_status();
}

template const char *gather_boxes<float>(float *, const float *, const int64_t *, const int64_t *,
                                         int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                         int64_t, void *);
template const char *gather_boxes<double>(double *, const double *, const int64_t *,
                                          const int64_t *, int64_t, int64_t, int64_t, int64_t,
                                          int64_t, int64_t, int64_t, void *);
template const char *add_boxes_backward<float>(float *, const float *, const int64_t *,
                                               const int64_t *, int64_t, int64_t, int64_t, int64_t,
                                               int64_t, int64_t, int64_t, void *);
template const char *add_boxes_backward<double>(double *, const double *, const int64_t *,
                                                const int64_t *, int64_t, int64_t, int64_t, int64_t,
                                                int64_t, int64_t, int64_t, void *);

} // namespace demix::detail::cuda

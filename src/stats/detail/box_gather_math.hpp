#pragma once
// Where one element of a box copy comes from and goes to, shared by the CPU loop and the CUDA
// kernels of box_gather (no ATen here: nvcc compiles it too).

#ifdef __CUDACC__
#define DEMIX_BOX_HD __host__ __device__ __forceinline__
#else
#define DEMIX_BOX_HD inline
#endif

#include <cstdint>

namespace demix::detail {

/// The columns of BoxTasks::table, one row per task.
enum BoxTaskField : int64_t {
  kTaskGroup = 0,   // offset of the task's group in the buffer, per map (times B: its start)
  kTaskGroupStride, // elements of the group per map: fields * box
  kTaskSlot,        // offset of the task's slot within one map's part of the group
  kTaskSource,      // source spectrum (global index)
  kTaskTable,       // offset of its frequency indices in BoxTasks::indices, or -1 for k itself
  kTaskLength,      // box size
  kTaskConj,        // 1: conjugate the copy
  kTaskStart,       // sum of the lengths of the tasks before it
  kTaskFields
};

namespace box {

struct Element {
  int64_t box;  // index in the flat box buffer
  int64_t spec; // index in the chunk's (B, c, H W) spectra
  bool conj;
};

/// Element k of task t (a row of the table) for map b of B, in a chunk of c sources from s0.
DEMIX_BOX_HD Element element_of(const int64_t* t, const int64_t* indices, int64_t k, int64_t b,
                                int64_t B, int64_t c, int64_t hw, int64_t s0) {
  const int64_t freq = t[kTaskTable] < 0 ? k : indices[t[kTaskTable] + k];
  return {B * t[kTaskGroup] + b * t[kTaskGroupStride] + t[kTaskSlot] + k,
          (b * c + t[kTaskSource] - s0) * hw + freq, t[kTaskConj] != 0};
}

/// The task among rows [t0, t0 + n) of the table whose elements cover position r (r counted like
/// kTaskStart): the last one starting at or before r.
DEMIX_BOX_HD const int64_t* task_at(const int64_t* table, int64_t t0, int64_t n, int64_t r) {
  int64_t lo = t0, hi = t0 + n - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (table[mid * kTaskFields + kTaskStart] <= r)
      lo = mid;
    else
      hi = mid - 1;
  }
  return table + lo * kTaskFields;
}

} // namespace box
} // namespace demix::detail

#pragma once
// Launcher of the CUDA kernels of box_gather.cpp (nvcc, box_gather_cuda.cu, no ATen headers).
// Complex tensors are interleaved (re, im) arrays; `table` points at the chunk's first task row and
// `first` is its kTaskStart. Returns nullptr, or CUDA's error message.

#include <cstdint>

namespace demix::detail::cuda {

/// Forward: out = the box buffer, in = the chunk's spectra (copies). Backward: out = the spectra's
/// gradient, in = the boxes' gradient (atomic sums).
template <class T>
const char* box_copies(bool backward, T* out, const T* in, const int64_t* table,
                       const int64_t* indices, int64_t n_tasks, int64_t first, int64_t length,
                       int64_t B, int64_t c, int64_t hw, int64_t s0, void* stream);

} // namespace demix::detail::cuda

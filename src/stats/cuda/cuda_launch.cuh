#pragma once
// Launch shape and error check shared by demix's CUDA kernels (grid-stride loops).

#include <algorithm>
#include <cstdint>

#include <cuda_runtime.h>

namespace demix::detail::cuda {

constexpr int kThreads = 256;

/// Blocks for n grid-stride items (capped: each thread then loops).
inline int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t{1} << 20));
}

/// nullptr, or the message of the last launch's error.
inline const char* launch_status() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

} // namespace demix::detail::cuda

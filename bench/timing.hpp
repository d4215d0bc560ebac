#pragma once
// Wall-clock timing shared by the benchmarks. CUDA calls return before their kernels finish, so
// every reading waits for the device first when the timed work runs on a GPU.

#include <demix/core/context.hpp>

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace bench {

/// Whether the timed work runs on CUDA; main sets it once from the context's device.
inline bool on_cuda = false;

/// What a benchmark's arguments name, [cpu|cuda|auto] [path/to/I_1.npy] [mode]: the context
/// (float32; sets on_cuda), the dust map and the mode.
struct Run {
  demix::Context context;
  std::string dust = "../shared/data/dust/I_1.npy", mode;
};
inline Run start(int argc, char** argv) {
  const std::string device = argc > 1 ? argv[1] : "auto";
  Run run{demix::Context({.device = device == "cpu"    ? demix::DeviceKind::Cpu
                                    : device == "cuda" ? demix::DeviceKind::Cuda
                                                       : demix::DeviceKind::Auto})};
  on_cuda = run.context.device().is_cuda();
  if (argc > 2) run.dust = argv[2];
  if (argc > 3) run.mode = argv[3];
  return run;
}

/// Waits for the work queued on the GPU (nothing on the CPU).
inline void sync() {
  if (on_cuda) torch::cuda::synchronize();
}

/// Seconds on a steady clock, read after the queued work has finished.
inline double now_after_sync() {
  sync();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Median seconds of `reps` timed calls of `fn`, after `warm` untimed ones (first-call costs:
/// allocations, kernel selection, caches).
inline double median_seconds(const std::function<void()>& fn, int reps = 5, int warm = 2) {
  for (int i = 0; i < warm; ++i) fn();
  sync();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    sync();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

} // namespace bench

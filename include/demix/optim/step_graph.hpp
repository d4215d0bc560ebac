#pragma once
// One step of an iterative computation (a loss, its gradient, an optimiser update: the same
// LibTorch ops on the same shapes, step after step) replayed as one CUDA graph. At small sizes the
// host's dispatch of a few hundred ops costs more than their kernels; a graph launches them all at
// once. Elsewhere (CPU, a LibTorch without CUDA or older than 2.1) a step is the plain call: same
// results.
//
// On CUDA the first call runs the step eagerly (LibTorch, cuBLAS, cuDNN and cuFFT set up their
// handles and plans), the second records it and replays the recording, later calls replay it. So
// the step must
//  - read its inputs from tensors at fixed addresses (the caller updates them in place), and hand
//    its outputs out through variables it assigns (after the recording they hold the graph's own
//    tensors, which every replay overwrites);
//  - take every value that changes between steps from a tensor, never from a host number (host
//    numbers are frozen into the recording);
//  - make no host synchronisation (.item(), nonzero, a device-to-host copy). A step that does
//  cannot
//    be recorded: the recording is dropped and the step runs eagerly from then on.

#include <c10/core/Device.h>

#include <functional>
#include <memory>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

class StepGraph {
public:
  /// enabled = false, or a device other than CUDA: every call runs `step` as it is.
  StepGraph(std::function<void()> step, c10::Device device, bool enabled = true);
  ~StepGraph();
  StepGraph(StepGraph&&) noexcept;
  StepGraph& operator=(StepGraph&&) noexcept;

  /// One step (asynchronous on CUDA, like any LibTorch op).
  void operator()();

  /// Whether calls replay a recording (after the first two on CUDA).
  bool recorded() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace demix
#pragma GCC visibility pop

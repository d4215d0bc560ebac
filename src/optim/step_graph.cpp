#include <demix/optim/step_graph.hpp>

#include <torch/version.h>

// Recording needs LibTorch 2.1's allocator interface (beginAllocateToPool / endAllocateToPool);
// older LibTorch runs every step eagerly.
#if defined(DEMIX_WITH_CUDA) &&                                                                    \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
#define DEMIX_STEP_GRAPHS
#endif

#ifdef DEMIX_STEP_GRAPHS
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>

#include <cuda_runtime_api.h>
#endif

namespace demix {

struct StepGraph::Impl {
  std::function<void()> step;
  c10::Device device;
  bool use_graph;
  bool warmed_up = false;
#ifdef DEMIX_STEP_GRAPHS
  std::optional<c10::cuda::CUDAStream> side; // where the warm-up and the recording run
  std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
};

StepGraph::StepGraph(std::function<void()> step, c10::Device device, bool enabled)
    : impl_(std::make_unique<Impl>(Impl{std::move(step), device, enabled && device.is_cuda()})) {
#ifndef DEMIX_STEP_GRAPHS
  impl_->use_graph = false;
#endif
}

StepGraph::~StepGraph() = default;
StepGraph::StepGraph(StepGraph&&) noexcept = default;
StepGraph& StepGraph::operator=(StepGraph&&) noexcept = default;

bool StepGraph::recorded() const {
#ifdef DEMIX_STEP_GRAPHS
  return impl_->graph != nullptr;
#else
  return false;
#endif
}

void StepGraph::operator()() {
  Impl& s = *impl_;
  if (!s.use_graph) {
    s.step();
    return;
  }
#ifdef DEMIX_STEP_GRAPHS
  if (s.graph) {
    s.graph->replay(); // on the caller's current stream
    return;
  }
  const c10::cuda::CUDAGuard on_device(s.device);
  const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream();
  if (!s.side) s.side = c10::cuda::getStreamFromPool(false, s.device.index());
  // A recording needs a stream of its own; the side stream starts after what the caller queued
  // and the caller continues after it, so the step sees and leaves tensors as in eager order.
  at::cuda::CUDAEvent queued;
  queued.record(caller);
  queued.block(*s.side);
  bool run_recording = false;
  {
    const c10::cuda::CUDAStreamGuard on_side(*s.side);
    if (!s.warmed_up) {
      s.step();
      s.warmed_up = true;
    } else {
      auto graph = std::make_unique<at::cuda::CUDAGraph>();
      // Relaxed: LibTorch's autograd thread and the allocator may call CUDA while we record; a
      // real synchronisation on the recorded stream still fails the recording. The pool is ours
      // so that a failed recording can be ended and its memory handed back.
      const at::cuda::MempoolId_t pool = at::cuda::graph_pool_handle();
      graph->capture_begin(pool, cudaStreamCaptureModeRelaxed);
      try {
        s.step();
        graph->capture_end();
        s.graph = std::move(graph);
        run_recording = true;
      } catch (...) {
        // The step cannot be recorded (it synchronises, say): end the recording where LibTorch
        // did not, give its memory back, and run eagerly from now on.
        cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(s.side->stream(), &status) == cudaSuccess &&
            status != cudaStreamCaptureStatusNone) {
          cudaGraph_t partial = nullptr;
          if (cudaStreamEndCapture(s.side->stream(), &partial) == cudaSuccess && partial)
            cudaGraphDestroy(partial);
        }
        // (Each may already have happened, depending on where the recording failed.)
        try {
          c10::cuda::CUDACachingAllocator::endAllocateToPool(s.device.index(), pool);
        } catch (...) {
        }
        bool ended = false; // capture_end got that far: then the graph releases the pool itself
        try {
          ended = graph->pool() == pool;
        } catch (...) {
        }
        graph.reset();
        if (!ended) {
          try {
            c10::cuda::CUDACachingAllocator::releasePool(s.device.index(), pool);
          } catch (...) {
          }
        }
        (void)cudaGetLastError(); // the refused call's error must not surface at the next launch
        // LibTorch's CUDA random generator enters its recording state at capture_begin and leaves
        // it only in a successful capture_end: one trivial recording puts it back.
        {
          at::cuda::CUDAGraph reset_generator;
          reset_generator.capture_begin();
          at::zeros({1}, at::TensorOptions().device(s.device));
          reset_generator.capture_end();
        }
        s.use_graph = false;
      }
    }
  }
  at::cuda::CUDAEvent done;
  done.record(*s.side);
  done.block(caller);
  if (run_recording)
    s.graph->replay(); // recording ran nothing: this is the step's first run
  else if (!s.use_graph)
    s.step(); // the failed recording ran nothing either
#endif
}

} // namespace demix

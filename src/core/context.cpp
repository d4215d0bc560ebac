#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#ifdef DEMIX_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>

#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <thread>

#include <unistd.h>

namespace demix {

int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

Context::Context(const ContextOptions& options) {
  if (options.threads < 0)
    throw ValueError("threads must be >= 0 (0 = one per core), got " +
                     std::to_string(options.threads));
  // Some OpenMP runtimes start LibTorch with a single thread; 0 means use every core.
  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (at::get_num_threads() != threads) at::set_num_threads(threads);

  const int n_cuda = cuda_device_count();
  switch (options.device) {
  case DeviceKind::Auto:
    device_ = n_cuda > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
    break;
  case DeviceKind::Cpu: device_ = c10::Device(c10::kCPU); break;
  case DeviceKind::Cuda:
    if (n_cuda == 0)
      throw DeviceError(std::string("device 'cuda' requested but no CUDA device is available") +
                        (at::hasCUDA() ? "" : " (this LibTorch was built without CUDA)") +
                        "; use --device cpu or auto");
    if (options.cuda_index < 0 || options.cuda_index >= n_cuda)
      throw DeviceError("CUDA device index " + std::to_string(options.cuda_index) +
                        " out of range: " + std::to_string(n_cuda) + " device(s) available");
    device_ = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(options.cuda_index));
    break;
  }
  real_dtype_ = options.precision == Precision::Float64 ? c10::kDouble : c10::kFloat;
}

c10::ScalarType Context::complex_dtype() const {
  return real_dtype_ == c10::kDouble ? c10::kComplexDouble : c10::kComplexFloat;
}

c10::TensorOptions Context::options() const {
  return c10::TensorOptions().device(device_).dtype(real_dtype_);
}

at::Tensor Context::to(const at::Tensor& t) const {
  return t.to(device_, t.is_complex() ? complex_dtype() : real_dtype_);
}

std::string Context::describe() const {
  std::string s = device_.str() + (real_dtype_ == c10::kDouble ? " float64" : " float32");
  if (device_.is_cpu()) s += " (" + std::to_string(at::get_num_threads()) + " threads)";
  return s;
}

} // namespace demix

namespace demix {

int64_t Context::free_memory_bytes() const {
#ifdef DEMIX_WITH_CUDA
  if (device_.is_cuda()) {
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) return 0;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_.index());
    const int64_t cached = stats.reserved_bytes[0].current - stats.allocated_bytes[0].current;
    return static_cast<int64_t>(free) + std::max<int64_t>(0, cached);
  }
#endif
  return static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) *
         static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

} // namespace demix

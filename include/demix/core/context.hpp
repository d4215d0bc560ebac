#pragma once
// Where and in which precision demix computes: chosen once (by the CLI's --device/--dtype/--threads
// or by the caller), then passed to operators, which create all their tensors with `options()`.
// Algorithm code never branches on the device.

#include <ATen/core/TensorBody.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <string>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Which device to compute on.
enum class DeviceKind {
  Auto, ///< CUDA device 0 when LibTorch sees one, otherwise the CPU
  Cpu,  ///< the CPU, multi-threaded
  Cuda, ///< CUDA device `cuda_index`; DeviceError if none is available
};

/// Real floating-point precision of computations (complex tensors use the matching complex type).
enum class Precision {
  Float32, ///< float32 / complex64: the default, fast on GPUs, ~1e-7 relative rounding
  Float64, ///< float64 / complex128: for oracles, gradients checks and ill-conditioned problems
};

struct ContextOptions {
  DeviceKind device = DeviceKind::Auto; ///< see DeviceKind
  int cuda_index = 0;                   ///< CUDA ordinal used when the device is CUDA; >= 0
  Precision precision = Precision::Float32;
  int threads = 0; ///< CPU threads for intra-op parallelism (process-wide); 0 = one per core
};

/// A resolved compute context: a concrete device and dtype.
class Context {
public:
  /// Resolves `Auto`, checks that the device exists and applies the thread count (process-wide).
  /// Throws DeviceError (CUDA missing, bad ordinal) or ValueError (negative threads).
  explicit Context(const ContextOptions& options = {});

  c10::Device device() const { return device_; }
  c10::ScalarType real_dtype() const { return real_dtype_; }
  c10::ScalarType complex_dtype() const;
  /// Options for new real tensors: this device and the real dtype.
  c10::TensorOptions options() const;
  /// Moves/casts a real tensor to this context (a no-op when it is already there).
  at::Tensor
  to(const at::Tensor& t) const; // any shape; real input -> real_dtype, complex -> complex_dtype
  /// "cpu float32 (2 threads)" or "cuda:0 float64".
  std::string describe() const;
  /// Bytes that new tensors on this device could take now: free device memory plus what LibTorch's
  /// CUDA cache holds unused, or the free physical memory for the CPU. Operators size chunks by it.
  int64_t free_memory_bytes() const;

private:
  c10::Device device_{c10::kCPU};
  c10::ScalarType real_dtype_ = c10::kFloat;
};

/// Number of CUDA devices LibTorch sees (0 on CPU-only builds).
int cuda_device_count();

} // namespace demix
#pragma GCC visibility pop

#pragma once
// What the ops with demix's own kernels (phase_harmonic, pair_product) share on the host side.

#include <ATen/core/Tensor.h>

namespace demix::detail {

/// Our loops run on the CPU and, when compiled in (DEMIX_CUDA_KERNELS), our kernels on CUDA; on
/// any other device the ops fall back to their composite LibTorch forms.
inline bool have_own_kernel(const at::Tensor& t) {
#ifdef DEMIX_CUDA_KERNELS
  if (t.is_cuda()) return true;
#endif
  return t.is_cpu();
}

/// A contiguous complex tensor's data as interleaved (re, im) values of its real type.
template <class T> T* as_real(at::Tensor& t) { return reinterpret_cast<T*>(t.data_ptr()); }
template <class T> const T* as_real(const at::Tensor& t) {
  return reinterpret_cast<const T*>(t.data_ptr());
}

} // namespace demix::detail

#pragma once
// Phase harmonics of selected wavelet fields, forward and backward, each as one pass over memory:
// a CPU loop and a CUDA kernel (when the library is built against a CUDA LibTorch with nvcc) behind
// one function. The composite ATen formulas (abs, angle, polar, ...) take about six passes forward
// and twelve backward, which dominated the WPH of large batches on the GPU.

#include <ATen/core/Tensor.h>

namespace demix::detail {

/// out[b, i] = [wt[b, idx[i]]]^{p[i]} with [z]^p = |z| e^{i p arg z}.
at::Tensor gather_harmonics(const at::Tensor& wt /* (B, F, H, W) complex */,
                            const at::Tensor& idx /* (n) int64, on wt's device */,
                            const at::Tensor& p /* (n) real, on wt's device */); // -> (B, n, H, W)

/// gwt[b, idx[i]] += (gradient with respect to wt[b, idx[i]] of [wt[b, idx[i]]]^{p[i]},
/// given the gradient grad[b, i] of that harmonic); repeated indices accumulate.
void add_harmonics_backward(at::Tensor& gwt /* (B, F, H, W) complex, contiguous */,
                            const at::Tensor& wt /* (B, F, H, W) complex */,
                            const at::Tensor& idx /* (n) */, const at::Tensor& p /* (n) */,
                            const at::Tensor& grad /* (B, n, H, W) complex */);

/// The same two operations from ATen's composite functions: the oracle of the tests, and the path
/// on a device without our kernels.
at::Tensor gather_harmonics_composite(const at::Tensor& wt, const at::Tensor& idx,
                                      const at::Tensor& p);
void add_harmonics_backward_composite(at::Tensor& gwt, const at::Tensor& wt, const at::Tensor& idx,
                                      const at::Tensor& p, const at::Tensor& grad);

} // namespace demix::detail

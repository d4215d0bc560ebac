#pragma once
// Products of pairs of spectra, x[fa] conj(x[fb]), and their backward, each as one pass: a CPU loop
// and a CUDA kernel (built with nvcc against a CUDA LibTorch) behind one function. The composite
// (two index_select copies, a conjugation and a product forward; two products and two atomic
// index_add backward) moved every box four to six times.

#include <ATen/core/Tensor.h>

namespace demix::detail {

/// out[b, i] = x[b, fa[i]] * conj(x[b, fb[i]]).
at::Tensor pair_products(const at::Tensor& x /* (B, F, K) complex */,
                         const at::Tensor& fa /* (n) int64 */,
                         const at::Tensor& fb /* (n) int64 */); // -> (B, n, K)

/// Backward of pair_products, given the gradient g of its output:
/// gx[b, fa[c]] += g[b, c] x[b, fb[c]] and gx[b, fb[c]] += conj(g[b, c]) x[b, fa[c]].
void add_pair_products_backward(at::Tensor& gx /* (B, F, K) complex, contiguous */,
                                const at::Tensor& x /* (B, F, K) */,
                                const at::Tensor& fa /* (n) int64 */,
                                const at::Tensor& fb /* (n) int64 */,
                                const at::Tensor& g /* (B, n, K) complex */);

/// The composite ATen forms: the tests' oracle, and the path on devices without our kernels.
at::Tensor pair_products_composite(const at::Tensor& x, const at::Tensor& fa, const at::Tensor& fb);
void add_pair_products_backward_composite(at::Tensor& gx, const at::Tensor& x, const at::Tensor& fa,
                                          const at::Tensor& fb, const at::Tensor& g);

} // namespace demix::detail

#pragma once
// Products of pairs of spectra, x[fa] conj(x[fb]), and their backward, each as one pass: a CPU loop
// and a CUDA kernel (built with nvcc against a CUDA LibTorch) behind one function. The composite
// (two index_select copies, a conjugation and a product forward; two products and two atomic
// index_add backward) moved every box four to six times.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace demix::detail {

/// Which products touch each field, for the backward: entries [ptr[s], ptr[s + 1]) of field s hold
/// code = 2 c + side (side 0: s = fa[c], 1: s = fb[c]) and the other field of product c.
struct PairIndex {
  at::Tensor fa, fb; // (n) int64: the fields of each product
  at::Tensor ptr;    // (F + 1) int64
  at::Tensor code;   // (2 n) int64
  at::Tensor other;  // (2 n) int64
  static PairIndex build(const std::vector<int64_t>& fa, const std::vector<int64_t>& fb, int64_t n_fields,
                         c10::Device device);
};

/// out[b, i] = x[b, fa[i]] * conj(x[b, fb[i]]).
at::Tensor pair_products(const at::Tensor& x /* (B, F, K) complex */, const at::Tensor& fa /* (n) int64 */,
                         const at::Tensor& fb /* (n) int64 */);  // -> (B, n, K)

/// Backward of pair_products for the products c0 .. c0 + n - 1 (g holds their gradients):
/// gx[b, fa[c]] += g[b, c] x[b, fb[c]] and gx[b, fb[c]] += conj(g[b, c]) x[b, fa[c]].
void add_pair_products_backward(at::Tensor& gx /* (B, F, K) complex, contiguous */,
                                const at::Tensor& x /* (B, F, K) */, const PairIndex& index, int64_t c0,
                                const at::Tensor& g /* (B, n, K) complex */);

/// The composite ATen forms: the tests' oracle, and the path on devices without our kernels.
at::Tensor pair_products_composite(const at::Tensor& x, const at::Tensor& fa, const at::Tensor& fb);
void add_pair_products_backward_composite(at::Tensor& gx, const at::Tensor& x, const at::Tensor& fa,
                                          const at::Tensor& fb, const at::Tensor& g);

}  // namespace demix::detail

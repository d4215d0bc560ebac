#pragma once
// log p(z) of a LatentFlow whose weights are frozen (none requires grad), as one custom autograd
// function with a hand-written backward with respect to z only. The deblender evaluates the prior
// and its gradient at every step; through autograd that is ~250 small ops per call, all launch
// overhead on a GPU. Here the weights are rearranged once so that a call is ~120 kernels:
//  - masks applied once;
//  - the order reversal between blocks folded into the weights: the activations stay in the order
//    of z (block k's first layer reads them through permuted columns and its mu, alpha come out
//    through permuted rows when k is odd); |u|^2 does not depend on the order, so u is never
//    flipped back;
//  - 1 / max_log_scale folded into the alpha rows of each last layer, the signs of the backward
//    pass into the transposed weights it multiplies by;
//  - the activations of the forward pass saved and reused by the backward pass, whose
//    intermediate results go to preallocated buffers.
// Only first derivatives: a backward pass that would build a graph (create_graph) throws.

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace demix::detail {

/// One masked dense layer of a MADE, rearranged for the frozen evaluation.
struct FrozenFlowLayer {
  at::Tensor weight_t; // (in, out): forward weight, transposed for addmm
  at::Tensor bias;     // (out)
  at::Tensor backward; // (out, in): what the backward pass multiplies the output gradient by
};

/// A flow's weights rearranged (see above); built by freeze_flow, immutable afterwards.
struct FrozenFlow {
  int64_t dim = 0;                                  // D
  double max_log_scale = 0;                         // A
  at::Tensor scale, offset;                         // (D): standardised x = z * scale + offset
  at::Tensor constant;                              // (): -D/2 log(2 pi) - sum(log_scale)
  std::vector<std::vector<FrozenFlowLayer>> blocks; // [block][layer]
};

/// The weights of block k, layer l: layers[k][l] = (weight (out, in), bias (out)), unmasked, as
/// LatentFlow stores them; masks[l] (out, in) are the MADE masks (the last layer's outputs are
/// mu (D) then alpha_raw (D)).
std::shared_ptr<const FrozenFlow>
freeze_flow(const at::Tensor& shift /* (D) */, const at::Tensor& log_scale /* (D) */,
            const std::vector<std::vector<std::pair<at::Tensor, at::Tensor>>>& layers,
            const std::vector<at::Tensor>& masks, double max_log_scale);

/// log p(z), differentiable with respect to z (first derivatives only).
at::Tensor frozen_flow_log_prob(const std::shared_ptr<const FrozenFlow>& flow,
                                const at::Tensor& z /* (N, D) */); // -> (N)

} // namespace demix::detail

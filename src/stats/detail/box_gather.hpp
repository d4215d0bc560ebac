#pragma once
// Frequency boxes of a chunk of spectra, copied out (forward) and added back (backward) as one pass
// each: a CPU loop and a CUDA kernel behind one function. The WPH statistics keep, for every group
// of covariances, each of its fields' spectrum on the group's box of frequencies; a chunk of
// sources feeds every group. As ATen ops that was three copies per group and chunk forward, four
// (two of them zero-filled temporaries) backward: at 512^2, ~700 small kernels per loss + gradient.
//
// A task copies one source's spectrum at one box into one slot of one group:
//   boxes[B * group + b * group_stride + slot + k] = conj?(spec[b, source - s0, index[k]]),
// k < length, index = indices[table + .] (or k itself when table < 0). The boxes of all groups
// share one flat buffer, group after group, each laid out (B, fields, box) so that the products
// read it in place.

#include "stats/detail/box_gather_math.hpp"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace demix::detail {

/// Every copy of a plan, sorted by source; made once when the plan is built.
struct BoxTasks {
  at::Tensor table;   // (n_tasks, kTaskFields) int64, on the plan's device
  at::Tensor indices; // (n_index) int64: the boxes' flat frequency indices
  std::vector<int64_t>
      first_task; // (n_sources + 1): the tasks of source s, in [first_task[s], first_task[s + 1])
  std::vector<int64_t> start; // (n_tasks + 1): each task's kTaskStart, then the total length
  int64_t per_map = 0;        // elements of the buffer per map
};

/// One copy of a plan (a row of BoxTasks::table before sorting); fields as in BoxTaskField.
struct BoxCopy {
  int64_t source, group, group_stride, slot, table, length;
  bool conj;
};

/// The table of the copies, sorted by source (stable: their order within a source is kept), with
/// each task's start and each source's first task; on `device`.
BoxTasks make_box_tasks(std::vector<BoxCopy> copies, const std::vector<int64_t>& indices,
                        int64_t per_map, int64_t n_sources, c10::Device device);

/// Fills the boxes of sources [s0, s0 + c) from their spectra.
void gather_boxes(at::Tensor& boxes /* (B * per_map) complex, contiguous */,
                  const at::Tensor& spec /* (B, c, H * W) complex */, const BoxTasks& tasks,
                  int64_t s0);

/// Backward of gather_boxes: gspec[b, source - s0, index[k]] += conj?(gboxes[...]), for the
/// sources [s0, s0 + c) of gspec.
void add_boxes_backward(at::Tensor& gspec /* (B, c, H * W) complex, contiguous */,
                        const at::Tensor& gboxes /* (B * per_map) complex */, const BoxTasks& tasks,
                        int64_t s0);

/// The same with ATen index ops (each task's flat indices spelled out): the tests' oracle, and the
/// path on devices without our kernels.
void gather_boxes_composite(at::Tensor& boxes, const at::Tensor& spec, const BoxTasks& tasks,
                            int64_t s0);
void add_boxes_backward_composite(at::Tensor& gspec, const at::Tensor& gboxes,
                                  const BoxTasks& tasks, int64_t s0);

} // namespace demix::detail

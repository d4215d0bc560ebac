#include "box_gather.hpp"

#include "own_kernels.hpp"

#include <demix/errors.hpp>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#ifdef DEMIX_CUDA_KERNELS
#include "box_gather_cuda.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <string>

namespace demix::detail {

namespace {

/// The tasks of the chunk's sources [s0, s0 + c): rows [t0, t1) of the table.
struct Chunk {
  int64_t t0, t1;
};

Chunk chunk_of(const BoxTasks &tasks, const at::Tensor &spec, const at::Tensor &boxes, int64_t s0,
               const char *what) {
  const int64_t c = spec.dim() == 3 ? spec.size(1) : -1;
  if (!spec.is_complex() || c < 0 || !boxes.is_complex() || boxes.dim() != 1 ||
      boxes.scalar_type() != spec.scalar_type() || boxes.device() != spec.device() ||
      tasks.table.device() != spec.device() || boxes.numel() != spec.size(0) * tasks.per_map ||
      s0 < 0 || s0 + c + 1 > static_cast<int64_t>(tasks.first_task.size()))
    throw ShapeError(std::string(what) + ": expected complex spectra (B, c, H W) of sources from " +
                     std::to_string(s0) + " and a flat box buffer of B * " +
                     std::to_string(tasks.per_map) + " of one type and device");
  return {tasks.first_task[static_cast<std::size_t>(s0)],
          tasks.first_task[static_cast<std::size_t>(s0 + c)]};
}

/// Flat (box, spectrum) index pairs of every element of the chunk, and which are conjugated.
std::tuple<at::Tensor, at::Tensor, at::Tensor>
spelled_out(const BoxTasks &tasks, Chunk ch, int64_t B, int64_t c, int64_t hw, int64_t s0) {
  const at::Tensor table = tasks.table.cpu(), indices = tasks.indices.cpu();
  std::vector<int64_t> box, spec;
  std::vector<uint8_t> conj;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = ch.t0; t < ch.t1; ++t) {
      const int64_t *row = table.data_ptr<int64_t>() + t * kTaskFields;
      for (int64_t k = 0; k < row[kTaskLength]; ++k) {
        const box::Element el =
            box::element_of(row, indices.data_ptr<int64_t>(), k, b, B, c, hw, s0);
        box.push_back(el.box), spec.push_back(el.spec), conj.push_back(el.conj);
      }
    }
  const auto dev = tasks.table.device();
  return {at::tensor(box, at::kLong).to(dev), at::tensor(spec, at::kLong).to(dev),
          at::tensor(std::vector<int64_t>(conj.begin(), conj.end()), at::kLong).to(dev).ne(0)};
}

} // namespace

BoxTasks make_box_tasks(std::vector<BoxCopy> copies, const std::vector<int64_t> &indices,
                        int64_t per_map, int64_t n_sources, c10::Device device) {
  std::stable_sort(copies.begin(), copies.end(),
                   [](const BoxCopy &a, const BoxCopy &b) { return a.source < b.source; });
  BoxTasks tasks;
  std::vector<int64_t> table;
  tasks.first_task.assign(static_cast<std::size_t>(n_sources) + 1, 0);
  tasks.start.assign(1, 0);
  for (const BoxCopy &cp : copies) {
    if (cp.source < 0 || cp.source >= n_sources)
      throw ValueError("make_box_tasks: source " + std::to_string(cp.source) + " outside [0, " +
                       std::to_string(n_sources) + ")");
    table.insert(table.end(), {cp.group, cp.group_stride, cp.slot, cp.source, cp.table, cp.length,
                               int64_t{cp.conj}, tasks.start.back()});
    tasks.start.push_back(tasks.start.back() + cp.length);
    ++tasks.first_task[static_cast<std::size_t>(cp.source) + 1];
  }
  for (std::size_t i = 1; i < tasks.first_task.size(); ++i)
    tasks.first_task[i] += tasks.first_task[i - 1];
  tasks.table = at::tensor(table, at::kLong).view({-1, kTaskFields}).to(device);
  tasks.indices = at::tensor(indices, at::kLong).to(device);
  tasks.per_map = per_map;
  return tasks;
}

void gather_boxes_composite(at::Tensor &boxes, const at::Tensor &spec, const BoxTasks &tasks,
                            int64_t s0) {
  const Chunk ch = chunk_of(tasks, spec, boxes, s0, "gather_boxes");
  const auto [box, from, conj] =
      spelled_out(tasks, ch, spec.size(0), spec.size(1), spec.size(2), s0);
  const at::Tensor v = spec.reshape({-1}).index_select(0, from);
  boxes.index_copy_(0, box, at::where(conj, v.conj().resolve_conj(), v));
}

void add_boxes_backward_composite(at::Tensor &gspec, const at::Tensor &gboxes,
                                  const BoxTasks &tasks, int64_t s0) {
  const Chunk ch = chunk_of(tasks, gspec, gboxes, s0, "add_boxes_backward");
  if (!gspec.is_contiguous())
    throw ShapeError("add_boxes_backward: the gradient must be contiguous");
  const auto [box, to, conj] =
      spelled_out(tasks, ch, gspec.size(0), gspec.size(1), gspec.size(2), s0);
  const at::Tensor v = gboxes.index_select(0, box);
  gspec.view({-1}).index_add_(0, to, at::where(conj, v.conj().resolve_conj(), v));
}

void gather_boxes(at::Tensor &boxes, const at::Tensor &spec_in, const BoxTasks &tasks, int64_t s0) {
  const Chunk ch = chunk_of(tasks, spec_in, boxes, s0, "gather_boxes");
  if (!boxes.is_contiguous())
    throw ShapeError("gather_boxes: the box buffer must be contiguous");
  if (!have_own_kernel(spec_in))
    return gather_boxes_composite(boxes, spec_in, tasks, s0);
  const at::Tensor spec = spec_in.contiguous();
  const int64_t B = spec.size(0), c = spec.size(1), hw = spec.size(2), n = ch.t1 - ch.t0;
  const int64_t first = tasks.start[static_cast<std::size_t>(ch.t0)];
  [[maybe_unused]] const int64_t length =
      tasks.start[static_cast<std::size_t>(ch.t1)] - first; // CUDA's
  const int64_t *table = tasks.table.data_ptr<int64_t>() + ch.t0 * kTaskFields;
  const int64_t *indices = tasks.indices.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(spec.scalar_type()), "gather_boxes", [&] {
#ifdef DEMIX_CUDA_KERNELS
    if (spec.is_cuda()) {
      const c10::cuda::CUDAGuard guard(spec.device());
      const char *err = cuda::gather_boxes<scalar_t>(
          as_real<scalar_t>(boxes), as_real<scalar_t>(spec), table, indices, n, first, length, B, c,
          hw, s0, c10::cuda::getCurrentCUDAStream().stream());
      if (err)
        throw DeviceError(std::string("gather_boxes: CUDA kernel failed: ") + err);
      return;
    }
#endif
    scalar_t *out = as_real<scalar_t>(boxes);
    const scalar_t *in = as_real<scalar_t>(spec);
    at::parallel_for(0, B * n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t *row = table + (i % n) * kTaskFields;
        for (int64_t k = 0; k < row[kTaskLength]; ++k) {
          const box::Element el = box::element_of(row, indices, k, i / n, B, c, hw, s0);
          out[2 * el.box] = in[2 * el.spec];
          out[2 * el.box + 1] = el.conj ? -in[2 * el.spec + 1] : in[2 * el.spec + 1];
        }
      }
    });
  });
}

void add_boxes_backward(at::Tensor &gspec, const at::Tensor &gboxes_in, const BoxTasks &tasks,
                        int64_t s0) {
  const Chunk ch = chunk_of(tasks, gspec, gboxes_in, s0, "add_boxes_backward");
  if (!gspec.is_contiguous())
    throw ShapeError("add_boxes_backward: the gradient must be contiguous");
  if (!have_own_kernel(gspec))
    return add_boxes_backward_composite(gspec, gboxes_in, tasks, s0);
  const at::Tensor gboxes = gboxes_in.contiguous();
  const int64_t B = gspec.size(0), c = gspec.size(1), hw = gspec.size(2);
  [[maybe_unused]] const int64_t n = ch.t1 - ch.t0;
  const int64_t first = tasks.start[static_cast<std::size_t>(ch.t0)];
  [[maybe_unused]] const int64_t length =
      tasks.start[static_cast<std::size_t>(ch.t1)] - first; // CUDA's
  const int64_t *table = tasks.table.data_ptr<int64_t>() + ch.t0 * kTaskFields;
  const int64_t *indices = tasks.indices.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(gspec.scalar_type()), "add_boxes_backward", [&] {
#ifdef DEMIX_CUDA_KERNELS
    if (gspec.is_cuda()) {
      const c10::cuda::CUDAGuard guard(gspec.device());
      const char *err = cuda::add_boxes_backward<scalar_t>(
          as_real<scalar_t>(gspec), as_real<scalar_t>(gboxes), table, indices, n, first, length, B,
          c, hw, s0, c10::cuda::getCurrentCUDAStream().stream());
      if (err)
        throw DeviceError(std::string("add_boxes_backward: CUDA kernel failed: ") + err);
      return;
    }
#endif
    scalar_t *out = as_real<scalar_t>(gspec);
    const scalar_t *in = as_real<scalar_t>(gboxes);
    // One thread per (map, source): the tasks of a source run in sequence, so sums never race.
    at::parallel_for(0, B * c, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / c, s = s0 + i % c;
        const int64_t r0 = tasks.first_task[static_cast<std::size_t>(s)] - ch.t0;
        const int64_t r1 = tasks.first_task[static_cast<std::size_t>(s + 1)] - ch.t0;
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t *row = table + r * kTaskFields;
          for (int64_t k = 0; k < row[kTaskLength]; ++k) {
            const box::Element el = box::element_of(row, indices, k, b, B, c, hw, s0);
            out[2 * el.spec] += in[2 * el.box];
            out[2 * el.spec + 1] += el.conj ? -in[2 * el.box + 1] : in[2 * el.box + 1];
          }
        }
      }
    });
  });
}

} // namespace demix::detail

#include "stats/detail/box_gather.hpp"

#include <demix/core/errors.hpp>

#include "stats/detail/own_kernels.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#ifdef DEMIX_CUDA_KERNELS
#include "stats/cuda/box_gather_cuda.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <string>

namespace demix::detail {

namespace {

/// A validated call on the chunk of sources [s0, s0 + c) of (B, c, hw) spectra: its rows [t0, t1)
/// of the table.
struct Call {
  int64_t B, c, hw, s0, t0, t1;
};

/// Checks a call; `backward` says which side is written (the spectra's gradient, else the boxes),
/// which must be contiguous.
Call call_of(const BoxTasks& tasks, const at::Tensor& spec, const at::Tensor& boxes, int64_t s0,
             bool backward) {
  const char* what = backward ? "add_boxes_backward" : "gather_boxes";
  const int64_t c = spec.dim() == 3 ? spec.size(1) : -1;
  if (!spec.is_complex() || c < 0 || !boxes.is_complex() || boxes.dim() != 1 ||
      boxes.scalar_type() != spec.scalar_type() || boxes.device() != spec.device() ||
      tasks.table.device() != spec.device() || boxes.numel() != spec.size(0) * tasks.per_map ||
      s0 < 0 || s0 + c + 1 > static_cast<int64_t>(tasks.first_task.size()))
    throw ShapeError(std::string(what) + ": expected complex spectra (B, c, H W) of sources from " +
                     std::to_string(s0) + " and a flat box buffer of B * " +
                     std::to_string(tasks.per_map) + " of one type and device");
  if (!(backward ? spec : boxes).is_contiguous())
    throw ShapeError(std::string(what) + (backward ? ": the gradient must be contiguous"
                                                   : ": the box buffer must be contiguous"));
  return {spec.size(0),
          c,
          spec.size(2),
          s0,
          tasks.first_task[static_cast<std::size_t>(s0)],
          tasks.first_task[static_cast<std::size_t>(s0 + c)]};
}

/// Flat (box, spectrum) index pairs of every element of the call, and which are conjugated.
std::tuple<at::Tensor, at::Tensor, at::Tensor> spelled_out(const BoxTasks& tasks, const Call& k) {
  const at::Tensor table = tasks.table.cpu(), indices = tasks.indices.cpu();
  std::vector<int64_t> box, spec;
  std::vector<uint8_t> conj;
  for (int64_t b = 0; b < k.B; ++b)
    for (int64_t t = k.t0; t < k.t1; ++t) {
      const int64_t* row = table.data_ptr<int64_t>() + t * kTaskFields;
      for (int64_t i = 0; i < row[kTaskLength]; ++i) {
        const box::Element el =
            box::element_of(row, indices.data_ptr<int64_t>(), i, b, k.B, k.c, k.hw, k.s0);
        box.push_back(el.box), spec.push_back(el.spec), conj.push_back(el.conj);
      }
    }
  const auto dev = tasks.table.device();
  return {at::tensor(box, at::kLong).to(dev), at::tensor(spec, at::kLong).to(dev),
          at::tensor(std::vector<int64_t>(conj.begin(), conj.end()), at::kLong).to(dev).ne(0)};
}

/// Our kernels: forward copies `in` (the spectra) into `out` (the boxes); backward adds `in` (the
/// boxes' gradient) into `out` (the spectra's).
template <bool kBackward>
void run_kernels(at::Tensor& out, const at::Tensor& in_any, const BoxTasks& tasks, const Call& k) {
  const at::Tensor in = in_any.contiguous();
  [[maybe_unused]] const int64_t n = k.t1 - k.t0;
  [[maybe_unused]] const int64_t first = tasks.start[static_cast<std::size_t>(k.t0)];
  [[maybe_unused]] const int64_t length = tasks.start[static_cast<std::size_t>(k.t1)] - first;
  const int64_t* table = tasks.table.data_ptr<int64_t>() + k.t0 * kTaskFields;
  const int64_t* indices = tasks.indices.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(out.scalar_type()), "box_copies", [&] {
#ifdef DEMIX_CUDA_KERNELS
    if (out.is_cuda()) {
      const c10::cuda::CUDAGuard guard(out.device());
      const char* err = cuda::box_copies<scalar_t>(
          kBackward, as_real<scalar_t>(out), as_real<scalar_t>(in), table, indices, n, first,
          length, k.B, k.c, k.hw, k.s0, c10::cuda::getCurrentCUDAStream().stream());
      if (err)
        throw DeviceError(std::string(kBackward ? "add_boxes_backward" : "gather_boxes") +
                          ": CUDA kernel failed: " + err);
      return;
    }
#endif
    scalar_t* o = as_real<scalar_t>(out);
    const scalar_t* x = as_real<scalar_t>(in);
    if constexpr (kBackward) {
      // One thread per (map, source): the tasks of a source run in sequence, so sums never race.
      at::parallel_for(0, k.B * k.c, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t b = i / k.c, s = k.s0 + i % k.c;
          const int64_t r0 = tasks.first_task[static_cast<std::size_t>(s)] - k.t0;
          const int64_t r1 = tasks.first_task[static_cast<std::size_t>(s + 1)] - k.t0;
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t* row = table + r * kTaskFields;
            for (int64_t j = 0; j < row[kTaskLength]; ++j) {
              const box::Element el = box::element_of(row, indices, j, b, k.B, k.c, k.hw, k.s0);
              o[2 * el.spec] += x[2 * el.box];
              o[2 * el.spec + 1] += el.conj ? -x[2 * el.box + 1] : x[2 * el.box + 1];
            }
          }
        }
      });
    } else {
      at::parallel_for(0, k.B * n, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t* row = table + (i % n) * kTaskFields;
          for (int64_t j = 0; j < row[kTaskLength]; ++j) {
            const box::Element el = box::element_of(row, indices, j, i / n, k.B, k.c, k.hw, k.s0);
            o[2 * el.box] = x[2 * el.spec];
            o[2 * el.box + 1] = el.conj ? -x[2 * el.spec + 1] : x[2 * el.spec + 1];
          }
        }
      });
    }
  });
}

} // namespace

BoxTasks make_box_tasks(std::vector<BoxCopy> copies, const std::vector<int64_t>& indices,
                        int64_t per_map, int64_t n_sources, c10::Device device) {
  std::stable_sort(copies.begin(), copies.end(),
                   [](const BoxCopy& a, const BoxCopy& b) { return a.source < b.source; });
  BoxTasks tasks;
  std::vector<int64_t> table;
  tasks.first_task.assign(static_cast<std::size_t>(n_sources) + 1, 0);
  tasks.start.assign(1, 0);
  for (const BoxCopy& cp : copies) {
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

void gather_boxes_composite(at::Tensor& boxes, const at::Tensor& spec, const BoxTasks& tasks,
                            int64_t s0) {
  const auto [box, from, conj] = spelled_out(tasks, call_of(tasks, spec, boxes, s0, false));
  const at::Tensor v = spec.reshape({-1}).index_select(0, from);
  boxes.index_copy_(0, box, at::where(conj, v.conj().resolve_conj(), v));
}

void add_boxes_backward_composite(at::Tensor& gspec, const at::Tensor& gboxes,
                                  const BoxTasks& tasks, int64_t s0) {
  const auto [box, to, conj] = spelled_out(tasks, call_of(tasks, gspec, gboxes, s0, true));
  const at::Tensor v = gboxes.index_select(0, box);
  gspec.view({-1}).index_add_(0, to, at::where(conj, v.conj().resolve_conj(), v));
}

void gather_boxes(at::Tensor& boxes, const at::Tensor& spec, const BoxTasks& tasks, int64_t s0) {
  const Call k = call_of(tasks, spec, boxes, s0, false);
  if (!have_own_kernel(spec)) return gather_boxes_composite(boxes, spec, tasks, s0);
  run_kernels<false>(boxes, spec, tasks, k);
}

void add_boxes_backward(at::Tensor& gspec, const at::Tensor& gboxes, const BoxTasks& tasks,
                        int64_t s0) {
  const Call k = call_of(tasks, gspec, gboxes, s0, true);
  if (!have_own_kernel(gspec)) return add_boxes_backward_composite(gspec, gboxes, tasks, s0);
  run_kernels<true>(gspec, gboxes, tasks, k);
}

} // namespace demix::detail

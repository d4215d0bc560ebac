// The box-copy kernels (src/stats/detail/box_gather.*): against the task semantics spelled out with
// tensor slicing, against the composite ATen forms, and the backward as the adjoint of the forward.

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>

#include "stats/detail/box_gather.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

namespace {

using demix::detail::BoxTasks;

constexpr int64_t kSources = 5, kHW = 12;

// Two groups as a WPH plan makes them: an unboxed one (the grid in order, 3 slots) and a
// 4-frequency box (4 slots, one of them a conjugated field read at -k). Sources 2 feeds both groups
// and twice the second (plain and conjugated); source 0 only the first.
BoxTasks make_tasks(c10::Device device) {
  const std::vector<int64_t> indices{5, 6, 9, 10, /* -k: */ 7, 6, 3, 2};
  const std::vector<demix::detail::BoxCopy> copies{
      {0, 0, 3 * kHW, 0, -1, kHW, false},       {2, 0, 3 * kHW, kHW, -1, kHW, false},
      {3, 0, 3 * kHW, 2 * kHW, -1, kHW, false}, {1, 3 * kHW, 16, 0, 0, 4, false},
      {2, 3 * kHW, 16, 4, 0, 4, false},         {2, 3 * kHW, 16, 8, 4, 4, true},
      {4, 3 * kHW, 16, 12, 0, 4, false}};
  return demix::detail::make_box_tasks(copies, indices, 3 * kHW + 16, kSources, device);
}

at::Tensor random_complex(std::vector<int64_t> shape, at::ScalarType type, c10::Device device) {
  const auto opt = at::TensorOptions().dtype(at::kDouble);
  return at::complex(at::randn(shape, opt), at::randn(shape, opt)).to(device, type);
}

double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a.cpu() - b.cpu()).abs().max() / b.cpu().abs().max().clamp_min(1e-300)).item<double>();
}

void expect_kernels_right(at::ScalarType type, c10::Device device, double tol) {
  at::manual_seed(11);
  const BoxTasks tasks = make_tasks(device);
  const int64_t B = 2, s0 = 1, c = 3; // the chunk of sources 1, 2, 3
  const at::Tensor spec = random_complex({B, c, kHW}, type, device);
  at::Tensor boxes = at::zeros({B * tasks.per_map}, spec.options());
  demix::detail::gather_boxes(boxes, spec, tasks, s0);

  // Every copy of the chunk, spelled out; everything else left as it was (zero).
  const at::Tensor cpu = spec.cpu(), got = boxes.cpu();
  const at::Tensor box = tasks.indices.cpu().narrow(0, 0, 4),
                   flip = tasks.indices.cpu().narrow(0, 4, 4);
  at::Tensor want = at::zeros_like(got);
  for (int64_t b = 0; b < B; ++b) {
    const auto grid = [&](int64_t source) { return cpu[b][source - s0]; };
    want.narrow(0, b * 3 * kHW + kHW, kHW).copy_(grid(2));
    want.narrow(0, b * 3 * kHW + 2 * kHW, kHW).copy_(grid(3));
    const int64_t g1 = B * 3 * kHW + b * 16;
    want.narrow(0, g1, 4).copy_(grid(1).index_select(0, box));
    want.narrow(0, g1 + 4, 4).copy_(grid(2).index_select(0, box));
    want.narrow(0, g1 + 8, 4).copy_(grid(2).index_select(0, flip).conj());
  }
  EXPECT_EQ((got - want).abs().max().item<double>(), 0.0) << "a copy is exact";

  at::Tensor ref = at::zeros_like(boxes);
  demix::detail::gather_boxes_composite(ref, spec, tasks, s0);
  EXPECT_EQ((got - ref.cpu()).abs().max().item<double>(), 0.0);

  // Backward: the adjoint of the (real-linear) copy under Re <a, b>, added to what was there; and
  // the composite form, which sums in another order (atomics on CUDA).
  const at::Tensor g = random_complex({B * tasks.per_map}, type, device);
  const at::Tensor start = random_complex({B, c, kHW}, type, device);
  at::Tensor gspec = start.clone();
  demix::detail::add_boxes_backward(gspec, g, tasks, s0);
  const double lhs = at::real(at::sum(boxes.conj() * g)).item<double>();
  const double rhs = at::real(at::sum(spec.conj() * (gspec - start))).item<double>();
  EXPECT_NEAR(lhs, rhs, tol * (std::abs(lhs) + 1));
  at::Tensor gref = start.clone();
  demix::detail::add_boxes_backward_composite(gref, g, tasks, s0);
  EXPECT_LT(rel_diff(gspec, gref), tol);
  // Source 2 receives from three copies; source 0 lies outside the chunk and the buffer part of
  // group 0's slot 0 must not reach anything.
  EXPECT_GT((gspec - start).abs().sum().item<double>(), 0.0);
}

// Copies are exact; the backward's sums of up to three terms round in the type.
TEST(BoxGather, CpuKernelsCopyEveryBoxAndAddBackTheAdjoint) {
  expect_kernels_right(at::kComplexDouble, at::kCPU, 1e-14);
  expect_kernels_right(at::kComplexFloat, at::kCPU, 1e-6);
}

TEST(BoxGather, CudaKernelsCopyEveryBoxAndAddBackTheAdjoint) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  expect_kernels_right(at::kComplexDouble, at::kCUDA, 1e-14);
  expect_kernels_right(at::kComplexFloat, at::kCUDA, 1e-6);
}

TEST(BoxGather, RejectsAMismatchedBuffer) {
  const BoxTasks tasks = make_tasks(at::kCPU);
  const at::Tensor spec = random_complex({2, 3, kHW}, at::kComplexFloat, at::kCPU);
  at::Tensor small = at::zeros({tasks.per_map}, spec.options()); // one map's worth for two maps
  EXPECT_THROW(demix::detail::gather_boxes(small, spec, tasks, 1), demix::ShapeError);
  at::Tensor beyond = at::zeros({2 * tasks.per_map}, spec.options());
  EXPECT_THROW(demix::detail::gather_boxes(beyond, spec, tasks, 3),
               demix::ShapeError); // sources 3..5
}

TEST(BoxGather, TasksAreSortedBySourceAndRejectOneOutsideThePlan) {
  const BoxTasks tasks = make_tasks(at::kCPU);
  EXPECT_EQ(tasks.first_task, (std::vector<int64_t>{0, 1, 2, 5, 6, 7}));
  EXPECT_EQ(tasks.start.back(), 3 * kHW + 4 * 4);
  const at::Tensor sources = tasks.table.select(1, demix::detail::kTaskSource);
  EXPECT_TRUE(at::equal(sources, at::tensor(std::vector<int64_t>{0, 1, 2, 2, 2, 3, 4})));
  // Source 2's three copies keep their given order: grid slot, box slot, conjugated box slot.
  EXPECT_EQ(tasks.table[2][demix::detail::kTaskSlot].item<int64_t>(), kHW);
  EXPECT_EQ(tasks.table[4][demix::detail::kTaskConj].item<int64_t>(), 1);
  EXPECT_THROW(demix::detail::make_box_tasks({{kSources, 0, 4, 0, 0, 4, false}}, {0, 1, 2, 3}, 4,
                                             kSources, at::kCPU),
               demix::ValueError);
}

} // namespace

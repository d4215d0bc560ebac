// The phase-harmonic kernels (src/stats/detail/phase_harmonic.*) against ATen's composite formulas,
// which the WPH regression and finite-difference tests validate.

#include <demix/core/context.hpp>

#include "stats/detail/phase_harmonic.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace {

double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item<double>();
}

struct Case {
  at::Tensor wt, idx, p, grad;
};

// Fields with exact zeros (arg 0 = 0, gradient 0 there), negative and fractional exponents, and
// repeated field indices (the backward must accumulate them).
Case make_case(at::ScalarType complex_type, c10::Device device) {
  at::manual_seed(3);
  const auto opt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor wt = at::complex(at::randn({2, 5, 6, 7}, opt), at::randn({2, 5, 6, 7}, opt));
  wt.index_put_({0, 1, 2}, 0.0);
  wt.index_put_({1, 3, at::indexing::Slice(), 4}, 0.0);
  const at::Tensor idx = at::tensor({0, 1, 3, 1, 4, 3, 2}, at::kLong);
  const at::Tensor p = at::tensor({0.0, 1.0, 2.0, 3.0, 0.5, -1.0, 8.0}, opt);
  const at::Tensor grad = at::complex(at::randn({2, 7, 6, 7}, opt), at::randn({2, 7, 6, 7}, opt));
  return {wt.to(device, complex_type), idx.to(device), p.to(device), grad.to(device, complex_type)};
}

void expect_match(at::ScalarType complex_type, c10::Device device, double tol) {
  const Case c = make_case(complex_type, device);
  const at::Tensor ref_cpu =
      demix::detail::gather_harmonics_composite(c.wt.cpu(), c.idx.cpu(), c.p.cpu());
  EXPECT_LT(rel_diff(demix::detail::gather_harmonics(c.wt, c.idx, c.p).cpu(), ref_cpu), tol);

  at::Tensor g_ref = at::ones_like(c.wt.cpu()); // a non-zero start: the op adds
  demix::detail::add_harmonics_backward_composite(g_ref, c.wt.cpu(), c.idx.cpu(), c.p.cpu(),
                                                  c.grad.cpu());
  at::Tensor g = at::ones_like(c.wt);
  demix::detail::add_harmonics_backward(g, c.wt, c.idx, c.p, c.grad);
  EXPECT_LT(rel_diff(g.cpu(), g_ref), tol);
}

// Same formulas, one element at a time: double rounding (a few ulps of atan2/cos/sin), and float's.
TEST(PhaseHarmonic, CpuKernelsMatchTheCompositeFormulas) {
  expect_match(at::kComplexDouble, at::kCPU, 1e-13);
  expect_match(at::kComplexFloat, at::kCPU, 1e-5);
}

TEST(PhaseHarmonic, CudaKernelsMatchTheCompositeFormulas) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  expect_match(at::kComplexDouble, at::kCUDA, 1e-13);
  expect_match(at::kComplexFloat, at::kCUDA, 1e-5);
}

TEST(PhaseHarmonic, HarmonicOneIsTheFieldAndZeroItsModulus) {
  const Case c = make_case(at::kComplexDouble, at::kCPU);
  const at::Tensor one = at::ones({5}, at::kDouble), zero = at::zeros({5}, at::kDouble);
  const at::Tensor all = at::arange(5, at::kLong);
  EXPECT_LT(rel_diff(demix::detail::gather_harmonics(c.wt, all, one), c.wt), 1e-15);
  EXPECT_LT(
      rel_diff(demix::detail::gather_harmonics(c.wt, all, zero), c.wt.abs().to(c.wt.scalar_type())),
      1e-15);
}

} // namespace

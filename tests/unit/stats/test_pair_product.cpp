// The pair-product kernels (src/stats/detail/pair_product.*) against ATen's composite forms, which
// the WPH regression and finite-difference tests validate.

#include <demix/core/context.hpp>

#include "stats/detail/pair_product.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace {

double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item<double>();
}

// Fields used by several products, on either side, and products of a field with itself; the
// backward of a sub-range of products as the chunked WPH backward calls it.
void expect_match(at::ScalarType type, c10::Device device, double tol) {
  at::manual_seed(5);
  const auto opt = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor x =
      at::complex(at::randn({3, 4, 10}, opt), at::randn({3, 4, 10}, opt)).to(device, type);
  const std::vector<int64_t> fa{0, 1, 2, 1, 3, 0}, fb{1, 1, 0, 3, 3, 2};
  const at::Tensor ta = at::tensor(fa, at::kLong).to(device),
                   tb = at::tensor(fb, at::kLong).to(device);
  EXPECT_LT(rel_diff(demix::detail::pair_products(x, ta, tb).cpu(),
                     demix::detail::pair_products_composite(x.cpu(), ta.cpu(), tb.cpu())),
            tol);

  const int64_t c0 = 2, n = 3;
  const at::Tensor g =
      at::complex(at::randn({3, n, 10}, opt), at::randn({3, n, 10}, opt)).to(device, type);
  at::Tensor ref = at::ones_like(x.cpu()); // a non-zero start: both add
  demix::detail::add_pair_products_backward_composite(ref, x.cpu(), ta.narrow(0, c0, n).cpu(),
                                                      tb.narrow(0, c0, n).cpu(), g.cpu());
  at::Tensor got = at::ones_like(x);
  demix::detail::add_pair_products_backward(got, x, ta.narrow(0, c0, n), tb.narrow(0, c0, n), g);
  EXPECT_LT(rel_diff(got.cpu(), ref), tol);
}

// The same products and sums in another order: rounding of the type only.
TEST(PairProduct, CpuKernelsMatchTheCompositeForms) {
  expect_match(at::kComplexDouble, at::kCPU, 1e-14);
  expect_match(at::kComplexFloat, at::kCPU, 1e-6);
}

TEST(PairProduct, CudaKernelsMatchTheCompositeForms) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  expect_match(at::kComplexDouble, at::kCUDA, 1e-14);
  expect_match(at::kComplexFloat, at::kCUDA, 1e-6);
}

} // namespace

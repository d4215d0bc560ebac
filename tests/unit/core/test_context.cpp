// Device and precision selection; CPU vs CUDA agreement where a GPU is present (skipped, and said
// so, elsewhere).

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/image.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

TEST(Context, CpuAndPrecision) {
  const demix::Context f32({.device = demix::DeviceKind::Cpu});
  EXPECT_TRUE(f32.device().is_cpu());
  EXPECT_EQ(f32.real_dtype(), at::kFloat);
  EXPECT_EQ(f32.complex_dtype(), at::kComplexFloat);
  const demix::Context f64(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  EXPECT_EQ(at::zeros({2}, f64.options()).scalar_type(), at::kDouble);
  EXPECT_EQ(f64.to(at::ones({2}, at::kComplexFloat)).scalar_type(), at::kComplexDouble);
  EXPECT_NE(f64.describe().find("float64"), std::string::npos);
  EXPECT_THROW(demix::Context({.threads = -1}), demix::ValueError);
}

TEST(Context, AutoAndCudaFollowWhatLibTorchSees) {
  const demix::Context automatic;
  EXPECT_EQ(automatic.device().is_cuda(), demix::cuda_device_count() > 0);
  if (demix::cuda_device_count() == 0) {
    EXPECT_THROW(demix::Context({.device = demix::DeviceKind::Cuda}), demix::DeviceError);
  } else {
    EXPECT_TRUE(demix::Context({.device = demix::DeviceKind::Cuda}).device().is_cuda());
    EXPECT_THROW(demix::Context({.device = demix::DeviceKind::Cuda, .cuda_index = 99}),
                 demix::DeviceError);
  }
}

TEST(Context, SummaryOnCudaMatchesCpu) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const demix::Context cuda(
      {.device = demix::DeviceKind::Cuda, .precision = demix::Precision::Float64});
  at::Tensor x = at::randn({3, 64, 64}, at::kDouble);
  x[1][2][3] = NAN;
  const auto a = demix::summarize(x);
  const auto b = demix::summarize(cuda.to(x));
  EXPECT_EQ(a.nan, b.nan);
  EXPECT_EQ(a.min, b.min);
  EXPECT_NEAR(a.mean, b.mean, 1e-12); // different reduction order in float64
  EXPECT_NEAR(a.std, b.std, 1e-12);
  const at::Tensor cleaned =
      demix::apply_non_finite_policy(cuda.to(x), demix::NonFinitePolicy::Mean, "x");
  EXPECT_TRUE(cleaned.is_cuda());
  EXPECT_TRUE(at::allclose(cleaned.cpu(),
                           demix::apply_non_finite_policy(x, demix::NonFinitePolicy::Mean, "x")));
}

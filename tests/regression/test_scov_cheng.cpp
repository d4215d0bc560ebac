// The scattering covariance against SihaoCheng/scattering_transform:
// `Scattering2d(256, 256, J=7, L=4).scattering_cov(x)` on the shared 256 x 256 dust crop as a
// (1, 256, 256) float64 tensor (provenance: ../shared/reference/peers/README.md). That code builds
// its Morlet filters in float64 and stores them in float32, then computes in float64 with those
// rounded values; ScovFilterRounding::Float32 does the same, so the comparison can be tight.

#include <demix/io/npy.hpp>
#include <demix/stats/scattering_cov.hpp>

#include "support/shared_files.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

const std::string kPeers = demix::test::peers_dir();
const std::string kPrefix = kPeers + "cheng_scov_J7_L4_256_";

// max |a - b| / max |b| over the entries where the reference is not NaN; the NaN pattern must
// match.
double relative_error(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  EXPECT_EQ(a.sizes(), b.sizes()) << what;
  const at::Tensor x = a.to(b.scalar_type()).cpu();
  EXPECT_TRUE(at::equal(at::isnan(x), at::isnan(b))) << what << ": NaN patterns differ";
  const at::Tensor valid = at::logical_not(at::isnan(b));
  const at::Tensor xv = x.masked_select(valid), bv = b.masked_select(valid);
  return ((xv - bv).abs().max() / bv.abs().max()).item<double>();
}

} // namespace

TEST(ScovCheng, ReproducesChengJ7L4) {
  const std::string input = kPeers + "input_I1_256.npy";
  ASSERT_TRUE(demix::test::shared_files_exist({input, kPrefix + "C11.npy"}));
  const at::Tensor x = demix::read_npy(input).unsqueeze(0); // (1, 256, 256) float64
  demix::Context ctx({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});

  for (auto rounding : {demix::ScovFilterRounding::Float32, demix::ScovFilterRounding::None}) {
    const demix::ScatteringCovOperator op({.J = 7, .L = 4, .filter_rounding = rounding}, {256, 256},
                                          ctx);
    const demix::ScatteringCovTensors t = op.forward_tensors(x);
    const std::pair<std::string, at::Tensor> classes[] = {
        {"mean", t.mean},       {"var", t.var},        {"P00", t.P00},         {"S1", t.S1},
        {"C01", t.C01},         {"C11", t.C11},        {"P00_iso", t.P00_iso}, {"S1_iso", t.S1_iso},
        {"C01_iso", t.C01_iso}, {"C11_iso", t.C11_iso}};
    const bool f32 = rounding == demix::ScovFilterRounding::Float32;
    for (const auto& [name, value] : classes) {
      const at::Tensor ref = demix::read_npy(kPrefix + name + ".npy");
      const double e = relative_error(value, ref, name);
      std::printf("cheng J7 L4 %-8s (filters %s): max rel. error %.3g\n", name.c_str(),
                  f32 ? "rounded to float32" : "float64", e);
      if (f32) {
        // Same filter values and the same float64 arithmetic up to summation order: only float64
        // rounding remains (~1e-13); 1e-6 is the bound asked for and leaves a wide margin.
        EXPECT_LT(e, 1e-6) << name;
      } else {
        // float64 filters differ from the stored float32 ones by ~3e-8 relative; the statistics
        // move by the same order, well under 1e-6 of each class's largest value.
        EXPECT_LT(e, 1e-6) << name;
      }
    }
  }
}

// The parts of SihaoCheng/scattering_transform's `scattering_cov` that the shared P00 reference
// does not hold: P11, P11_iso, C11_pre_norm_iso, and the 'for_synthesis' vectors (mean/std, log
// P00, log S1, C01, C11, log P11) with their index tables, for normalization 'P00' and 'P11'.
// Oracle: tests/data/cheng_scov/, made by scripts/oracles/make_cheng_scov.py (2 maps of 64 x 64, J
// = 5, L = 4, that code's single-precision filters, float64 input).

#include <demix/io/npy.hpp>
#include <demix/stats/scattering_cov.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

const std::string kData = std::string(DEMIX_TEST_DATA_DIR) + "/cheng_scov/";

demix::ScatteringCovOperator make(demix::ScovNormalization n) {
  const demix::Context ctx(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  // Cheng's bank is stored in float32 and used in float64: ScovFilterRounding::Float32 does the
  // same.
  return demix::ScatteringCovOperator(
      {.J = 5, .L = 4, .normalization = n, .filter_rounding = demix::ScovFilterRounding::Float32},
      {64, 64}, ctx);
}

// max |a - b| / max |b| over the entries where b is not NaN; the NaN patterns must agree.
double relative_error(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  EXPECT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(at::equal(at::isnan(a), at::isnan(b))) << what << ": NaN patterns differ";
  const at::Tensor valid = at::logical_not(at::isnan(b));
  const at::Tensor av = a.masked_select(valid), bv = b.masked_select(valid);
  return ((av - bv).abs().max() / bv.abs().max()).item<double>();
}

} // namespace

TEST(ScovChengP11, TensorsMatch) {
  const at::Tensor x = demix::read_npy(kData + "input.npy"); // (2, 64, 64) float64
  for (auto n : {demix::ScovNormalization::P00, demix::ScovNormalization::P11}) {
    const demix::ScatteringCovTensors t = make(n).forward_tensors(x);
    for (const auto& [name, value] : {std::pair{"P11", t.P11},
                                      {"P11_iso", t.P11_iso},
                                      {"C11_pre_norm_iso", t.C11_pre_norm_iso}}) {
      const double e = relative_error(value, demix::read_npy(kData + name + ".npy"), name);
      // Same float32 filter values, float64 arithmetic in another order: ~1e-15 is reached.
      EXPECT_LT(e, 1e-12) << name;
      std::printf("cheng %-16s max rel. error %.3g\n", name, e);
    }
  }
}

TEST(ScovChengP11, SynthesisVectorsMatch) {
  const at::Tensor x = demix::read_npy(kData + "input.npy");
  for (auto n : {demix::ScovNormalization::P00, demix::ScovNormalization::P11}) {
    const demix::ScatteringCovOperator op = make(n);
    const std::string norm = n == demix::ScovNormalization::P11 ? "P11" : "P00";
    for (bool iso : {false, true}) {
      const std::string key = iso ? "for_synthesis_iso" : "for_synthesis";
      SCOPED_TRACE(norm + " " + key);
      const demix::Coefficients v = iso ? op.synthesis_vector_iso(x) : op.synthesis_vector(x);
      const at::Tensor ref = demix::read_npy(kData + "norm-" + norm + "_" + key + ".npy");
      const at::Tensor index =
          demix::read_npy(kData + "norm-" + norm + "_index_" + key + ".npy").to(at::kLong);
      ASSERT_EQ(v.values.sizes(), ref.sizes());
      // Same coefficients in the same order: Cheng's type code per coefficient, then the labels.
      const at::Tensor type_of_class = iso ? at::tensor({0, 1, 2, 3, 5, 7}, at::kLong)
                                           : at::tensor({0, 1, 2, 3, 4, 5, 6, 7}, at::kLong);
      EXPECT_TRUE(at::equal(type_of_class.index_select(0, v.class_id), index[0]));
      EXPECT_TRUE(at::equal(v.labels.t(), index.narrow(0, 1, 6)));
      // Per class, relative to the class's largest |value| (logs and correlations mixed).
      for (std::size_t k = 0; k < v.classes.size(); ++k) {
        const at::Tensor m = (v.class_id == static_cast<int64_t>(k)).nonzero().flatten();
        if (m.numel() == 0) continue;
        const at::Tensor a = v.values.index_select(1, m), b = ref.index_select(1, m);
        const double e = ((a - b).abs().max() / b.abs().max()).item<double>();
        // The same float32 filter values in float64 arithmetic: ~1e-14 is reached.
        EXPECT_LT(e, 1e-12) << v.classes[k];
        std::printf("cheng %s %-18s %-12s max rel. error %.3g\n", norm.c_str(), key.c_str(),
                    v.classes[k].c_str(), e);
      }
    }
  }
}

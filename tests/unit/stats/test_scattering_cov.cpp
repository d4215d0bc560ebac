// ScatteringCovOperator: every C01 / C11 coefficient against its definition evaluated by brute
// force (spatial means of filtered maps, or explicit frequency masks), the isotropic reductions
// against the labels, the reference normalisation, translation invariance, gradients.

#include <demix/core/errors.hpp>
#include <demix/stats/morlet.hpp>
#include <demix/stats/scattering_cov.hpp>

#include "support/gradient_check.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

namespace {

demix::Context cpu64() {
  return demix::Context({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
}

// max |a - b| / max |b| over the coefficients of class `name`.
double class_error(const demix::Coefficients& a, const demix::Coefficients& b,
                   const std::string& name) {
  const at::Tensor x = a.select(name).values, y = b.select(name).values;
  return ((x - y).abs().max() / y.abs().max()).item<double>();
}

// Brute force: the statistics of one map (M, N) from their definitions, with I1 and the filtered
// maps computed one by one. `mask(j)` gives the (M, N) 0/1 frequency mask of scale j.
struct BruteForce {
  at::Tensor psi;                          // (J, L, M, N)
  std::vector<std::vector<at::Tensor>> I1; // [j][l] (M, N) real
  at::Tensor x_hat;
  double MN;
  BruteForce(const at::Tensor& x, int J, int L) {
    psi = demix::morlet_filter_bank({.J = J, .L = L, .variant = demix::MorletVariant::Cheng},
                                    x.size(0), x.size(1), at::kDouble, at::kCPU)
              .psi;
    x_hat = at::fft_fft2(x);
    MN = static_cast<double>(x.numel());
    I1.resize(J);
    for (int j = 0; j < J; ++j)
      for (int l = 0; l < L; ++l) I1[j].push_back(at::abs(at::fft_ifft2(x_hat * psi[j][l])));
  }
  double P00(int j, int l) const { return (I1[j][l] * I1[j][l]).mean().item<double>(); }
  // Spatial form: < (x * psi_{j2,l2}) conj(I1[j1,l1]) >.
  c10::complex<double> C01(int j1, int j2, int l1, int l2) const {
    const at::Tensor a = at::fft_ifft2(x_hat * psi[j2][l2]);
    return (a * I1[j1][l1]).mean().item<c10::complex<double>>() /
           std::sqrt(P00(j1, l1) * P00(j2, l2));
  }
  // Spatial form: < (I1[j1,l1] * psi_{j3,l3}) conj(I1[j2,l2] * psi_{j3,l3}) >.
  c10::complex<double> C11(int j1, int j2, int j3, int l1, int l2, int l3) const {
    const at::Tensor a = at::fft_ifft2(at::fft_fft2(I1[j1][l1]) * psi[j3][l3]);
    const at::Tensor b = at::fft_ifft2(at::fft_fft2(I1[j2][l2]) * psi[j3][l3]);
    return (a * at::conj(b)).mean().item<c10::complex<double>>() /
           std::sqrt(P00(j1, l1) * P00(j2, l2));
  }
  // Fourier form restricted to a frequency mask.
  c10::complex<double> C01_masked(int j1, int j2, int l1, int l2, const at::Tensor& mask) const {
    const at::Tensor s = (x_hat * at::conj(at::fft_fft2(I1[j1][l1])) * psi[j2][l2] * mask).sum();
    return s.item<c10::complex<double>>() / (MN * MN) / std::sqrt(P00(j1, l1) * P00(j2, l2));
  }
  c10::complex<double> C11_masked(int j1, int j2, int j3, int l1, int l2, int l3,
                                  const at::Tensor& mask) const {
    const at::Tensor s = (at::fft_fft2(I1[j1][l1]) * at::conj(at::fft_fft2(I1[j2][l2])) *
                          psi[j3][l3] * psi[j3][l3] * mask)
                             .sum();
    return s.item<c10::complex<double>>() / (MN * MN) / std::sqrt(P00(j1, l1) * P00(j2, l2));
  }
};

// Cheng's frequency set of scale j on an axis of `size`: indices -d .. d-1 (mod size),
// d = max(8, min(ceil(size / 2^j), size / 2)).
at::Tensor axis_mask(int64_t size, int j) {
  const int64_t d = std::max<int64_t>(8, std::min<int64_t>((size + (1 << j) - 1) >> j, size / 2));
  at::Tensor m = at::zeros({size}, at::kDouble);
  for (int64_t k = -d; k < d; ++k) m[(k + size) % size] = 1.0;
  return m;
}

} // namespace

TEST(ScatteringCov, EveryCoefficientMatchesItsSpatialDefinition) {
  const int J = 3, L = 3;
  at::manual_seed(3);
  const at::Tensor x = at::rand({24, 20}, at::kDouble);
  const demix::ScatteringCovOperator op(
      {.J = J, .L = L, .frequency_sum = demix::ScovFrequencySum::Full}, {24, 20}, cpu64());
  const demix::Coefficients c = op.forward(x);
  const BruteForce bf(x, J, L);
  // 2 + 2 J L + J(J+1)/2 L^2 + C(J+2, 3) L^3 + 2 J + J(J+1)/2 L + C(J+2, 3) L^2
  ASSERT_EQ(c.size(), 2 + 18 + 54 + 270 + 6 + 18 + 90);
  const auto lab = c.labels.accessor<int64_t, 2>();
  const auto val = c.values[0];
  int checked = 0;
  for (int64_t k = 0; k < c.size(); ++k) {
    const std::string& cls = c.classes[c.class_id[k].item<int64_t>()];
    const auto v = val[k].item<c10::complex<double>>();
    c10::complex<double> expected;
    if (cls == "P00")
      expected = bf.P00(lab[k][0], lab[k][3]);
    else if (cls == "S1")
      expected = bf.I1[lab[k][0]][lab[k][3]].mean().item<double>();
    else if (cls == "C01")
      expected = bf.C01(lab[k][0], lab[k][1], lab[k][3], lab[k][4]);
    else if (cls == "C11")
      expected = bf.C11(lab[k][0], lab[k][1], lab[k][2], lab[k][3], lab[k][4], lab[k][5]);
    else if (cls == "mean")
      expected = x.mean().item<double>();
    else if (cls == "var")
      expected = x.var().item<double>();
    else
      continue;
    // Parseval turns the spatial means into the Fourier sums the operator uses: float64 rounding
    // of FFTs and sums only (~1e-15 relative to these O(0.01..1) values).
    EXPECT_LT(std::abs(v - expected), 1e-12 * std::max(1.0, std::abs(expected)))
        << cls << " #" << k;
    ++checked;
  }
  EXPECT_EQ(checked, 2 + 9 + 9 + 54 + 270);
}

TEST(ScatteringCov, CroppedSumsUseChengsFrequencySets) {
  const int J = 4, L = 2;
  const int64_t M = 64, N = 48;
  at::manual_seed(4);
  const at::Tensor x = at::rand({M, N}, at::kDouble);
  const demix::ScatteringCovOperator op({.J = J, .L = L}, {M, N}, cpu64());
  const demix::Coefficients c = op.forward(x);
  const BruteForce bf(x, J, L);
  std::vector<at::Tensor> masks;
  for (int j = 0; j < J; ++j)
    masks.push_back(axis_mask(M, j).view({M, 1}) * axis_mask(N, j).view({1, N}));
  EXPECT_LT(masks[3].sum().item<double>(), M * N); // scale 3 is really cropped (16 x 12 kept)
  const auto lab = c.labels.accessor<int64_t, 2>();
  for (int64_t k = 0; k < c.size(); ++k) {
    const std::string& cls = c.classes[c.class_id[k].item<int64_t>()];
    const auto v = c.values[0][k].item<c10::complex<double>>();
    c10::complex<double> expected;
    if (cls == "C01")
      expected = bf.C01_masked(lab[k][0], lab[k][1], lab[k][3], lab[k][4], masks[lab[k][1]]);
    else if (cls == "C11")
      expected = bf.C11_masked(lab[k][0], lab[k][1], lab[k][2], lab[k][3], lab[k][4], lab[k][5],
                               masks[lab[k][2]]);
    else
      continue;
    // Same sums over the same frequencies in another order: float64 rounding only.
    EXPECT_LT(std::abs(v - expected), 1e-12 * std::max(1.0, std::abs(expected)))
        << cls << " #" << k;
  }
}

// The progress callback hears the first-order fields, then each scale, and changes nothing.
TEST(ScatteringCov, ProgressHearsEachStep) {
  demix::ScatteringCovOptions o{.J = 3, .L = 4};
  const demix::ScatteringCovOperator plain(o, {32, 32}, cpu64());
  std::vector<std::pair<int64_t, int64_t>> heard;
  o.progress = [&](int64_t done, int64_t total) { heard.emplace_back(done, total); };
  const demix::ScatteringCovOperator told(o, {32, 32}, cpu64());
  const at::Tensor x = at::rand({2, 32, 32}, at::kDouble);
  EXPECT_TRUE(at::equal(told.forward(x).values, plain.forward(x).values));
  EXPECT_EQ(heard, (std::vector<std::pair<int64_t, int64_t>>{{1, 4}, {2, 4}, {3, 4}, {4, 4}}));
}

TEST(ScatteringCov, IsotropicClassesAverageOverTheFirstAngle) {
  const int J = 3, L = 4;
  const demix::ScatteringCovOperator op({.J = J, .L = L}, {32, 32}, cpu64());
  const demix::Coefficients c = op.forward(at::rand({2, 32, 32}, at::kDouble));
  // Rebuild each isotropic coefficient from the anisotropic ones found by their labels.
  std::map<std::tuple<std::string, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>, int64_t>
      where;
  const auto lab = c.labels.accessor<int64_t, 2>();
  for (int64_t k = 0; k < c.size(); ++k)
    where[{c.classes[c.class_id[k].item<int64_t>()], lab[k][0], lab[k][1], lab[k][2], lab[k][3],
           lab[k][4], lab[k][5]}] = k;
  const at::Tensor re = at::real(c.values);
  for (int64_t k = 0; k < c.size(); ++k) {
    const std::string cls = c.classes[c.class_id[k].item<int64_t>()];
    if (cls.size() < 4 || cls.substr(cls.size() - 4) != "_iso") continue;
    const std::string base = cls.substr(0, cls.size() - 4);
    at::Tensor sum = at::zeros({2}, at::kDouble);
    for (int l1 = 0; l1 < L; ++l1) {
      int64_t l2 = -1, l3 = -1, a = lab[k][0];
      if (base == "C01" || base == "C11") l2 = (l1 + lab[k][4]) % L;
      if (base == "C11") l3 = (l1 + lab[k][5]) % L;
      sum += re.select(1, where.at({base, a, lab[k][1], lab[k][2], l1, l2, l3}));
    }
    EXPECT_TRUE(at::allclose(re.select(1, k), sum / L, 1e-13, 0)) << cls << " #" << k;
    EXPECT_TRUE(at::equal(at::imag(c.values).select(1, k), at::zeros({2}, at::kDouble)));
  }
  EXPECT_EQ(op.forward_iso(at::rand({1, 32, 32}, at::kDouble)).size(), 2 + 3 + 3 + 6 * 4 + 10 * 16);
}

TEST(ScatteringCov, TensorsHaveChengsShapesAndNaNs) {
  const int J = 3, L = 2;
  const demix::ScatteringCovOperator op({.J = J, .L = L}, {32, 32}, cpu64());
  const at::Tensor x = at::rand({2, 32, 32}, at::kDouble);
  const demix::ScatteringCovTensors t = op.forward_tensors(x);
  const demix::Coefficients c = op.forward(x);
  EXPECT_EQ(t.C01.sizes(), (std::vector<int64_t>{2, J, J, L, L}));
  EXPECT_EQ(t.C11.sizes(), (std::vector<int64_t>{2, J, J, J, L, L, L}));
  EXPECT_EQ(t.C11_iso.sizes(), (std::vector<int64_t>{2, J, J, J, L, L}));
  EXPECT_EQ(at::isnan(at::real(t.C01)).sum().item<int64_t>(), 2 * 3 * L * L); // j1 > j2
  EXPECT_EQ(at::isnan(at::real(t.C11)).sum().item<int64_t>(), 2 * (27 - 10) * L * L * L);
  EXPECT_EQ(at::isnan(t.C01_iso).sum().item<int64_t>(), 2 * 3 * L);
  // Spot values: C01[b, 0, 2, 1, 0] and C11[b, 1, 1, 2, 0, 1, 1] against the labelled vector.
  const auto find = [&](const std::string& cls, std::vector<int64_t> l) {
    const demix::Coefficients s = c.select(cls);
    const at::Tensor hit = (s.labels == at::tensor(l, at::kLong)).all(1).nonzero().flatten();
    return s.values.select(1, hit.item<int64_t>());
  };
  EXPECT_TRUE(at::equal(t.C01.select(1, 0).select(1, 2).select(1, 1).select(1, 0),
                        find("C01", {0, 2, -1, 1, 0, -1})));
  EXPECT_TRUE(
      at::equal(t.C11.select(1, 1).select(1, 1).select(1, 2).select(1, 0).select(1, 1).select(1, 1),
                find("C11", {1, 1, 2, 0, 1, 1})));
  EXPECT_TRUE(at::allclose(t.P00.flatten(1), at::real(c.select("P00").values)));
}

TEST(ScatteringCov, ReferenceNormalisation) {
  const int J = 3, L = 2;
  demix::ScatteringCovOperator op({.J = J, .L = L}, {32, 32}, cpu64());
  const at::Tensor x = at::rand({1, 32, 32}, at::kDouble),
                   r = 3 * at::rand({1, 32, 32}, at::kDouble);
  const demix::Coefficients own = op.forward(x);
  const demix::Reference self = op.reference(x);
  ASSERT_FALSE(self.empty());
  EXPECT_EQ(self.get("P00").sizes(), (std::vector<int64_t>{1, J, L}));
  EXPECT_TRUE(at::allclose(op.forward(x, self).values, own.values, 1e-14, 0)); // its own reference
  const demix::Reference ref = op.reference(r);
  const demix::Coefficients withref = op.forward(x, ref);
  // C01 and C11 change by sqrt(P00_x[a] P00_x[b] / (P00_r[a] P00_r[b])); nothing else changes.
  const at::Tensor Px =
      at::real(op.forward(x, ref).select("P00").values).flatten(); // forward keeps P00_x
  const at::Tensor Pr = ref.get("P00").flatten();
  for (const std::string cls : {"C01", "C11"}) {
    const demix::Coefficients a = own.select(cls), b = withref.select(cls);
    const at::Tensor ia = a.label("j1") * L + a.label("l1"), ib = a.label("j2") * L + a.label("l2");
    const at::Tensor ratio = at::sqrt(Px.index_select(0, ia) * Px.index_select(0, ib) /
                                      (Pr.index_select(0, ia) * Pr.index_select(0, ib)));
    EXPECT_TRUE(at::allclose(b.values[0], a.values[0] * ratio, 1e-12, 0)) << cls;
  }
  EXPECT_TRUE(at::equal(withref.select("S1").values, own.select("S1").values));
  // One reference map: broadcast.
  EXPECT_NO_THROW(op.forward(at::rand({3, 32, 32}, at::kDouble), ref));
  const demix::Reference two = op.reference(at::rand({2, 32, 32}, at::kDouble));
  EXPECT_THROW(op.forward(at::rand({3, 32, 32}, at::kDouble), two), demix::ShapeError);
  EXPECT_TRUE(at::allclose(op.forward(x).values, own.values, 1e-14, 0));
}

TEST(ScatteringCov, P11MatchesItsSpatialDefinitionAndNormalisesC01AndC11) {
  const int J = 3, L = 2;
  at::manual_seed(6);
  const at::Tensor x = at::rand({1, 24, 20}, at::kDouble);
  const auto op = [&](demix::ScovNormalization n) {
    return demix::ScatteringCovOperator(
        {.J = J, .L = L, .normalization = n, .frequency_sum = demix::ScovFrequencySum::Full},
        {24, 20}, cpu64());
  };
  const demix::ScatteringCovTensors p11 = op(demix::ScovNormalization::P11).forward_tensors(x);
  const demix::ScatteringCovTensors raw = op(demix::ScovNormalization::None).forward_tensors(x);
  const BruteForce bf(x[0], J, L);
  // P11[j1, j2, l1, l2] = < |I1[j1, l1] * psi[j2, l2]|^2 > for j1 <= j2, NaN elsewhere.
  for (int j1 = 0; j1 < J; ++j1)
    for (int j2 = 0; j2 < J; ++j2)
      for (int l1 = 0; l1 < L; ++l1)
        for (int l2 = 0; l2 < L; ++l2) {
          const double v = p11.P11[0][j1][j2][l1][l2].item<double>();
          if (j1 > j2) {
            EXPECT_TRUE(std::isnan(v));
            continue;
          }
          const at::Tensor f = at::fft_ifft2(at::fft_fft2(bf.I1[j1][l1]) * bf.psi[j2][l2]);
          const double expected = f.abs().square().mean().item<double>();
          // Parseval: the same sum in Fourier space, float64 rounding only.
          EXPECT_NEAR(v, expected, 1e-12 * expected) << j1 << j2 << l1 << l2;
        }
  // The normalisations, from the unnormalised cross-spectra and the map's P00 and P11:
  //   C01[j1,j2,l1,l2] / sqrt(P00[j2,l2] P11[j1,j2,l1,l2]),
  //   C11[j1,j2,j3,l1,l2,l3] / sqrt(P11[j1,j3,l1,l3] P11[j2,j3,l2,l3]).
  const at::Tensor P = p11.P11[0], P00 = p11.P00[0]; // (J, J, L, L), (J, L)
  const at::Tensor c01 = raw.C01[0] / at::sqrt(P00.view({1, J, 1, L}) * P);
  const at::Tensor c11 =
      raw.C11_pre_norm[0] / at::sqrt(P.view({J, 1, J, L, 1, L}) * P.view({1, J, J, 1, L, L}));
  const auto close = [](const at::Tensor& a, const at::Tensor& b) { // NaN where undefined
    const at::Tensor valid = at::logical_not(at::isnan(at::real(b)));
    EXPECT_TRUE(at::equal(valid, at::logical_not(at::isnan(at::real(a)))));
    // The same quotients up to float64 rounding.
    return at::allclose(a.masked_select(valid), b.masked_select(valid), 1e-12, 0);
  };
  EXPECT_TRUE(close(p11.C01[0], c01));
  EXPECT_TRUE(close(p11.C11[0], c11));
  for (int j1 = 0; j1 < J; ++j1) // C11 = 1 where j1 = j2 and l1 = l2 (P11 divided by itself)
    for (int j3 = j1; j3 < J; ++j3)
      for (int l = 0; l < L; ++l)
        EXPECT_NEAR(at::real(p11.C11[0][j1][j1][j3][l][l]).min().item<double>(), 1.0, 1e-13);
  // forward() appends the map's P11 and P11_iso.
  const demix::Coefficients c = op(demix::ScovNormalization::P11).forward(x);
  EXPECT_EQ(c.classes.back(), "P11_iso");
  EXPECT_EQ(c.select("P11").size(), J * (J + 1) / 2 * L * L);
  EXPECT_EQ(op(demix::ScovNormalization::P11).forward_iso(x).classes.back(), "P11_iso");
  EXPECT_TRUE(at::allclose(at::real(c.select("P11").values[0]),
                           P.masked_select(at::logical_not(at::isnan(P)))));
}

TEST(ScatteringCov, P11ReferenceNormalisation) {
  const int J = 3, L = 2;
  demix::ScatteringCovOperator op({.J = J, .L = L, .normalization = demix::ScovNormalization::P11},
                                  {32, 32}, cpu64());
  const demix::ScatteringCovOperator none(
      {.J = J, .L = L, .normalization = demix::ScovNormalization::None}, {32, 32}, cpu64());
  const at::Tensor x = at::rand({1, 32, 32}, at::kDouble),
                   r = 3 * at::rand({1, 32, 32}, at::kDouble);
  const demix::Coefficients own = op.forward(x);
  const demix::Reference self = op.reference(x);
  EXPECT_EQ(self.get("P11").sizes(), (std::vector<int64_t>{1, J, J, L, L}));
  EXPECT_TRUE(at::allclose(op.forward(x, self).values, own.values, 1e-13, 0)); // its own reference
  const demix::Reference ref = op.reference(r);
  const demix::ScatteringCovTensors t = op.forward_tensors(x, ref), raw = none.forward_tensors(x);
  // C01 and C11 divided by the reference's P00 and P11 (as the map's own without a reference).
  const at::Tensor P = ref.get("P11")[0], P00 = ref.get("P00")[0];
  const at::Tensor c01 = raw.C01[0] / at::sqrt(P00.view({1, J, 1, L}) * P);
  const at::Tensor c11 =
      raw.C11_pre_norm[0] / at::sqrt(P.view({J, 1, J, L, 1, L}) * P.view({1, J, J, 1, L, L}));
  const at::Tensor v01 = at::logical_not(at::isnan(at::real(c01)));
  const at::Tensor v11 = at::logical_not(at::isnan(at::real(c11)));
  EXPECT_TRUE(at::allclose(t.C01[0].masked_select(v01), c01.masked_select(v01), 1e-12, 0));
  EXPECT_TRUE(at::allclose(t.C11[0].masked_select(v11), c11.masked_select(v11), 1e-12, 0));
  // The P11 class stays the map's own.
  EXPECT_TRUE(at::equal(op.forward(x, ref).select("P11").values, own.select("P11").values));
  EXPECT_TRUE(none.reference(r).empty()); // nothing to normalise by
}

TEST(ScatteringCov, NoNormalisationGivesThePreNormalisedC11) {
  const demix::ScatteringCovOperator p00({.J = 3, .L = 2}, {32, 32}, cpu64());
  const demix::ScatteringCovOperator none(
      {.J = 3, .L = 2, .normalization = demix::ScovNormalization::None}, {32, 32}, cpu64());
  const at::Tensor x = at::rand({1, 32, 32}, at::kDouble);
  const demix::ScatteringCovTensors t = p00.forward_tensors(x);
  const at::Tensor c11 = none.forward(x).select("C11").values;
  const at::Tensor valid = at::logical_not(at::isnan(at::real(t.C11_pre_norm)));
  EXPECT_TRUE(at::allclose(c11.flatten(), t.C11_pre_norm.masked_select(valid), 1e-14, 0));
}

TEST(ScatteringCov, InvariantToPeriodicTranslations) {
  for (auto sum : {demix::ScovFrequencySum::Cropped, demix::ScovFrequencySum::Full}) {
    const demix::ScatteringCovOperator op({.J = 4, .L = 4, .frequency_sum = sum}, {64, 48},
                                          cpu64());
    const at::Tensor x = at::rand({2, 64, 48}, at::kDouble);
    const demix::Coefficients a = op.forward(x), b = op.forward(at::roll(x, {5, -17}, {1, 2}));
    for (const auto& cls : a.classes)
      // A translation multiplies x_hat and every I1_hat by the same phase, which cancels in every
      // product: only float64 rounding differs (~1e-15 of each class's largest value).
      EXPECT_LT(class_error(b, a, cls), 1e-10) << cls;
  }
}

TEST(ScatteringCov, GradientMatchesFiniteDifferences) {
  const demix::ScatteringCovOperator op({.J = 3, .L = 4}, {32, 32}, cpu64());
  at::manual_seed(5);
  const at::Tensor x = at::rand({1, 32, 32}, at::kDouble);
  const int64_t K = op.forward(x).size();
  const at::Tensor w = at::randn({1, K}, at::kComplexDouble);
  // A real loss touching every coefficient, real and imaginary parts.
  const auto loss = [&](const at::Tensor& y) { return at::real(op.forward(y).values * w).sum(); };
  // Central differences, h = 1e-5: truncation ~1e-10, rounding ~1e-11, relative to |grad|.
  EXPECT_LT(demix::test::max_directional_gradient_error(loss, x, 4, 1e-5), 1e-6);
  // The same with a reference (its P00 is a constant, not differentiated).
  const demix::Reference ref = op.reference(at::rand({1, 32, 32}, at::kDouble));
  const at::Tensor w_iso = w.narrow(1, 0, op.forward_iso(x, ref).size());
  const auto loss_ref = [&](const at::Tensor& y) {
    return at::real(op.forward_iso(y, ref).values * w_iso).sum();
  };
  EXPECT_LT(demix::test::max_directional_gradient_error(loss_ref, x, 4, 1e-5), 1e-6);
  // The P11 normalisation is differentiated too (the map's own P00 and P11).
  const demix::ScatteringCovOperator p11_op(
      {.J = 3, .L = 4, .normalization = demix::ScovNormalization::P11}, {32, 32}, cpu64());
  const at::Tensor w_p11 = w.narrow(1, 0, p11_op.synthesis_vector_iso(x).size());
  const auto loss_p11 = [&](const at::Tensor& y) {
    return (p11_op.synthesis_vector_iso(y).values * at::real(w_p11)).sum();
  };
  EXPECT_LT(demix::test::max_directional_gradient_error(loss_p11, x, 4, 1e-5), 1e-6);
}

TEST(ScatteringCov, Float32AgreesWithFloat64) {
  demix::Context ctx32({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float32});
  const demix::ScatteringCovOperator op64({.J = 4, .L = 4}, {64, 64}, cpu64());
  const demix::ScatteringCovOperator op32({.J = 4, .L = 4}, {64, 64}, ctx32);
  const at::Tensor x = at::rand({1, 64, 64}, at::kDouble);
  const demix::Coefficients a = op64.forward(x);
  demix::Coefficients b = op32.forward(x);
  EXPECT_EQ(b.values.scalar_type(), at::kComplexFloat);
  b.values = b.values.to(at::kComplexDouble);
  for (const auto& cls : a.classes)
    // float32 rounding through FFTs and sums of 4096 terms: ~1e-6 of each class's largest value.
    EXPECT_LT(class_error(b, a, cls), 1e-4) << cls;
}

TEST(ScatteringCov, RejectsBadArguments) {
  const auto ctx = cpu64();
  EXPECT_THROW(demix::ScatteringCovOperator({.J = 0}, {32, 32}, ctx), demix::ValueError);
  EXPECT_THROW(demix::ScatteringCovOperator({.J = 6}, {32, 32}, ctx), demix::ValueError);
  EXPECT_THROW(demix::ScatteringCovOperator({.J = 2, .L = 0}, {32, 32}, ctx), demix::ValueError);
  const demix::ScatteringCovOperator op({.J = 2}, {32, 32}, ctx);
  EXPECT_THROW(op.forward(at::zeros({1, 31, 32})), demix::ShapeError);
  EXPECT_THROW(op.forward(at::zeros({32, 32}, at::kInt)), demix::ValueError);
}

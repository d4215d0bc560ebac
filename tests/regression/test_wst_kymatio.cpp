// The WST against kymatio 0.3: `Scattering2D(J=5, shape=(256, 256), L=8, max_order=2)` on the
// shared 256 x 256 dust crop cast to float32 (provenance: ../shared/reference/peers/README.md).
// kymatio computed everything in float32 (filters included), so its values carry float32 rounding
// relative to the largest values of the maps; the comparison is therefore per order, relative to
// the largest |coefficient| of that order, as the reference README advises.

#include <demix/io/npy.hpp>
#include <demix/stats/wst.hpp>

#include "support/shared_files.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

namespace {

const std::string kPeers = demix::test::peers_dir();
const std::string kInput = kPeers + "input_I1_256.npy", kOutput = kPeers + "kymatio_J5_L8_256.npy";

// max |a - b| / max |b| over the channels [begin, end) of (1, C, h, w) arrays.
double relative_error(const at::Tensor& a, const at::Tensor& b, int64_t begin, int64_t end) {
  const at::Tensor x = a.narrow(1, begin, end - begin).to(at::kDouble);
  const at::Tensor y = b.narrow(1, begin, end - begin).to(at::kDouble);
  return ((x - y).abs().max() / y.abs().max()).item<double>();
}

struct Reference {
  at::Tensor input;  // (1, 256, 256) float32
  at::Tensor output; // (1, 681, 8, 8) float32
};

Reference load() {
  return {demix::read_npy(kInput).to(at::kFloat).unsqueeze(0), demix::read_npy(kOutput)};
}

} // namespace

TEST(WstKymatio, ChannelCountFormula) {
  demix::Context ctx({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  for (auto [J, L] : {std::pair{2, 8}, {3, 4}, {4, 8}, {3, 3}}) {
    const demix::WstOperator op({.J = J, .L = L}, {32, 32, demix::Boundary::NonPeriodic}, ctx);
    EXPECT_EQ(op.channels(), 1 + J * L + L * L * J * (J - 1) / 2) << "J=" << J << " L=" << L;
    const demix::WstOperator op1({.J = J, .L = L, .max_order = 1},
                                 {32, 32, demix::Boundary::NonPeriodic}, ctx);
    EXPECT_EQ(op1.channels(), 1 + J * L);
  }
}

TEST(WstKymatio, ReproducesKymatioJ5L8) {
  ASSERT_TRUE(demix::test::shared_files_exist({kInput, kOutput}));
  const Reference ref = load();
  ASSERT_EQ(ref.output.sizes(), (std::vector<int64_t>{1, 681, 8, 8}));
  const int J = 5, L = 8;
  const int64_t n1 = 1 + J * L;
  for (auto precision : {demix::Precision::Float64, demix::Precision::Float32}) {
    demix::Context ctx({.device = demix::DeviceKind::Cpu, .precision = precision});
    const demix::WstOperator op({.J = J, .L = L}, {256, 256, demix::Boundary::NonPeriodic}, ctx);
    const at::Tensor out = op.forward_maps(ref.input);
    ASSERT_EQ(out.sizes(), ref.output.sizes());
    const double e0 = relative_error(out, ref.output, 0, 1);
    const double e1 = relative_error(out, ref.output, 1, n1);
    const double e2 = relative_error(out, ref.output, n1, 681);
    RecordProperty(precision == demix::Precision::Float64 ? "f64" : "f32",
                   std::to_string(e0) + " " + std::to_string(e1) + " " + std::to_string(e2));
    std::printf("kymatio J5 L8 (%s): max rel. error S0 %.3g, S1 %.3g, S2 %.3g\n",
                precision == demix::Precision::Float64 ? "float64" : "float32", e0, e1, e2);
    // kymatio's float32 rounding (filters, FFTs of 320 x 320 maps) is ~3e-7 of the largest
    // coefficient of each order; using pi instead of kymatio's 3.1415 already gives 3e-5..9e-5.
    EXPECT_LT(e0, 1e-5);
    EXPECT_LT(e1, 1e-5);
    EXPECT_LT(e2, 1e-5);
  }
}

TEST(WstKymatio, MaxOrderOneIsThePrefixOfOrderTwo) {
  demix::Context ctx({.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  const at::Tensor x = at::rand({2, 64, 48}, at::kDouble);
  const demix::WstOperator op2({.J = 3, .L = 4}, {64, 48, demix::Boundary::NonPeriodic}, ctx);
  const demix::WstOperator op1({.J = 3, .L = 4, .max_order = 1},
                               {64, 48, demix::Boundary::NonPeriodic}, ctx);
  const at::Tensor s2 = op2.forward_maps(x), s1 = op1.forward_maps(x);
  ASSERT_EQ(s1.size(1), 1 + 3 * 4);
  ASSERT_EQ(s2.size(1), 1 + 3 * 4 + 16 * 3);
  // The same operations in the same order: bit-identical.
  EXPECT_TRUE(at::equal(s1, s2.narrow(1, 0, s1.size(1))));
}

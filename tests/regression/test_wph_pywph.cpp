// WPH against pywph 1.1.3 (double precision) on the shared dust crop: the filters to 1e-10 and
// every moment of both configurations, all four norm/pbc combinations, to 1e-8. Provenance of the
// files:
// ../shared/reference/peers/README.md. Moments are matched by their labels, not by position.

#include <demix/io/npy.hpp>
#include <demix/stats/filters.hpp>
#include <demix/stats/wph.hpp>

#include "support/shared_files.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>

namespace {

const std::string kPeers = demix::test::peers_dir();

struct Config {
  int64_t M;
  int J, L, dn;
};

std::string cfg_name(const Config& c) {
  return "wph_M" + std::to_string(c.M) + "_J" + std::to_string(c.J) + "_L" + std::to_string(c.L) +
         "_dn" + std::to_string(c.dn);
}

at::Tensor input(int64_t M) {
  using at::indexing::Slice;
  return demix::read_npy(kPeers + "input_I1_256.npy")
      .index({Slice(0, M), Slice(0, M)})
      .contiguous();
}

/// Relative error per coefficient, with a floor at 1e-6 of the largest |value| so that coefficients
/// which are zero analytically (imaginary parts of S11 at tau = 0, ~1e-24) do not count.
double max_error(const at::Tensor& ours, const at::Tensor& ref) {
  const double floor = 1e-6 * ref.abs().max().item<double>();
  return ((ours - ref).abs() / at::clamp_min(ref.abs(), floor)).max().item<double>();
}

} // namespace

TEST(WphPywph, FiltersMatch) {
  ASSERT_TRUE(demix::test::shared_files_exist(
      {kPeers + "wph_M128_J5_L4_dn0_psi_f.npy", kPeers + "wph_M128_J5_L4_dn0_phi_f.npy"}));
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor psi = demix::bump_steerable_bank(128, 128, 5, 4, 4, opts);
  const at::Tensor psi_ref = demix::read_npy(kPeers + "wph_M128_J5_L4_dn0_psi_f.npy");
  ASSERT_EQ(psi.sizes(), psi_ref.sizes());
  // 1e-10 of the peak: both sides evaluate the same closed form in float64.
  EXPECT_LT((psi - psi_ref).abs().max().item<double>(), 1e-10 * psi_ref.abs().max().item<double>());
  const at::Tensor phi = demix::gaussian_lowpass_bank(128, 128, {-1, 0, 1}, opts);
  const at::Tensor phi_ref = demix::read_npy(kPeers + "wph_M128_J5_L4_dn0_phi_f.npy");
  ASSERT_EQ(phi.sizes(), phi_ref.sizes());
  EXPECT_LT((phi - phi_ref).abs().max().item<double>(), 1e-10 * phi_ref.abs().max().item<double>());
}

TEST(WphPywph, MomentsMatchEveryConfiguration) {
  ASSERT_TRUE(demix::test::shared_files_exist({kPeers + "input_I1_256.npy"}));
  const demix::Context ctx(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  for (const Config c : {Config{128, 5, 4, 0}, Config{256, 7, 4, 2}}) {
    const at::Tensor x = input(c.M);
    for (const char* norm : {"none", "auto"}) {
      for (int pbc : {1, 0}) {
        const std::string name = cfg_name(c) + "_norm-" + norm + "_pbc-" + std::to_string(pbc);
        SCOPED_TRACE(name);
        const demix::WphOptions o{.J = c.J,
                                  .L = c.L,
                                  .dn = c.dn,
                                  .norm = std::string(norm) == "auto" ? demix::WphNorm::Auto
                                                                      : demix::WphNorm::None};
        const demix::WphOperator op(
            o, {c.M, c.M, pbc ? demix::Boundary::Periodic : demix::Boundary::NonPeriodic}, ctx);
        const demix::Coefficients got = op.forward(x);

        // Reference rows, keyed by their labels.
        const at::Tensor wph_idx = demix::read_npy(kPeers + name + "_wph_indices.npy");
        const at::Tensor wph_val = demix::read_npy(kPeers + name + "_wph_coeffs.npy");
        const at::Tensor sm_idx = demix::read_npy(kPeers + name + "_sm_indices.npy");
        const at::Tensor sm_val = demix::read_npy(kPeers + name + "_sm_coeffs.npy");
        ASSERT_EQ(got.size(), wph_idx.size(0) + sm_idx.size(0));
        std::map<std::vector<int64_t>, int64_t> row_of;
        for (int64_t k = 0; k < got.size(); ++k) {
          auto v = got.labels[k];
          std::vector<int64_t> key(v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + 9);
          if (got.class_id[k].item<int64_t>() == 5) key = {key[0], key[2], key[5], key[8]};
          row_of[key] = k;
        }
        std::vector<int64_t> order;
        for (int64_t r = 0; r < wph_idx.size(0); ++r) {
          auto v = wph_idx[r].contiguous();
          std::vector<int64_t> key(v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + 9);
          ASSERT_TRUE(row_of.count(key)) << "missing moment " << v;
          order.push_back(row_of[key]);
        }
        for (int64_t r = 0; r < sm_idx.size(0); ++r) {
          auto v = sm_idx[r].contiguous();
          std::vector<int64_t> key(v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + 4);
          ASSERT_TRUE(row_of.count(key)) << "missing scaling moment " << v;
          order.push_back(row_of[key]);
        }
        const at::Tensor ours = got.values[0].index_select(0, at::tensor(order, at::kLong));
        const at::Tensor ref = at::cat({wph_val, sm_val});
        const double err_wph = max_error(ours.narrow(0, 0, wph_val.size(0)), wph_val);
        const double err_sm = max_error(ours.narrow(0, wph_val.size(0), sm_val.size(0)), sm_val);
        EXPECT_LT(err_wph, 1e-8); // double vs double: the bound
        EXPECT_LT(err_sm, 1e-8);
        std::cout << name << ": max relative error WPH " << err_wph << ", scaling " << err_sm
                  << "\n";
      }
    }
  }
}

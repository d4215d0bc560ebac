#pragma once
// The scattering covariance of Cheng, Morel, Allys, Ménard & Mallat (PNAS Nexus 3, pgae103, 2024),
// as computed by SihaoCheng/scattering_transform (`Scattering2d.scattering_cov`, normalisation
// 'P00' or 'P11'), with that code's Morlet filters (demix/stats/morlet.hpp, variant Cheng).
// Periodic boundaries.
//
// With x_hat = FFT2(x), I1[j,l] = |x * psi_{j,l}| (an M x N map), I1_hat = FFT2(I1), <.> the
// spatial mean and S(j) the frequency set of scale j (see ScovFrequencySum):
//
//   mean, var       = <x>, sum (x - <x>)^2 / (MN - 1)   (unbiased, as torch.var)
//   P00[j,l]        = <I1[j,l]^2>
//   S1[j,l]         = <I1[j,l]>
//   C01[j1,j2,l1,l2]       = sum_{k in S(j2)} x_hat conj(I1_hat[j1,l1]) psi_hat[j2,l2] / (MN)^2
//                            / sqrt(P00[j1,l1] P00[j2,l2])                       for j1 <= j2
//   C11[j1,j2,j3,l1,l2,l3] = sum_{k in S(j3)} I1_hat[j1,l1] conj(I1_hat[j2,l2]) psi_hat[j3,l3]^2
//                            / (MN)^2 / sqrt(P00[j1,l1] P00[j2,l2])              for j1 <= j2 <= j3
//
// (C01 carries one factor psi_hat, not two: that is what the reference code computes.) The power
// of the second layer, for j1 <= j2 (the diagonal j1 = j2, l1 = l2 of the C11 sums before
// normalisation):
//   P11[j1,j2,l1,l2]       = <|I1[j1,l1] * psi_{j2,l2}|^2>
//                          = sum_{k in S(j2)} |I1_hat[j1,l1]|^2 psi_hat[j2,l2]^2 / (MN)^2
// The isotropic reductions average the real part over l1 at fixed angle differences:
//   P00_iso[j] = mean_l P00[j,l], S1_iso[j] = mean_l S1[j,l],
//   C01_iso[j1,j2,dl] = mean_l1 Re C01[j1,j2,l1,l1+dl mod L],
//   C11_iso[j1,j2,j3,dl2,dl3] = mean_l1 Re C11[j1,j2,j3,l1,l1+dl2,l1+dl3 (mod L)],
//   P11_iso[j1,j2,dl] = mean_l1 P11[j1,j2,l1,l1+dl mod L] (C11_pre_norm_iso likewise).
//
// Everything is ATen operations: differentiable, the same code on CPU and CUDA, float32/float64.

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/coefficients.hpp>
#include <demix/stats/statistic.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// What C01 and C11 are divided by.
enum class ScovNormalization {
  /// Cheng's 'P00': by sqrt(P00[j1,l1] P00[j2,l2]), the P00 of the reference maps when a
  /// Reference is passed (reference(), Cheng's use_ref=True, for syntheses), else the map's own.
  P00,
  /// Not divided: C01 and C11 are the raw cross-spectra (C11 is then Cheng's C11_pre_norm).
  None,
  /// Cheng's 'P11': C01[j1,j2,l1,l2] by sqrt(P00[j2,l2] P11[j1,j2,l1,l2]) and
  /// C11[j1,j2,j3,l1,l2,l3] by sqrt(P11[j1,j3,l1,l3] P11[j2,j3,l2,l3]) (so C11 = 1 where j1 = j2
  /// and l1 = l2); P00 and P11 are the reference maps' when a Reference is passed, else the map's
  /// own.
  /// forward() then also returns P11 and P11_iso, and the synthesis vectors end with log P11.
  P11,
};

/// Which frequencies the C01 / C11 sums run over.
enum class ScovFrequencySum {
  /// Cheng's code ("fast" algorithm): for the outer wavelet of scale j, only the frequency indices
  /// -d <= k < d on each axis, d = max(8, min(ceil(M / 2^j), M / 2)) (the same with N for the
  /// columns; d is also capped at M / 2 so no frequency is counted twice on tiny images). The
  /// Morlet wavelets are not exactly band-limited, so this changes C01 by ~1e-5 relative: keep it
  /// to reproduce that code.
  Cropped,
  /// All M x N frequencies: the plain definition (slower for the large scales).
  Full,
};

/// The precision of the filter values.
enum class ScovFilterRounding {
  None,    ///< filters computed in float64, then cast to the context's precision
  Float32, ///< filter values rounded to float32 and squared in float32, as Cheng's default
           ///< ('single') bank is; then used in the context's precision (reproduces that code
           ///< run in float64 to ~1e-13)
};

/// Which coefficients forward() (and so the Statistic interface) returns.
enum class ScovCoefficients {
  All,       ///< every class, see forward()
  Isotropic, ///< "mean", "var" and the isotropic classes only, as forward_iso()
};

struct ScatteringCovOptions {
  int J = 0; ///< number of dyadic scales j = 0..J-1; >= 1 and 2^J <= min(H, W) (Cheng: log2(min)-1)
  int L = 4; ///< number of orientations in [0, pi); >= 1 (Cheng's default 4)
  ScovNormalization normalization = ScovNormalization::P00;      ///< see ScovNormalization
  ScovFrequencySum frequency_sum = ScovFrequencySum::Cropped;    ///< see ScovFrequencySum
  ScovFilterRounding filter_rounding = ScovFilterRounding::None; ///< see ScovFilterRounding
  ScovCoefficients coefficients = ScovCoefficients::All;         ///< see ScovCoefficients
  /// If set, hears (steps done, J + 1) as the coefficients are computed (the first-order fields,
  /// then each scale): a progress report for a large map (1024^2: ~40 s on two CPU cores). Not
  /// part of the statistic's keywords.
  std::function<void(int64_t done, int64_t total)> progress;
};

/// The statistics in Cheng's array shapes (what `scattering_cov` returns under the same keys).
/// Entries outside j1 <= j2 (C01) or j1 <= j2 <= j3 (C11) are NaN, as there.
struct ScatteringCovTensors {
  at::Tensor mean;             ///< (B,) real
  at::Tensor var;              ///< (B,) real, unbiased
  at::Tensor P00;              ///< (B, J, L) real
  at::Tensor S1;               ///< (B, J, L) real
  at::Tensor C01;              ///< (B, J, J, L, L) complex: [j1, j2, l1, l2]
  at::Tensor C11;              ///< (B, J, J, J, L, L, L) complex: [j1, j2, j3, l1, l2, l3]
  at::Tensor C11_pre_norm;     ///< (B, J, J, J, L, L, L) complex: C11 before normalisation
  at::Tensor P00_iso;          ///< (B, J) real
  at::Tensor S1_iso;           ///< (B, J) real
  at::Tensor C01_iso;          ///< (B, J, J, L) real: [j1, j2, dl]
  at::Tensor C11_iso;          ///< (B, J, J, J, L, L) real: [j1, j2, j3, dl2, dl3]
  at::Tensor C11_pre_norm_iso; ///< (B, J, J, J, L, L) real: C11_pre_norm averaged as C11_iso
  at::Tensor P11;              ///< (B, J, J, L, L) real: [j1, j2, l1, l2], NaN where j1 > j2
  at::Tensor P11_iso;          ///< (B, J, J, L) real: [j1, j2, dl], NaN where j1 > j2
};

class ScatteringCovOperator final : public Statistic {
public:
  /// Builds (or takes from the cache) the filters for images of the grid's size on `context`.
  /// Throws ValueError for options out of range or a non-periodic grid.
  ScatteringCovOperator(const ScatteringCovOptions& options, const Grid2d& grid,
                        const Context& context);

  const char* name() const override { return "scov"; }
  /// The labels of forward(): every class, or the isotropic ones (options.coefficients).
  const Coefficients& labels() const override { return labels_; }
  std::vector<StatisticKeyword> keywords() const override;

  /// The normalisation statistics of reference maps (B_ref, H, W) or (H, W), detached, to
  /// normalise C01 and C11 of later calls (Cheng's add_ref + use_ref=True): tensors "P00"
  /// (B_ref, J, L) real and, under normalisation P11, "P11" (B_ref, J, J, L, L) real (NaN where
  /// j1 > j2). Normalisation None: an empty Reference. Passed to the calls below, B_ref must be 1
  /// or their batch size (ShapeError).
  Reference reference(const at::Tensor& maps /* (B_ref, H, W) or (H, W) */) const override;

  /// All statistics: values (B, K) complex (real classes have zero imaginary part), classes
  /// {"mean", "var", "P00", "S1", "C01", "C11", "P00_iso", "S1_iso", "C01_iso", "C11_iso"} in this
  /// order, labels (j1, j2, j3, l1, l2, l3) with -1 where not applicable; the isotropic classes
  /// put the angle differences in l2 (dl2) and l3 (dl3), with l1 = -1 (Cheng's index convention).
  /// Within a class, coefficients are in row-major order of their labels.
  /// J = 7, L = 4: K = 2 + 28 + 28 + 448 + 5376 + 7 + 7 + 112 + 1344 = 7352. Normalisation P11
  /// appends the classes "P11" (labels j1 j2 -1 l1 l2 -1) and "P11_iso" (j1 j2 -1 -1 dl -1).
  /// x: (B, H, W) or (H, W) real; cast to the operator's device and dtype (differentiably).
  /// `ref`: see reference(); empty: each map normalised by its own P00 (P11). With
  /// options.coefficients = Isotropic, forward() returns forward_iso()'s coefficients.
  Coefficients forward(const at::Tensor& x, const Reference& ref = {}) const override;
  /// Only "mean", "var" and the isotropic classes (J = 7, L = 4: K = 2 + 7 + 7 + 112 + 1344 = 1472;
  /// Cheng's for_synthesis_iso has the same count with mean/std in place of mean and var).
  Coefficients forward_iso(const at::Tensor& x, const Reference& ref = {}) const;
  /// The same statistics in Cheng's shapes, for comparisons with that code.
  ScatteringCovTensors forward_tensors(const at::Tensor& x, const Reference& ref = {}) const;

  /// Cheng's 'for_synthesis' vector, the normalised coefficient set that code's syntheses match:
  /// real values (B, K), classes in this order (class_id = that code's index type 0..7):
  ///   "mean/std" (<x> / sqrt(var)), "log P00", "log S1", "C01re", "C01im", "C11re", "C11im",
  ///   and with normalisation P11 "log P11";
  /// C01 and P11 over j1 <= j2, C11 over j1 <= j2 <= j3 (without the entries equal to 1 by
  /// construction, j1 = j2 and l1 = l2, under normalisation P11). Labels as forward()'s (the
  /// rows j1 j2 j3 l1 l2 l3 of that code's index_for_synthesis). J = 5, L = 4: K = 5001 (P00),
  /// 4761 (P11).
  Coefficients synthesis_vector(const at::Tensor& x /* (B, H, W) or (H, W) */,
                                const Reference& ref = {}) const;
  /// Cheng's 'for_synthesis_iso': "mean/std", "log P00_iso", "log S1_iso", "C01_iso", "C11_iso"
  /// (without j1 = j2, dl2 = 0 under normalisation P11) and with normalisation P11 "log P11_iso".
  /// J = 7, L = 4, P00: K = 1471.
  Coefficients synthesis_vector_iso(const at::Tensor& x /* (B, H, W) or (H, W) */,
                                    const Reference& ref = {}) const;

  const ScatteringCovOptions& options() const { return options_; }

private:
  struct Compact; // the statistics as flat vectors, see scattering_cov.cpp
  at::Tensor check_input(const at::Tensor& x) const;
  Compact compute(const at::Tensor& x, const Reference& ref) const;
  at::ScalarType cplx_type() const;
  /// P11 (B, K2) real in the canonical pair order from I1_hat (B, J L, H, W), with the squared
  /// filters rounded as C11's are (`as_c11`) or squared in the working precision (`squared`).
  void p11(const at::Tensor& I1_hat, at::Tensor* as_c11, at::Tensor* squared) const;
  Coefficients assemble(const Compact& c, bool anisotropic) const;
  Coefficients assemble_synthesis(const Compact& c, bool iso) const;
  at::Tensor scatter_pairs(const at::Tensor& v /* (B, K2) */) const; // -> (B, J, J, L, L), NaN

  ScatteringCovOptions options_;
  c10::TensorOptions tensor_options_;
  at::Tensor psi_;         // (J, L, H, W) real, Fourier
  struct Scale {           // the frequency set S(j) and the filters cut to it
    at::Tensor rows, cols; // int64 on device
    at::Tensor psi;        // (L, P) complex: psi_hat[j] on S(j), P = |rows| |cols|
    at::Tensor psi2;       // (L, P) complex: psi_hat[j]^2 on S(j)
    at::Tensor psi2_sq;    // (2 L, P) real: psi_hat[j]^2 as in psi2, then in the real dtype
  };
  std::vector<Scale> scales_;
  // Gather tables (int64 on device) from the per-scale blocks to the canonical orders.
  at::Tensor c01_gather_, c11_gather_; // (K2,), (K3,)
  at::Tensor c01_norm_a_, c01_norm_b_; // (K2,) flat (j, l) indices into P00 (B, J L)
  at::Tensor c11_norm_a_, c11_norm_b_; // (K3,)
  at::Tensor c01_iso_, c11_iso_;       // (K2i, L), (K3i, L) indices into C01 / C11
  at::Tensor c11_p11_a_, c11_p11_b_;   // (K3,) P11 (K2) entries (j1 j3 l1 l3), (j2 j3 l2 l3)
  at::Tensor c11_nontrivial_;          // C11 entries but j1 = j2 and l1 = l2
  at::Tensor c11_iso_nontrivial_;      // C11_iso entries but j1 = j2 and dl2 = 0
  at::Tensor c11_nontrivial_labels_, c11_iso_nontrivial_labels_;         // their labels (K, 6) CPU
  at::Tensor c01_labels_, c11_labels_, c01_iso_labels_, c11_iso_labels_; // (K, 6) int64 CPU
  at::Tensor c01_flat_; // (K2,) int64 on device: flat (j1, j2, l1, l2) index of each pair
  Coefficients labels_; // values undefined
};

} // namespace demix
#pragma GCC visibility pop

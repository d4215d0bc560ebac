#pragma once
// Wavelet phase harmonics (Allys+2020, Regaldo-Saint Blancard+2021/2023), defined as pywph 1.1
// defines them: bump-steerable wavelets, Gaussian low-pass, the default model
// (S11, S00, S01, C01, Cphase, L) on the "exp" shift grid, norm none/auto, periodic or not.
//
//   C(lambda1, p1, lambda2, p2, tau)
//       = < ([x*psi1]^p1 - m1)(r + tau) conj([x*psi2]^p2 - m2)(r) > / (s1 s2)
//
// with [z]^p = |z| e^{i p arg z} (p = 0: modulus), m the spatial mean and s = 1 (norm None) or the
// standard deviation (norm Auto; the means and deviations then come from a reference map).
//
// Layout of the code: src/stats/wph_moments.cpp (the model: which moments), wph_plan.cpp (the
// tables built once per operator, src/stats/detail/wph_plan.hpp), wph.cpp (execution), with the
// Fourier-space engine of periodic maps in src/stats/detail/wph_spectral.*.

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/coefficients.hpp>
#include <demix/stats/statistic.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace demix::detail {
struct WphPlan; // private (src/stats/detail/wph_plan.hpp): declared before the exported region
}

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

enum class WphNorm {
  None, ///< subtract each field's own spatial mean (covariances), no scaling
  Auto, ///< subtract the reference map's means and divide by its standard deviations (pywph "auto")
};

struct WphOptions {
  int J = 7;                 ///< number of dyadic scales: 1 <= J and 2^J < min(H, W)
  int L = 4;                 ///< number of angles in [0, pi)
  int dn = 0;                ///< radial steps of the shift grid tau (0: no shifts); pywph's dn
  int A = 4;                 ///< azimuthal steps in [0, pi) of the shift grid; pywph's A
  bool complex_data = false; ///< complex maps (Q + iU): 2L angles in [0, 2 pi) and pseudo moments
  WphNorm norm = WphNorm::None;
  /// Boundary::NonPeriodic grids only: border cut, in units of 2^J pixels; the cut borders are
  /// zero-padded for shifts and the shifted moments reweighted (pywph pbc=False).
  double cut_param = 0.5;
  /// Memory the intermediate results may take (bytes). Batches are split into slices of maps and
  /// covariances into chunks to stay within it. 0: 40% of the device's free memory at each call.
  int64_t memory_bytes = 0;
  /// If set, hears (chunks done, chunks in all) as forward() computes the moments of periodic
  /// maps chunk by chunk, for each slice of the batch: a progress report for a large map (a
  /// 1024^2 map takes ~20-30 s on two CPU cores). Called on the calling thread; not part of the
  /// statistic's keywords.
  std::function<void(int64_t done, int64_t total)> progress;
};

/// Builds the filters and the moment list once; every method is const and batched. To replay a
/// loss + gradient as a CUDA graph, record the caller's whole step with StepGraph
/// (optim/step_graph.hpp): periodic maps make no host synchronisation.
class WphOperator final : public Statistic {
public:
  /// ValueError for options out of range (J, L, dn, A, memory_bytes, a border cut that leaves
  /// nothing), ShapeError for maps smaller than 8 x 8.
  WphOperator(const WphOptions& options, const Grid2d& grid, const Context& context);

  const char* name() const override { return "wph"; }
  /// Labels: j1 t1 p1 j2 t2 p2 n a pseudo (pywph's 9-tuple); for class "L" (scaling moments)
  /// j1 = j2 = the low-pass scale j (which may be -1), t = n = a = -1.
  const Coefficients& labels() const override;
  std::vector<StatisticKeyword> keywords() const override;
  bool supports_cross() const override;
  bool supports_complex() const override { return options_.complex_data; }

  /// Norm Auto: the means and deviations of every field of each reference map (B0, H, W) or
  /// (H, W): tensors "field_mean" (B0, n_fields) complex, "field_std" (B0, n_fields) complex with
  /// real values, "scaling" (B0, n_sm, 2, 2) complex (scaling moments: side, [mean, std]). As
  /// pywph's first call with norm="auto" stores them. Norm None: an empty Reference.
  Reference reference(const at::Tensor& maps /* (B0, H, W) or (H, W) */) const override;

  /// WPH and scaling moments of each map: complex values (B, K). Norm Auto with an empty `ref`
  /// normalises each map by its own statistics, held constant for gradients (as pywph's stored
  /// normalisation is); `ref` (B0 = 1 or B maps) is ignored under norm None. Differentiable with
  /// respect to x.
  Coefficients forward(const at::Tensor& x /* (B, H, W) or (H, W), real or complex */,
                       const Reference& ref = {}) const override;

  /// Cross-WPH (pywph's cross=True): every moment with its first field [x*psi1]^p1 from x and its
  /// second field [y*psi2]^p2 from y, scaling moments alike; forward_cross(x, x) == forward(x).
  /// Periodic maps; norm Auto divides each field by its own map's deviation (held constant), as
  /// pywph's first call does, so `ref` must be empty (ValueError). Differentiable in x and y.
  Coefficients forward_cross(const at::Tensor& x /* (B, H, W) or (H, W) */,
                             const at::Tensor& y /* like x */,
                             const Reference& ref = {}) const override;

  /// The loss of each map and its gradient, computed chunk by chunk so that memory stays at the
  /// wavelet transform plus one chunk (forward() + backward() would keep every chunk's graph).
  LossResult loss_and_grad(const at::Tensor& x /* (B, H, W) or (H, W) */,
                           const CoefficientLoss& loss, const Reference& ref = {},
                           bool want_grad = true) const override;

  const WphOptions& options() const { return options_; }

private:
  WphOptions options_;
  std::shared_ptr<const detail::WphPlan> plan_; // the tables (src/stats/detail/wph_plan.hpp)
};

/// One-shot convenience: builds the operator for x's shape (periodic) and applies it.
Coefficients wph(const at::Tensor& x /* (B, H, W) */, const WphOptions& options = {},
                 const Context& context = Context());

} // namespace demix
#pragma GCC visibility pop

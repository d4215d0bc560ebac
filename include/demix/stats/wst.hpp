#pragma once
// The 2D wavelet scattering transform (WST) of kymatio 0.3 (`Scattering2D`, torch backend), with
// its Morlet filters (demix/stats/morlet.hpp, variant Kymatio):
//
//   S0 = x * phi_J
//   S1[j1, t1] = |x * psi_{j1,t1}| * phi_J
//   S2[j1, t1, j2, t2] = ||x * psi_{j1,t1}| * psi_{j2,t2}| * phi_J        (j2 > j1 only)
//
// computed in Fourier space with the intermediate maps subsampled to their bandwidth, exactly as
// kymatio does: |x * psi_j1| is kept at resolution 2^-j1, the second wavelet uses kymatio's
// periodised copy of psi_j2 at that resolution, and every S map ends at resolution 2^-J.
// Channels: C = 1 + J L + L^2 J (J - 1) / 2, in kymatio's order: S0; S1 by (j1, t1); S2 by
// (j1, t1, j2, t2) with j2 > j1.
//
// Everything is ATen operations: differentiable with autograd, the same code on CPU and CUDA, in
// float32 or float64 (the context's precision).

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/coefficients.hpp>
#include <demix/stats/morlet.hpp>
#include <demix/stats/statistic.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct WstOptions {
  int J = 0; ///< number of dyadic scales (filters j = 0..J-1, output at resolution 2^-J); >= 1
  int L = 8; ///< number of orientations in [0, pi); >= 1 (kymatio's default, tuned for 8)
  int max_order = 2; ///< highest scattering order computed: 1 or 2
  /// If set, hears (first-order scales done, J) as forward() goes: a progress report for a large
  /// map (1024^2: ~50 s on two CPU cores). Not part of the statistic's keywords.
  std::function<void(int64_t done, int64_t total)> progress;
};

/// The grid's boundary decides how the image is extended beyond its borders:
///  * Boundary::NonPeriodic (kymatio's behaviour): reflection padding (no edge repetition) to
///    H_p = ((H + 2^J) / 2^J + 1) 2^J, split (H_p - H) / 2 before and (H_p - H + 1) / 2 after (the
///    same for W); filters are built on the padded grid; the outputs drop one pixel of border at
///    resolution 2^-J, so maps are (H / 2^J, W / 2^J) (integer division). Needs 2^J <= min(H, W).
///  * Boundary::Periodic: no padding, the image is treated as periodic (simulation boxes), filters
///    are built on the H x W grid and nothing is cropped. Needs H and W divisible by 2^J. The maps
///    of an image rolled by a multiple of 2^J pixels are then the rolled maps, and their means are
///    unchanged. Other shifts are NOT exact symmetries: the intermediate modulus maps are
///    subsampled (kymatio's algorithm), which aliases; on the 256 x 256 dust crop at J = 5, L = 8
///    a shift by (1, 2) pixels moves the means by up to 0.4% (S1) and 1.2% (S2) of their maximum.
class WstOperator final : public Statistic {
public:
  /// Builds (or takes from the cache) the filters for images of the grid's size on `context`'s
  /// device and precision. Throws ValueError for options out of range (J < 1, L < 1, max_order
  /// not 1 or 2, 2^J > min(height, width), Periodic with a size not divisible by 2^J).
  WstOperator(const WstOptions& options, const Grid2d& grid, const Context& context);

  const char* name() const override { return "wst"; }
  /// Classes {"S0", "S1", "S2"}, labels (order, j1, t1, j2, t2) with -1 where not applicable.
  const Coefficients& labels() const override { return labels_; }
  std::vector<StatisticKeyword> keywords() const override;

  /// Spatial means of the scattering maps: values (B, C) real (B = 1 for an (H, W) input).
  /// x: (B, H, W) or (H, W) real; cast to the operator's device and dtype (differentiably). The
  /// WST normalises nothing: `ref` must be empty (ValueError).
  Coefficients forward(const at::Tensor& x, const Reference& ref = {}) const override;

  /// kymatio's output array: (B, C, H / 2^J, W / 2^J) real (for an (H, W) input, (C, h, w)).
  at::Tensor forward_maps(const at::Tensor& x) const;

  int64_t channels() const { return labels_.size(); }
  int64_t padded_height() const { return Mp_; }
  int64_t padded_width() const { return Np_; }
  const WstOptions& options() const { return options_; }

private:
  bool reflect() const { return std::get<Grid2d>(grid()).boundary == Boundary::NonPeriodic; }
  at::Tensor check_input(const at::Tensor& x) const; // -> (B, H, W) on device, real dtype
  at::Tensor low_pass(const at::Tensor& U_hat, int res) const;
  at::Tensor unpad(const at::Tensor& s) const;

  WstOptions options_;
  int64_t Mp_ = 0, Np_ = 0;
  c10::TensorOptions tensor_options_;
  at::Tensor pad_rows_, pad_cols_; // (Mp,), (Np,) int64 on device: source index of each padded row
  MorletBank bank_;
  Coefficients labels_; // values undefined
};

} // namespace demix
#pragma GCC visibility pop

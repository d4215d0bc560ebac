#pragma once
// The isotropic (azimuthally binned) power spectrum of 2-D maps, and the cross-spectrum of two.
//
// With x_hat = FFT2(x) (unnormalised forward DFT, as numpy and torch) on an H x W map and k the
// wavenumber in cycles per pixel (k_y = fftfreq(H), k_x = fftfreq(W), |k| = sqrt(k_x^2 + k_y^2)):
//
//   P[b]  = mean over the modes k of bin b of  |x_hat(k)|^2 / (H W)
//   Pxy[b] = mean over the modes k of bin b of  Re(x_hat(k) conj(y_hat(k))) / (H W)
//
// Normalisation (Parseval): sum over all k of |x_hat(k)|^2 / (H W)^2 = mean of |x|^2, so
//   sum_b counts[b] P[b] / (H W) = mean of |x|^2   when every mode is in a bin,
// and a white noise of variance sigma^2 has a flat spectrum E P[b] = sigma^2 (its statistical
// error on one real map is sigma^2 sqrt(2 / counts[b])).
//
// The bin index of every mode and the mode counts are computed once, at construction, on the
// context's device. Everything in forward is ATen operations: differentiable with autograd, the
// same code on CPU and CUDA, in float32 or float64 (the context's precision).

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/coefficients.hpp>
#include <demix/stats/statistic.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// How the wavenumber axis is cut into bins.
enum class PsBinning {
  /// With bins = 0: one bin per integer multiple of the fundamental dk = 1 / min(H, W) cycles per
  /// pixel, bin b = 0, 1, ..., n holding the modes with b - 1/2 <= |k| / dk < b + 1/2 (bin 0 is
  /// the k = 0 mode alone, the map's mean), centre b dk.
  /// With bins > 0: `bins` equal-width bins over (0, k_max] (the k = 0 mode is in no bin), bin b
  /// = [b, b + 1) k_max / bins (the last one closed), centre (b + 1/2) k_max / bins.
  Linear,
  /// `bins` (> 0) bins of equal width in log |k| from the smallest non-zero |k| of the grid,
  /// 1 / max(H, W), to k_max (both included); the k = 0 mode is in no bin; centre: the geometric
  /// mean of the bin's edges.
  Log,
};

struct PowerSpectrumOptions {
  /// Number of bins; >= 0. 0 (Linear only): one bin per integer |k| / dk, see PsBinning::Linear.
  int bins = 0;
  /// Linear or logarithmic bins; see PsBinning.
  PsBinning binning = PsBinning::Linear;
  /// Subtract each map's spatial mean before transforming. It changes only the k = 0 mode, which
  /// is binned only by the default integer binning (bin 0, then exactly 0).
  bool subtract_mean = true;
  /// false: the bins stop at the Nyquist wavenumber k_max = 1/2 cycle per pixel (the modes beyond
  /// it, in the corners of the Fourier plane, are in no bin; the integer binning's last annulus
  /// b = min(H, W) / 2 reaches 1/2 + dk/2). true: the bins extend to the largest |k| of the grid
  /// (sqrt(2)/2 for an even square), so that every mode (but k = 0 for Log and explicit Linear
  /// bins) is in exactly one bin and Parseval's sum over the bins is the whole mean of |x|^2.
  bool include_corners = false;
};

class PowerSpectrumOperator final : public Statistic {
public:
  /// Precomputes the bin of every mode of a height x width map on `context`'s device. Throws
  /// ValueError for options out of range (bins < 0, Log with bins = 0, height or width < 2, or so
  /// many bins that one of them holds no mode; the message names the empty bin's edges).
  /// The grid must be periodic (ValueError otherwise).
  PowerSpectrumOperator(const PowerSpectrumOptions& options, const Grid2d& grid,
                        const Context& context);

  const char* name() const override { return "ps"; }
  /// Class {"P"}, labels ("bin") = 0..K-1.
  const Coefficients& labels() const override { return labels_; }
  std::vector<StatisticKeyword> keywords() const override;
  bool supports_cross() const override { return true; }
  bool supports_complex() const override { return true; }

  /// Binned power spectrum: values (B, K) real (B = 1 for an (H, W) input), class {"P"}, labels
  /// ("bin") = 0..K-1.
  /// x: (B, H, W) or (H, W), real or complex floating point; cast to the operator's device and
  /// dtype (differentiably).
  Coefficients forward(const at::Tensor& x, const Reference& ref = {}) const override;

  /// Binned cross-spectrum Re(x_hat conj(y_hat)) / (H W): values (B, K) real, class {"Pxy"},
  /// labels ("bin"). forward_cross(x, x) equals forward(x).
  /// x, y: (B, H, W) or (H, W) of the same shape, real or complex floating point.
  Coefficients forward_cross(const at::Tensor& x, const at::Tensor& y,
                             const Reference& ref = {}) const override;

  /// Bin centres, see PsBinning: (K,) float64 CPU, in cycles per pixel, strictly increasing.
  at::Tensor bin_centres() const { return centres_; }
  /// Bin edges: (K + 1,) float64 CPU, in cycles per pixel (for the integer binning, bin 0's lower
  /// edge is -dk / 2).
  at::Tensor bin_edges() const { return edges_; }
  /// Number of Fourier modes in each bin: (K,) int64 CPU, all >= 1.
  at::Tensor counts() const { return counts_; }
  int64_t num_bins() const { return counts_.numel(); }
  const PowerSpectrumOptions& options() const { return options_; }

private:
  at::Tensor check_input(const at::Tensor& x, const char* name) const; // -> (B, H, W) on device
  at::Tensor bin_average(const at::Tensor& power) const; // (B, H, W) real -> (B, K) real
  Coefficients make_coefficients(const at::Tensor& values, const char* cls) const;

  PowerSpectrumOptions options_;
  c10::TensorOptions tensor_options_; // device and real dtype
  at::Tensor bin_index_;  // (H W,) int64 on device: bin of each mode, K for modes in no bin
  at::Tensor inv_counts_; // (K,) real on device: 1 / counts
  at::Tensor counts_;     // (K,) int64 CPU
  at::Tensor centres_;    // (K,) float64 CPU
  at::Tensor edges_;      // (K + 1,) float64 CPU
  Coefficients labels_;   // values undefined
};

} // namespace demix
#pragma GCC visibility pop

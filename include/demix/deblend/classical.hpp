#pragma once
// A classical deblender in the style of the SDSS photometric pipeline (Lupton; Stoughton et al.
// 2002, AJ 123, 485, section 4.4): the baseline that needs no trained model.
//
// For galaxy i with nearest pixel p_i, in band b (or on the band sum, see SymmetryImage):
//   1. symmetric template  T_ib(x) = max(0, min(I_b(x), I_b(2 p_i - x)))  (0 where 2 p_i - x falls
//      outside the image, or when noise levels are given, where x or 2 p_i - x is outside the
//      blend's footprint): a galaxy is assumed symmetric about its centre, so light that is not
//      matched by its mirror image belongs to someone else. The footprint, as SDSS's, is the set
//      of pixels where the smoothed noise-weighted band sum (detection.hpp's significance nu) is
//      above footprint_threshold: without it, the positive noise of the whole image would feed
//      the templates (min of two noisy pixels clipped at 0) and bias the sharing of noise pixels
//      towards galaxies with more room around them;
//   2. amplitudes: least squares of the blend on the templates, per blend and band,
//      I_b ~ sum_i w_ib T_ib (weights clipped at 0; FluxSharing::Proportional uses w = 1);
//   3. flux sharing: each pixel's value goes to the children in proportion to w_ib T_ib(x):
//      child_ib(x) = I_b(x) w_ib T_ib(x) / sum_j w_jb T_jb(x).
//      Pixels that no template covers (sum = 0) are shared in proportion to 1 / (1 + d_i(x)^2),
//      d_i the distance to galaxy i (independent of the pixel's value: no bias from noise), so that
//      the children of every blend add up to the blend exactly, noise included.
// All blends of a batch are processed together (chunks of max_blends_per_batch) with tensor
// operations; the G x G least-squares systems are solved batched.

#include <demix/core/context.hpp>
#include <demix/deblend/detection.hpp>
#include <demix/deblend/stamps.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Which image the symmetric templates are taken from.
enum class SymmetryImage {
  PerBand, ///< each band's own image (SDSS)
  BandSum, ///< the sum over bands (one template shape per galaxy; less noisy in faint bands)
};

/// How the template amplitudes are chosen.
enum class FluxSharing {
  Fitted,       ///< least-squares amplitudes per blend and band (SDSS), clipped at 0
  Proportional, ///< all amplitudes 1: share in proportion to the templates themselves
};

struct ClassicalDeblendOptions {
  SymmetryImage symmetry = SymmetryImage::PerBand; ///< see SymmetryImage
  FluxSharing sharing = FluxSharing::Fitted;       ///< see FluxSharing
  double ridge = 1e-9; ///< least-squares regularisation, relative to the mean diagonal; >= 0
  double footprint_threshold = 2.0; ///< footprint: nu above this (when noise levels are given)
  double footprint_smoothing = 1.5; ///< sigma in pixels of the footprint's Gaussian smoothing; > 0
  std::int64_t max_blends_per_batch = 64; ///< blends processed at once (memory); >= 1
};

struct ClassicalResult {
  BlendGalaxies galaxies; ///< the input galaxies
  at::Tensor children;    // (M, B, H, W): each galaxy's share of its blend, full frame
  at::Tensor templates;   // (M, B, H, W): the symmetric templates (B = 1 copy per band for BandSum)
  at::Tensor amplitudes;  // (M, B): the fitted w (ones for Proportional)
  /// Each child cut to an S x S stamp centred on its galaxy's nearest pixel: (M, B, S, S).
  at::Tensor stamps(std::int64_t stamp_size) const;
};

class ClassicalDeblender {
public:
  ClassicalDeblender(const ClassicalDeblendOptions& options, const Context& context);

  /// images: real (N, B, H, W); galaxies.num_blends = N; noise_sigmas (B) (optional: without
  /// them, no footprint). The children of each blend with at least one galaxy sum to its image.
  ClassicalResult deblend(const at::Tensor& images /* (N, B, H, W) */,
                          const BlendGalaxies& galaxies,
                          const at::Tensor& noise_sigmas = {} /* (B) */) const;

  const ClassicalDeblendOptions& options() const { return options_; }

private:
  ClassicalResult deblend_chunk(const at::Tensor& images, const BlendGalaxies& galaxies,
                                const at::Tensor& noise_sigmas) const;

  ClassicalDeblendOptions options_;
  c10::TensorOptions tensor_options_;
  PeakDetector footprint_; // its significance map defines the footprint
};

} // namespace demix
#pragma GCC visibility pop

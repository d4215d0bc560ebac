#pragma once
// Peak detection on multi-band images, for deblending without a catalogue.
//
// The detection image is the inverse-variance weighted band sum, smoothed by a normalised Gaussian
// K of about the PSF's size, in units of its own noise:
//
//   S(x)  = sum_b y_b(x) / sigma_b^2                       (noise variance sum_b 1 / sigma_b^2)
//   nu(x) = (K * S)(x) / sqrt( sum_b 1 / sigma_b^2  x  sum_{x' in image} K(x - x')^2 )
//
// so that nu is N(0, 1) at every pixel of pure white noise, edges included (the kernel's part
// beyond the image, which sees zero padding, is left out of the noise as it is of the signal).
// Peaks are the pixels with nu > threshold that are no lower than their 8 neighbours; they are
// taken in decreasing nu, each dropped when closer than min_separation (Euclidean) to one already
// kept. Positions can be refined by a parabola through nu and its two neighbours along x and y.

#include <demix/core/context.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct DetectionOptions {
  double smoothing_sigma = 1.5; ///< Gaussian kernel's sigma in pixels (LSST: PSF FWHM ~0.7" =
                                ///< 3.5 pixels of 0.2", sigma 1.5); > 0
  double threshold = 5.0;       ///< k: keep peaks with nu > k; finite
  double min_separation = 3.0;  ///< pixels between two kept peaks, at least; >= 0
  bool subpixel = true;    ///< parabolic refinement (at most half a pixel); false: pixel centres
  std::int64_t border = 0; ///< drop peaks within this many pixels of the image edge; >= 0
};

/// Peaks found in one image, by decreasing significance.
struct Detections {
  at::Tensor xy;           // (K, 2) float64 CPU: x (column), y (row), 0-based pixels
  at::Tensor significance; // (K) float64 CPU: nu at the peak pixel
};

class PeakDetector {
public:
  /// Builds the kernel on `context`'s device (ValueError for options out of range).
  PeakDetector(const DetectionOptions& options, const Context& context);

  /// nu for a batch of images: (N, B, H, W) or (B, H, W), sigmas (B) > 0 -> (N, H, W).
  at::Tensor significance(const at::Tensor& images /* (N, B, H, W) or (B, H, W) */,
                          const at::Tensor& noise_sigmas /* (B) */) const; // -> (N, H, W)
  /// The peaks of each image of the batch (one entry per image).
  std::vector<Detections> detect(const at::Tensor& images /* (N, B, H, W) or (B, H, W) */,
                                 const at::Tensor& noise_sigmas /* (B) */) const;

  const DetectionOptions& options() const { return options_; }
  /// The normalised 1-D kernel (2 r + 1), r = ceil(4 sigma): the 2-D kernel is its outer product.
  at::Tensor kernel_1d() const { return kernel_; }

private:
  DetectionOptions options_;
  c10::TensorOptions tensor_options_;
  at::Tensor kernel_; // (2 r + 1) on the device
};

/// Per-band noise of sky-subtracted images estimated from their pixels, as a background rms: the
/// median absolute deviation from the median (x 1.4826, the normal's ratio) of each band's pixels,
/// iterated `iterations` times with the pixels beyond `clip` sigma of the median (the galaxies)
/// left out. images: (N, B, H, W) or (B, H, W), all images of a band pooled. -> (B) float64 CPU.
/// ValueError for clip <= 0 or iterations < 1.
at::Tensor estimate_noise_sigmas(const at::Tensor& images /* (N, B, H, W) or (B, H, W) */,
                                 double clip = 3.0, int iterations = 5);

} // namespace demix
#pragma GCC visibility pop

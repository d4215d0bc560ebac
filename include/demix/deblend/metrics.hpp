#pragma once
// Quality metrics of deblended galaxies against their noiseless truth, as in the MADNESS paper
// (Biswas et al. 2025, section 5): circular or elliptical aperture photometry and its relative
// flux residual per band (mean |r|, median, 68% spread), the g - r colour error, the structural
// similarity (SSIM) and the pixel cosine similarity per band, and an ellipticity error; plus the
// matching of detected positions to true ones.
//
// Batches: galaxies are rows, (N, B, S, S) stamps (or any (N, B, H, W) images), one result row
// per galaxy. Everything is ATen tensor operations (any device) except match_positions.

#include <ATen/core/TensorBody.h>

#include <cstdint>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

// ---- Photometry -----------------------------------------------------------------------------

/// Flux inside circles: images (N, B, H, W), centres (N, 2) (x, y) in the images' 0-based pixel
/// coordinates, radius in pixels: one value (1), one per galaxy (N) or per galaxy and band (N, B).
/// Each pixel counts with the fraction of its area inside the circle, estimated on a subsample x
/// subsample grid of points in the pixel (as sep's sum_circle with subpix = 5). -> (N, B).
at::Tensor aperture_flux(const at::Tensor& images /* (N, B, H, W) */,
                         const at::Tensor& centres /* (N, 2) */,
                         const at::Tensor& radius /* (1), (N) or (N, B) */,
                         std::int64_t subsample = 5);

/// An elliptical aperture, as sep's sum_ellipse draws it (with r = 1). Each field is (1), (N) or
/// (N, B): one value, one per galaxy, or one per galaxy and band; the fields broadcast together.
struct EllipticalAperture {
  at::Tensor a;     ///< semi-axis along theta (usually the major one), pixels, > 0
  at::Tensor b;     ///< semi-axis across theta, pixels, > 0
  at::Tensor theta; ///< angle of a's axis from +x towards +y (sep: counter-clockwise), radians
};

/// Flux inside ellipses: as the circular aperture_flux, with the point (x, y) inside when, for
/// u = (x - x0) cos theta + (y - y0) sin theta and v = -(x - x0) sin theta + (y - y0) cos theta,
/// u^2 / a^2 + v^2 / b^2 <= 1. Where a == b the result is exactly the circular aperture_flux's of
/// radius a, whatever theta. ValueError unless every a and b is finite and > 0. -> (N, B).
at::Tensor aperture_flux(const at::Tensor& images /* (N, B, H, W) */,
                         const at::Tensor& centres /* (N, 2) */, const EllipticalAperture& aperture,
                         std::int64_t subsample = 5);

/// (measured - truth) / truth, elementwise; NaN where truth is 0. Any matching shapes.
at::Tensor relative_residual(const at::Tensor& measured, const at::Tensor& truth);

/// The colour error (m_a - m_b)_measured - (m_a - m_b)_truth of bands a, b (g - r: a = 1, b = 2
/// for u g r i z y) from fluxes (N, B), in magnitudes, m = -2.5 log10(flux); NaN where a flux is
/// not positive. -> (N).
at::Tensor colour_error(const at::Tensor& measured_flux /* (N, B) */,
                        const at::Tensor& true_flux /* (N, B) */, std::int64_t band_a,
                        std::int64_t band_b);

/// Summary of residuals per column, NaN entries left out (percentiles interpolated linearly, as
/// numpy's default): each field (B) float64 CPU.
struct ResidualSummary {
  at::Tensor mean_abs; ///< mean of |r|
  at::Tensor median;   ///< median of r
  at::Tensor spread68; ///< (84th - 16th percentile) / 2: the 68% half-width
  at::Tensor count;    ///< finite entries (int64)
};
ResidualSummary summarize_residuals(const at::Tensor& residuals /* (N, B) or (N) */);

// ---- Images ---------------------------------------------------------------------------------

struct SsimOptions {
  std::int64_t window = 11; ///< Gaussian window side (odd); the SSIM map covers the pixels whose
                            ///< window lies inside the image, and is averaged there
  double sigma = 1.5;       ///< window's standard deviation, pixels
  double k1 = 0.01;         ///< C1 = (k1 L)^2
  double k2 = 0.03;         ///< C2 = (k2 L)^2
  /// true (MADNESS): each image is divided by its own maximum and L = 1; false: images as given,
  /// L = data_range.
  bool normalise_by_max = true;
  double data_range = 1.0; ///< L when normalise_by_max is false; > 0
};

/// Structural similarity (Wang et al. 2004) per image and band, with a Gaussian-weighted window
/// and population (co)variances: scikit-image's structural_similarity(..., gaussian_weights=True,
/// use_sample_covariance=False, data_range=1) of the max-normalised images, as MADNESS computes
/// it. NaN where the truth's maximum is <= 0; 0 where the prediction's maximum is <= 0 (when
/// normalising). Images must be at least window x window. -> (N, B).
at::Tensor ssim(const at::Tensor& predicted /* (N, B, H, W) */,
                const at::Tensor& truth /* (N, B, H, W) */, const SsimOptions& options = {});

/// Cosine of the angle between the pixel vectors of each band: <p, t> / (|p| |t|); 0 where p is
/// all zero, NaN where t is. -> (N, B).
at::Tensor cosine_similarity(const at::Tensor& predicted /* (N, B, H, W) */,
                             const at::Tensor& truth /* (N, B, H, W) */);

// ---- Shapes ---------------------------------------------------------------------------------

enum class MomentWeight {
  /// Adaptive moments: the Gaussian weight's covariance is iterated to twice the weighted
  /// second moments, whose fixed point is the covariance itself for a Gaussian profile
  /// (Bernstein & Jarvis 2002); robust to noise and neighbours.
  Adaptive,
  /// Unweighted moments of the positive pixels of the whole image.
  Unweighted,
};

struct ShapeOptions {
  MomentWeight weight = MomentWeight::Adaptive; ///< see MomentWeight
  int iterations = 40;        ///< adaptive iterations (the error halves each time); >= 1
  double initial_sigma = 2.0; ///< first Gaussian weight, pixels; > 0
};

/// Second-moment shapes of images (N, H, W) (e.g. a band, or the band sum).
struct Shapes {
  at::Tensor ellipticity; // (N, 2): (Q_xx - Q_yy, 2 Q_xy) / (Q_xx + Q_yy) (the distortion)
  at::Tensor centroid;    // (N, 2): x, y in pixels
  at::Tensor moments;     // (N, 3): Q_xx, Q_yy, Q_xy in pixels^2 (x = column)
  at::Tensor valid;       // (N) bool: positive flux and positive-definite moments
};
Shapes measure_shapes(const at::Tensor& images /* (N, H, W) */, const ShapeOptions& options = {});

// ---- Detection ------------------------------------------------------------------------------

/// Greedy one-to-one matching by increasing distance of detected to true positions, pairs farther
/// than max_distance pixels left unmatched.
struct Matching {
  at::Tensor truth_to_detection; // (T) int64 CPU: index of the matched detection, -1 if none
  at::Tensor detection_to_truth; // (K) int64 CPU: index of the matched truth, -1 if none
  std::int64_t matched = 0;      ///< true positives
  std::int64_t spurious = 0;     ///< detections matched to no truth (false positives)
  std::int64_t missed = 0;       ///< truths matched by no detection (false negatives)
};
Matching match_positions(const at::Tensor& truth /* (T, 2) */,
                         const at::Tensor& detected /* (K, 2) */, double max_distance);

} // namespace demix
#pragma GCC visibility pop

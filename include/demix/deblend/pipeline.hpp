#pragma once
// The deblending pipeline of `demix deblend` as one library call, for one multi-band blend image:
//   1. noise levels per band: given, estimated from the pixels, the image's SIGMA1..SIGMAn keywords
//      (sim/dataset.hpp) or the survey table;
//   2. galaxy positions: given (e.g. read_positions from a CSV catalogue) or found by peak
//      detection (detection.hpp);
//   3. the fit: MADNESS (madness.hpp, a trained GalaxyPrior) or the classical symmetric-template
//      deblender (classical.hpp, no model);
//   4. measurement: each model's flux per band and the ellipticity of its band sum (metrics.hpp);
//   5. the catalogue as a Table (write_csv or write_fits_table write it).
// prepare() does 1-2, which are cheap (a caller can report positions and noise levels before the
// fit), deblend() does 3-5, run() both. The outputs are on the CPU; files are the caller's.

#include <demix/core/context.hpp>
#include <demix/deblend/classical.hpp>
#include <demix/deblend/detection.hpp>
#include <demix/deblend/madness.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image.hpp>
#include <demix/io/table.hpp>
#include <demix/models/galaxy_prior.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

enum class DeblendMethod {
  Madness,   ///< MAP fit of a generative galaxy model (madness.hpp); needs a GalaxyPrior
  Classical, ///< SDSS-style symmetric templates (classical.hpp); needs no model
};

/// How the pipeline finds the noise sigma of each band.
enum class NoiseLevels {
  /// The blend's SIGMA1..SIGMAn keywords when it has them; otherwise the survey table where noise
  /// levels are needed (MADNESS, or detection), and none for the classical method with given
  /// positions (which then shares the flux without a footprint).
  Auto,
  Given, ///< DeblendPipelineOptions::noise_sigmas
  Image, ///< estimated from the blend's pixels (estimate_noise_sigmas, detection.hpp)
};

/// Where the noise levels of a prepared blend came from.
enum class NoiseSource {
  None,        ///< no noise levels (NoiseLevels::Auto: classical method, positions given)
  Given,       ///< DeblendPipelineOptions::noise_sigmas
  Image,       ///< estimated from the blend's pixels
  Keywords,    ///< the blend's SIGMA1..SIGMAn keywords
  SurveyTable, ///< the LSST survey table (survey.hpp), for 6-band blends without keywords
};

struct DeblendPipelineOptions {
  DeblendMethod method = DeblendMethod::Madness; ///< see DeblendMethod
  NoiseLevels noise = NoiseLevels::Auto;         ///< see NoiseLevels
  std::vector<double> noise_sigmas;  ///< NoiseLevels::Given: one per band, e-/pixel, each > 0
  DetectionOptions detection;        ///< peak detection, used when no positions are given
  MadnessOptions madness;            ///< the fit of DeblendMethod::Madness
  ClassicalDeblendOptions classical; ///< the fit of DeblendMethod::Classical
  /// Classical: side of the stamps cut from each galaxy's share, pixels, odd, >= 1 (MADNESS's
  /// stamps have the prior's size).
  std::int64_t stamp_size = 45;
  /// MADNESS: also return each model placed in a full frame (DeblendReport::children), G times
  /// the blend's memory. The classical method always returns its full-frame children.
  bool full_frame = false;
  /// Quality: a galaxy whose model puts more than this share of its light (band sum) in pixels
  /// nearer another galaxy's position than its own takes a neighbour's light
  /// (kFlagTakesNeighbourLight); in (0, 1].
  double neighbour_share_limit = 0.5;
  /// Quality: a galaxy whose residual chi^2 per pixel and band in its footprint exceeds this is
  /// flagged kFlagPoorResidual (a model that does not explain the light there); > 0.
  double chi2_limit = 5;
  /// MADNESS: galaxies flagged not converged, taking a neighbour's light or with a poor residual
  /// get the classical deblender's measurements (flux, magnitudes, shape, stamp) instead, flagged
  /// kFlagClassicalFallback, so that a catalogue never reports a prior's failure as a result.
  bool classical_fallback = false;
};

/// The catalogue's quality flags (column "flags"), one bit each.
constexpr std::int64_t kFlagNotConverged = 1;    ///< the fit did not converge
constexpr std::int64_t kFlagStampOffEdge = 2;    ///< the galaxy's stamp reaches beyond the image
constexpr std::int64_t kFlagNonPositiveFlux = 4; ///< the model's flux is <= 0 in some band
/// More than neighbour_share_limit of the model's light lies nearer another galaxy.
constexpr std::int64_t kFlagTakesNeighbourLight = 8;
constexpr std::int64_t kFlagPoorResidual = 16; ///< footprint chi^2 above chi2_limit
/// The measurements are the classical deblender's (DeblendPipelineOptions::classical_fallback).
constexpr std::int64_t kFlagClassicalFallback = 32;

/// Per-galaxy quality of a deblending, from the blend, the residual and each model on its stamp.
/// The footprint of a galaxy is where its band-summed model exceeds the band-summed noise
/// sqrt(sum_b sigma_b^2) (without noise levels: 5% of the model's peak), within the image.
struct DeblendQuality {
  at::Tensor chi2;          // (G) float64: mean (residual / sigma_b)^2 over the footprint and
                            // bands; NaN without noise levels or footprint
  at::Tensor flux_ratio;    // (G) float64: all models' flux / the blend's flux in the footprint
                            // (band sums): ~1 when the models explain the light there
  at::Tensor foreign_share; // (G) float64: share of the model's light (band sum, within the
                            // image) in pixels nearer another galaxy's position than its own
  at::Tensor footprint;     // (G) int64: footprint pixels
};

/// The quality of models `stamps` (G, B, S, S) whose pixel (0, 0) is at `origins` (G, 2) (column,
/// row) in the blend `image` (B, H, W), with `residual` (B, H, W) = image minus all models, at
/// `positions` (G, 2) (x, y), and noise levels `sigmas` (B) (or undefined). CPU tensors.
DeblendQuality measure_deblend_quality(const at::Tensor& image, const at::Tensor& residual,
                                       const at::Tensor& stamps, const at::Tensor& origins,
                                       const at::Tensor& positions, const at::Tensor& sigmas);

/// A blend with its noise levels and galaxy positions, checked and ready to deblend.

struct PreparedBlend {
  at::Tensor image;     // (B, H, W) real: the blend, as given (its device and dtype)
  std::string name;     ///< names the blend in messages (Image::source)
  at::Tensor positions; // (G, 2) float64 CPU: x (column), y (row), 0-based pixels
  /// (G) float64 CPU: the detection significance nu of each peak; undefined for given positions.
  at::Tensor significance;
  at::Tensor noise_sigmas; // (B) float64 CPU, e-/pixel; undefined for NoiseSource::None
  NoiseSource noise_source = NoiseSource::None;
  /// One per band, for the catalogue's columns: BAND1..BANDn of the blend's header when it has
  /// them all, else u g r i z y for 6 bands (LSST), else b0, b1, ...
  std::vector<std::string> band_names;
  /// The blend's keywords, for the catalogue: BUNIT (the flux unit), ZPn and EXPTIMEn (AB
  /// magnitudes), the celestial WCS (RA, Dec).
  FitsHeader header;
};

/// What deblend() returns. Galaxies are in the order of PreparedBlend::positions; images are on
/// the CPU in the context's real dtype.
struct DeblendReport {
  PreparedBlend blend;         ///< what was deblended
  std::int64_t stamp_size = 0; ///< S (odd)
  at::Tensor stamps;           // (G, B, S, S) CPU: each galaxy's model on a stamp centred on its
                               // nearest pixel (stamps.hpp)
  at::Tensor stamp_origins;    // (G, 2) int64 CPU: blend column and row of stamp pixel (0, 0),
                               // the nearest pixel minus S / 2
  at::Tensor children;         // (G, B, H, W) CPU: each model in the full frame (classical, or
                               // MADNESS with full_frame); otherwise undefined
  at::Tensor residual;         // (B, H, W) CPU: the blend minus all models
  at::Tensor converged;        // (G) bool CPU: the fit converged (classical: always)
  at::Tensor latents;          // (G, D) CPU: MADNESS's MAP latents; undefined for classical
  std::int64_t steps = 0;      ///< MADNESS: Adam steps taken; classical: 0
  double loss = std::numeric_limits<double>::quiet_NaN(); ///< MADNESS: final loss L; else NaN
  /// One row per galaxy, with units: id (int64), x, y (pix, 0-based), ra, dec (deg, when the
  /// blend has a celestial WCS), flux_<band> (each model's flux in the image's BUNIT: MADNESS the
  /// whole stamp, classical the galaxy's share of the image), mag_<band> (AB, where ZPn and
  /// EXPTIMEn calibrate the band), e1, e2 (ellipticity of the model's band sum from metrics.hpp's
  /// measure_shapes, in the shear convention (a - b) / (a + b) of the simulator's truth table),
  /// converged (0 or 1), flags (kFlag* bits). write_table writes it as FITS, ECSV or CSV.
  Table catalogue;
};

/// Built once (the deblender and detector are set up here), then applied to any number of blends.
class DeblendPipeline {
public:
  /// prior: the galaxy model for DeblendMethod::Madness (ValueError when null; unused by the
  /// classical method). ValueError for options out of range, the deblenders' own checks included.
  DeblendPipeline(const DeblendPipelineOptions& options, std::shared_ptr<const GalaxyPrior> prior,
                  const Context& context);

  /// Steps 1-2. blend: image (B, H, W) or (H, W), real, its header's SIGMAi and BANDi read;
  /// positions: (G, 2) (x, y), any real dtype, or undefined to detect the galaxies. ShapeError for
  /// other shapes; ValueError for complex pixels, a position whose nearest pixel is outside the
  /// image, noise levels of the wrong count or sign, no noise levels for a blend that is not
  /// 6-band, or a prior with another number of bands; FormatError for bad SIGMAi keywords.
  PreparedBlend prepare(const Image& blend, const at::Tensor& positions = {}) const;
  /// Steps 3-5 (checks `blend` as prepare() leaves it: ShapeError / ValueError).
  DeblendReport deblend(const PreparedBlend& blend) const;
  /// Steps 3-5 for several blends (a survey's worth): MADNESS fits the blends of one shape and
  /// noise levels as one batch (one call for thousands of blends on a GPU), each report is
  /// deblend()'s for its blend, in order.
  std::vector<DeblendReport> deblend(const std::vector<PreparedBlend>& blends) const;
  /// deblend(prepare(blend, positions)).
  DeblendReport run(const Image& blend, const at::Tensor& positions = {}) const;

  const DeblendPipelineOptions& options() const { return options_; }

private:
  /// The checks deblend() shares with prepare(): shapes, positions inside, noise levels.
  void check(const PreparedBlend& blend) const;
  void check_image(const at::Tensor& image, const std::string& name) const;
  void check_noise(const at::Tensor& sigmas, std::int64_t bands, const std::string& name) const;
  static void check_positions(const at::Tensor& xy, std::int64_t height, std::int64_t width,
                              const std::string& name);
  /// After the fit (MADNESS's stamps, residual, convergence in `fit`; nothing for the classical
  /// method, which fits here): full frames, quality, fallback, measurements, catalogue.
  DeblendReport finish(const PreparedBlend& blend, DeblendReport fit) const;

  DeblendPipelineOptions options_;
  std::shared_ptr<const GalaxyPrior> prior_;
  Context context_;
  PeakDetector detector_;
  std::optional<MadnessDeblender> madness_;     // DeblendMethod::Madness
  std::optional<ClassicalDeblender> classical_; // DeblendMethod::Classical
};

/// Where a positions catalogue keeps its coordinates.
struct PositionColumns {
  std::string x = "x"; ///< the column of pixel columns (any case), e.g. X_IMAGE for SExtractor
  std::string y = "y"; ///< the column of pixel rows, e.g. Y_IMAGE
  int origin = 0;      ///< the catalogue's first pixel: 0 (numpy, demix) or 1 (FITS, SExtractor)
};

/// Galaxy positions (G, 2) float64 (x, y), 0-based pixels of the blend, from a catalogue in FITS,
/// ECSV or CSV (read_table) with the columns `columns` names (other columns ignored). IoError if
/// it cannot be read; FormatError naming the file for a missing column (listing those there),
/// and the line (CSV) or row and the column for a value that is not a finite number; ValueError
/// for an origin other than 0 or 1.
at::Tensor read_positions(const std::string& path, const PositionColumns& columns = {});

} // namespace demix
#pragma GCC visibility pop

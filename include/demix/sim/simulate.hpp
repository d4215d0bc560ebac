#pragma once
// Simulated LSST-like datasets: isolated galaxy stamps (to train a generative model of galaxies)
// and blends of several galaxies with their truth (to evaluate deblenders). `demix simulate`
// writes them; everything is reproducible from the seed: the catalogue and the noise are drawn on
// the CPU with demix's own generators (sim/detail/random.hpp), identical on every platform and
// device, and the noise of each stamp or blend has its own stream, so any chunking gives the same
// noise. Noiseless pixels are identical for identical options on one machine; other chunk sizes
// (FFT batches) or devices (CPU vs CUDA FFTs) change them by float rounding only (~1e-7 of the
// peak).
//
// Units: electrons over the full survey exposure, sky subtracted (survey.hpp). Pixel (row, col)
// has its centre at (y, x) = (row, col): x is the column, 0-based.
//
// ---- File layout (one multi-extension FITS file per dataset)
// -------------------------------------
//
// Isolated stamps, N > 1:
//   HDU 0            no data; keywords below
//   STAMPS           (N, B, S, S) float32   noisy stamps (noiseless when NOISE = F)
//   NOISELESS        (N, B, S, S) float32   the same without noise (absent when NOISE = F)
//   PSF              (B, S, S)    float32   each band's PSF as seen in the images, unit sum
//   TRUTH            BINTABLE, one row per stamp (columns below)
// Blends, N > 1:
//   HDU 0            no data; keywords below
//   BLENDS           (N, B, H, W) float32   noisy blends (noiseless when NOISE = F)
//   NOISELESS        (N, B, H, W) float32   noiseless blends (absent when NOISE = F)
//   STAMPS           (G, B, S, S) float32   each galaxy alone, noiseless, on a stamp centred on
//                                           its nearest pixel (row k <-> TRUTH row k)
//   PSF              (B, S, S)    float32
//   TRUTH            BINTABLE, one row per galaxy, grouped by blend
// N = 1 (one stamp or one blend, e.g. for `demix deblend`): HDU 0 holds the (B, H, W) image itself
// (noisy), followed by NOISELESS (B, H, W), STAMPS (blends only), PSF and TRUTH as above.
//
// Keywords (HDU 0 and every image HDU): DATASET ('isolated' / 'blends'), SURVEY, PIXSCALE
// (arcsec/pixel), NBANDS, BAND1..BANDn (names), SIGMA1..SIGMAn (per-band noise sigma, e-/pixel),
// FWHM1..n (PSF FWHM, arcsec), ZP1..n (AB zero point, 1 e-/s), EXPTIME1..n (s), PSFMODEL
// ('moffat' / 'kolmogorov' / 'none'), MOFFBETA, SEED, NOISE (T/F), SRCNOISE (T/F: the galaxies'
// own Poisson noise included), NITEMS (N), NGAL (G), STAMPSZ (S), MAGBAND, MAGLIM, MAGBRT (the
// population's magnitude range), BUNIT = 'electron'; isolated: MAXOFFS (max sub-pixel offset);
// blends: FIELDSZ (H = W), MINGAL, MAXGAL, DENSITY (requested galaxies/arcmin^2, 0 = none).
//
// TRUTH columns (int64 or float64):
//   blend_id, galaxy_id   the blend (isolated: the stamp) and the galaxy's index within it
//   x, y                  centre in the blend image (isolated: in the stamp), pixels
//   stamp_x0, stamp_y0    column and row of the galaxy stamp's first pixel in the blend image:
//                         stamp pixel (r, c) is blend pixel (stamp_y0 + r, stamp_x0 + c)
//                         (isolated: 0, 0)
//   n_blend, density      galaxies in this blend; their number per arcmin^2 of the square over
//                         which the blend's centres were drawn (isolated: 1, 0)
//   flux_<b>              total model flux per band, e- (the whole profile)
//   mag_<b>               AB magnitude of flux_<b>
//   stamp_flux_<b>        flux inside the galaxy's S x S stamp (what the images hold), e-
//   snr_<b>               matched-filter S/N in the noiseless stamp, sqrt(sum I^2) / sigma_b
//   bulge_frac_<b>        bulge share of the flux per band
//   hlr                   half-light radius of bulge + disk in the population's magnitude band,
//                         arcsec (components taken circular)
//   hlr_disk, hlr_bulge   component half-light radii, arcsec (circularised, sqrt(a b))
//   e1, e2                ellipticity (shear convention, galaxy.hpp), shared by both components
// The same table is written as CSV on request (header line, same column names).

#include <demix/core/context.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/table.hpp>
#include <demix/sim/galaxy.hpp>
#include <demix/sim/population.hpp>
#include <demix/sim/psf.hpp>
#include <demix/sim/survey.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace demix {

struct IsolatedOptions {
  int64_t count = 1000;      ///< number of stamps N, >= 1
  uint64_t seed = 0;         ///< everything (catalogue, offsets, noise) follows from it
  int64_t stamp_size = 45;   ///< S, odd
  double max_offset = 0.0;   ///< centres uniform within +-max_offset pixels of the centre pixel,
                             ///< in [0, 0.5) (0: exactly on pixel (S / 2, S / 2), as MADNESS)
  bool noise = true;         ///< add the sky's Gaussian noise, sigma = Survey::noise_sigma
  bool source_noise = false; ///< add the galaxies' own Poisson noise too (Gaussian, variance I)
  PsfModel psf = PsfModel::Moffat;
  PopulationOptions population;
  int64_t render_batch = 48; ///< galaxies per FFT batch (RenderOptions::batch_size); CPU: ~48,
                             ///< GPUs prefer ~512
};

struct BlendOptions {
  int64_t count = 100; ///< number of blends N, >= 1
  uint64_t seed = 0;
  int64_t min_galaxies = 1; ///< galaxies per blend: uniform integer in [min, max], >= 1
  int64_t max_galaxies = 6;
  int64_t field_size = 120; ///< blend images are field_size x field_size pixels
  /// Centres are uniform over a square centred in the field. 0: the largest square keeping every
  /// galaxy's stamp inside the field, side field_size - S + 1 (with the defaults 76 pixels =
  /// 15.2": 3 to 5 galaxies give 47 to 78 per arcmin^2, MADNESS's 48 to 80). > 0: a square of
  /// area n / density for n galaxies, so every blend has this density; ValueError if the square
  /// for max_galaxies does not fit.
  double density = 0;
  int64_t stamp_size = 45; ///< S of the per-galaxy stamps, odd
  bool noise = true;
  bool source_noise = false;
  PsfModel psf = PsfModel::Moffat;
  PopulationOptions population;
  int64_t render_batch = 48; ///< galaxies per FFT batch, as IsolatedOptions::render_batch
};

/// Rendered stamps [first, first + n) of an isolated set.
struct IsolatedChunk {
  at::Tensor images;    // (n, B, S, S) noisy (noiseless when options.noise is false)
  at::Tensor noiseless; // (n, B, S, S)
};

/// Rendered blends [first, first + n) and their galaxies [first_galaxy, first_galaxy + g).
struct BlendChunk {
  at::Tensor images;        // (n, B, H, W) noisy (noiseless when options.noise is false)
  at::Tensor noiseless;     // (n, B, H, W), the sum of the galaxies' stamps
  at::Tensor stamps;        // (g, B, S, S) each galaxy alone, noiseless
  int64_t first_galaxy = 0; // index of stamps[0] among all galaxies
};

/// An isolated-stamp dataset: the catalogue is drawn by the constructor; render() draws any
/// range of stamps (same pixels whatever the ranges).
class IsolatedSimulator {
public:
  /// ValueError for options out of range (count < 1, offsets, stamp size, population).
  IsolatedSimulator(const Survey& survey, const IsolatedOptions& options, const Context& context);
  ~IsolatedSimulator();
  int64_t size() const;
  const Galaxies& galaxies() const; // x, y in stamp pixels
  IsolatedChunk render(int64_t first, int64_t count) const;
  at::Tensor psf_images() const; // (B, S, S)
  const Survey& survey() const;
  const IsolatedOptions& options() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

/// A blend dataset: blend sizes, positions and galaxies are drawn by the constructor.
class BlendSimulator {
public:
  BlendSimulator(const Survey& survey, const BlendOptions& options, const Context& context);
  ~BlendSimulator();
  int64_t size() const;                  // N blends
  int64_t galaxy_count() const;          // G galaxies in all
  const Galaxies& galaxies() const;      // x, y in blend-image pixels, grouped by blend
  const at::Tensor& blend_index() const; // (G) int64: the blend of each galaxy
  const at::Tensor& offsets() const;     // (N + 1) int64: blend k holds [offsets[k], offsets[k+1])
  const at::Tensor& region_side() const; // (N) float64: side of the centres' square, pixels
  BlendChunk render(int64_t first, int64_t count) const;
  at::Tensor psf_images() const; // (B, S, S)
  const Survey& survey() const;
  const BlendOptions& options() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

struct DatasetWriteOptions {
  std::string csv_path; ///< also write TRUTH as CSV here (atomically), unless empty
  int64_t chunk = 256;  ///< items rendered and written at a time (memory ~ chunk x item size)
  /// Called after each chunk with (items done, items in all); for progress reports.
  std::function<void(int64_t, int64_t)> progress;
};

/// Renders the whole dataset chunk by chunk into `path` (layout above), atomically (a failure
/// leaves neither the FITS nor the CSV file).
void write_isolated_dataset(const std::string& path, const IsolatedSimulator& simulator,
                            const DatasetWriteOptions& options = {});
void write_blend_dataset(const std::string& path, const BlendSimulator& simulator,
                         const DatasetWriteOptions& options = {});

/// A dataset read back into memory (CPU).
struct SimulatedDataset {
  std::string kind;               // "isolated" or "blends"
  at::Tensor images;              // (N, B, H, W): STAMPS (isolated) or BLENDS, as stored
  at::Tensor noiseless;           // (N, B, H, W); undefined when written without noise
  at::Tensor stamps;              // (G, B, S, S) per-galaxy truth (blends only)
  at::Tensor psf;                 // (B, S, S)
  at::Tensor sigma;               // (B) noise sigma per band, e-
  std::vector<std::string> bands; // band names
  Table truth;
  FitsHeader header; // keywords of HDU 0
};

/// Reads a file written by write_isolated_dataset / write_blend_dataset (N = 1 files included,
/// their images given a leading axis of 1). FormatError if it is not such a file.
SimulatedDataset read_dataset(const std::string& path);

} // namespace demix

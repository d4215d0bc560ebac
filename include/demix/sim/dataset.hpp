#pragma once
// The dataset file format: what `demix simulate` writes (write_isolated_dataset,
// write_blend_dataset) and everything that reads it back (read_dataset; read_dataset_images for
// training stamps; read_noise_sigmas and read_band_names for a blend to deblend). The simulation
// itself is in simulate.hpp.
//
// ---- File layout (one multi-extension FITS file per dataset) ------------------------------------
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

#include <demix/io/fits.hpp>
#include <demix/io/table.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

class IsolatedSimulator; // simulate.hpp
class BlendSimulator;    // simulate.hpp

// ---- Writing ------------------------------------------------------------------------------------

struct DatasetWriteOptions {
  std::string csv_path; ///< also write TRUTH here (atomically; .csv, .ecsv or .fits), unless empty
  int64_t chunk = 256;  ///< items rendered and written at a time (memory ~ chunk x item size)
  /// Called after each chunk with (items done, items in all); for progress reports.
  std::function<void(int64_t, int64_t)> progress;
};

/// Renders the whole dataset chunk by chunk into `path` (layout above), atomically (a failure
/// leaves neither the FITS nor the CSV file). ValueError for a chunk size < 1, IoError when a file
/// cannot be written.
void write_isolated_dataset(const std::string& path, const IsolatedSimulator& simulator,
                            const DatasetWriteOptions& options = {});
void write_blend_dataset(const std::string& path, const BlendSimulator& simulator,
                         const DatasetWriteOptions& options = {});

// ---- Reading ------------------------------------------------------------------------------------

/// A dataset read back into memory (CPU).
struct SimulatedDataset {
  std::string kind;               // DATASET: "isolated" or "blends" (read_dataset_images: "" when
                                  // the file has no DATASET keyword)
  at::Tensor images;              // (N, B, H, W): STAMPS (isolated) or BLENDS, as stored
  at::Tensor noiseless;           // (N, B, H, W); undefined when written without noise
  at::Tensor stamps;              // (G, B, S, S) per-galaxy truth (blends only)
  at::Tensor psf;                 // (B, S, S) (read_dataset_images: undefined)
  at::Tensor sigma;               // (B) float64 noise sigma per band, e-/pixel (SIGMA1..SIGMAn;
                                  // read_dataset_images: undefined when the file has none)
  std::vector<std::string> bands; // band names (BAND1..BANDn; read_dataset_images: empty when
                                  // the file has not all of them)
  Table truth;                    // (read_dataset_images: empty)
  FitsHeader header;              // keywords of the images' HDU (the same as HDU 0's)
};

/// Reads a file written by write_isolated_dataset / write_blend_dataset (N = 1 files included,
/// their images given a leading axis of 1). IoError if it cannot be read; FormatError naming the
/// file and what is wrong (a missing extension or keyword, a bad keyword value) if it is not such
/// a file; ShapeError naming the file and the extension for inconsistent shapes.
SimulatedDataset read_dataset(const std::string& path);

/// The images of a dataset with their keywords, without PSF and TRUTH (neither is read nor needed):
/// what training reads. Besides files of read_dataset, it takes any FITS file holding galaxy stamps
/// in a STAMPS extension (N, B, S, S) (stamps written by other tools), with an optional NOISELESS
/// extension of the same shape and optional BANDi and SIGMAi keywords in STAMPS' header. Errors
/// as read_dataset.
SimulatedDataset read_dataset_images(const std::string& path);

/// BAND1..BANDn of a dataset header (n = `bands`): the band names, or empty unless all n are there
/// (any FITS header will do: files not written by demix may lack them).
std::vector<std::string> read_band_names(const FitsHeader& header, int64_t bands);

/// SIGMA1..SIGMAn of a dataset header (n = `bands`): the noise sigma of each band, e-/pixel, or
/// empty when none is there. FormatError naming `file` and the keyword when a SIGMAi is not a
/// positive number, or when only some of SIGMA1..SIGMAn are there (a level per band, or none).
std::vector<double> read_noise_sigmas(const FitsHeader& header, int64_t bands,
                                      const std::string& file);

} // namespace demix
#pragma GCC visibility pop

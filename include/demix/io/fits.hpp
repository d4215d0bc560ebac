#pragma once
// FITS images in and out, with CFITSIO hidden behind this header (no fitsio.h here).
//
// Axis order: FITS lists the fastest axis first (NAXIS1 = x = width); tensors here are C-ordered,
// so a FITS image NAXIS1 x NAXIS2 [x NAXIS3 [x NAXIS4]] is the tensor (H = NAXIS2, W = NAXIS1),
// (C = NAXIS3, H, W) or (N = NAXIS4, C, H, W) (a batch of cubes, e.g. simulated galaxy stamps).
// The flip happens in one place, src/io/fits.cpp.

#include <demix/io/table.hpp>
#include <demix/stats/coefficients.hpp>

#include <ATen/core/TensorBody.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// The keywords of one HDU, kept as verbatim 80-character cards so that WCS, units and provenance
/// survive a read/write cycle unchanged. Structural keywords (SIMPLE, BITPIX, NAXISn, EXTEND,
/// BSCALE/BZERO/BLANK, EXTNAME, checksums, ...) are never stored: the writer derives them.
class FitsHeader {
public:
  /// Adds a raw card (up to 80 characters). Structural cards are ignored. A keyword already present
  /// is replaced, except COMMENT, HISTORY and blank cards which accumulate.
  void add_card(std::string_view card);
  void set(std::string_view key, std::string_view value, std::string_view comment = {});
  void set(std::string_view key, double value, std::string_view comment = {});
  void set(std::string_view key, long long value, std::string_view comment = {});
  void set(std::string_view key, bool value, std::string_view comment = {});
  void add_history(std::string_view text);

  bool contains(std::string_view key) const;
  /// The value of `key` as text: strings without their quotes, numbers as written; nullopt if
  /// absent.
  std::optional<std::string> value(std::string_view key) const;
  /// The value of a numeric keyword; nullopt if absent, ValueError if it is not a number.
  std::optional<double> number(std::string_view key) const;
  void erase(std::string_view key);

  const std::vector<std::string>& cards() const { return cards_; }
  bool empty() const { return cards_.empty(); }
  std::size_t size() const { return cards_.size(); }

private:
  std::vector<std::string> cards_; // each exactly 80 characters
};

/// Right ascension and declination in degrees, (N, 2) float64, of 0-based pixel positions xy
/// (N, 2) = (column, row), through the header's celestial WCS (CTYPE1 "RA--...", CTYPE2
/// "DEC-..."; CFITSIO's projections, with CDELT/CROTA2 or a CD matrix without skew). nullopt when
/// the header has no such WCS.
std::optional<at::Tensor> pixel_to_sky(const FitsHeader& header, const at::Tensor& xy);

/// The header of a cutout whose pixel (0, 0) is pixel (x0, y0) (0-based column, row) of the image
/// `header` describes: every WCS reference pixel (CRPIX1, CRPIX2 and the alternate descriptions'
/// CRPIX1A..CRPIX2Z) moved by (-x0, -y0), so that each pixel of the cutout keeps its sky position.
void shift_reference_pixel(FitsHeader& header, double x0, double y0);

/// One image HDU: pixels, header and (for extensions) its EXTNAME.
struct FitsImage {
  at::Tensor data;     // (H, W), (C, H, W) or (N, C, H, W) float32/float64, CPU
  FitsHeader header;   // non-structural keywords of the HDU (WCS, units, ...)
  std::string name;    // EXTNAME; empty for an unnamed primary HDU
  int hdu_index = 0;   // 0 = primary
  int bitpix = 0;      // BITPIX as stored in the file (8, 16, 32, 64, -32, -64)
  bool scaled = false; // BSCALE/BZERO were applied while reading
};

/// Reads one image HDU. `spec` is a path, optionally with an HDU selector: "map.fits[2]" (number,
/// 0 = primary) or "map.fits[SCI]" (EXTNAME). Without a selector the first HDU holding an image is
/// read. BITPIX 8/16 (with integer BZERO only) and unscaled -32 become float32; everything else,
/// scaled data included, becomes float64, so that no value is rounded.
/// BLANK pixels become NaN. NAXIS 2, 3 or 4 is accepted, plus trailing length-1 axes (e.g. a
/// Stokes axis; so an (1, C, H, W) image reads as (C, H, W)). Throws IoError (missing file),
/// FormatError (not FITS, truncated, not an image) or ShapeError (empty HDU, wrong number of axes).
FitsImage read_fits(const std::string& spec);

/// How to store pixels in a written FITS file.
enum class FitsPixelType {
  Float32, ///< BITPIX = -32
  Float64, ///< BITPIX = -64
};

/// Writes one image as the primary HDU. The tensor must be real and 2D, 3D or 4D, on any device.
/// Written to a temporary file in the same folder and renamed, so a failure leaves no output and
/// an existing file at `path` intact. DATE and CHECKSUM/DATASUM are written.
void write_fits(const std::string& path, const at::Tensor& data /* (H, W) or (C, H, W) real */,
                const FitsHeader& header = {}, FitsPixelType type = FitsPixelType::Float32,
                const std::string& extname = {});

/// One HDU of a multi-extension file.
struct FitsHduOut {
  std::string name;  // EXTNAME, required and unique
  at::Tensor data;   // (H, W), (C, H, W) or (N, C, H, W) real
  FitsHeader header; // extra keywords of this HDU
  FitsPixelType type = FitsPixelType::Float32;
};

/// Writes an empty primary HDU holding `primary_header`, then one named IMAGE extension per entry.
void write_fits_extensions(const std::string& path, const std::vector<FitsHduOut>& hdus,
                           const FitsHeader& primary_header = {});

/// What one HDU of a file holds, for listings (`demix info`).
struct FitsHduInfo {
  int index = 0;
  std::string name;             // EXTNAME, or "PRIMARY" for an unnamed primary HDU
  std::string kind;             // "image", "binary table", "ascii table"
  int bitpix = 0;               // images only
  std::vector<long long> naxes; // FITS order (NAXIS1 first); empty for an empty HDU
};

/// Lists the HDUs of a FITS file (selector, if any, ignored).
std::vector<FitsHduInfo> list_fits_hdus(const std::string& spec);

/// True when `spec` has the form "path[selector]".
bool has_hdu_selector(const std::string& spec);
/// `spec` without a trailing HDU selector.
std::string strip_hdu_selector(const std::string& spec);

// ---- Tables (catalogues) ------------------------------------------------------------------------
//
// A Table (table.hpp) is stored as a BINTABLE: int64 columns as 'K', float64 as 'D' (vector
// columns (rows, repeat) as 'repeatK' / 'repeatD'), text as fixed-width 'nA' (n = the longest
// entry); units in TUNITn, descriptions as TCOMMn.

/// Writes `table` as a binary-table extension named `extname` after an empty primary HDU holding
/// `primary_header`, atomically. ValueError for an empty or clashing column name.
void write_fits_table(const std::string& path, const Table& table, const std::string& extname,
                      const FitsHeader& primary_header = {}, const FitsHeader& table_header = {});

/// Reads a binary table: "file.fits[NAME]" or "file.fits[2]", else the first table HDU. Integer
/// and logical columns become int64, real columns float64, text columns text (trailing blanks
/// removed). `header`, when given, receives the table HDU's non-structural keywords. IoError if
/// missing, FormatError if the HDU is not a binary table or a column type is unsupported
/// (complex, bit, variable-length).
Table read_fits_table(const std::string& spec, FitsHeader* header = nullptr);

// ---- Writing several HDUs, in pieces ------------------------------------------------------------
//
// For files too large to hold in memory at once (simulated datasets): HDUs are declared in file
// order, image data may be written later in slabs along the slowest axis, and checksums are
// written when the file is committed. Everything goes to a temporary beside `path`, renamed by
// commit(); a writer destroyed without commit() leaves nothing behind.

class FitsWriter {
public:
  explicit FitsWriter(const std::string& path);
  ~FitsWriter();
  FitsWriter(const FitsWriter&) = delete;
  FitsWriter& operator=(const FitsWriter&) = delete;

  /// An empty primary HDU with `header` (must come first, if at all).
  void add_empty_primary(const FitsHeader& header);
  /// An image HDU holding `data` (2D to 4D, real, any device): the primary HDU if it is the first
  /// HDU (then `name`, if not empty, is its EXTNAME), else an IMAGE extension called `name`.
  /// Returns the HDU index (0 = primary).
  int add_image(const std::string& name, const at::Tensor& data, const FitsHeader& header = {},
                FitsPixelType type = FitsPixelType::Float32);
  /// An image HDU of `shape` (C order, 2 to 4 axes, zero-filled) to be written with write_rows.
  int add_image_shape(const std::string& name, const std::vector<int64_t>& shape,
                      const FitsHeader& header = {}, FitsPixelType type = FitsPixelType::Float32);
  /// Writes `rows` (k, ...rest of the shape) at positions [first, first + k) of the first axis of
  /// image HDU `hdu`. ShapeError if the trailing shape differs or the rows overflow.
  void write_rows(int hdu, int64_t first, const at::Tensor& rows);
  /// A binary-table extension (layout as write_fits_table). Returns its HDU index.
  int add_table(const std::string& extname, const Table& table, const FitsHeader& header = {});
  /// Writes DATE and checksums of every HDU, closes the file and renames it to `path`.
  void commit();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Statistics coefficients as a FITS binary table ---------------------------------------------
//
// Layout written by write_coefficients_fits (one file per Coefficients, whatever the batch size):
//   HDU 0          no data; `primary_header` (e.g. the input map's WCS plus STAT, J, L... keywords)
//   HDU 1 COEFFS   BINTABLE, one row per coefficient (K rows), columns in this order:
//                    CLASS   string  the coefficient's class name ("S11", "C01", ...)
//                    <LABEL> int64   one column per label name, upper-cased (J1, T1, P1, ...);
//                                    -1 = not applicable
//                    REAL    float64 real part      } scalar when B = 1, else a vector of
//                    IMAG    float64 imaginary part } length B (one entry per map of the batch)
//                  keywords: NMAPS (B), NCOEFF (K), CPLXVAL (T if the values were complex),
//                  NCLASS and CLASS1..CLASSn (the class names in their original order).
// read_coefficients_fits gives the values back as (B, K) float64 (complex128 when CPLXVAL = T)
// and the label names lower-cased.

/// The name of the table extension written by write_coefficients_fits.
inline constexpr const char* kCoefficientsExtname = "COEFFS";

/// Writes `coefficients` (values (B, K) real or complex, any device) as described above,
/// atomically. ShapeError unless values is (B, K) with K = coefficients.size() and labels is
/// (K, label_names.size()); ValueError for a class id outside `classes`.
void write_coefficients_fits(const std::string& path, const Coefficients& coefficients,
                             const FitsHeader& primary_header = {});

/// Reads a file written by write_coefficients_fits (or any FITS file with a COEFFS table of that
/// layout). When `primary_header` is given, it receives the keywords of HDU 0. IoError if missing,
/// FormatError if there is no COEFFS table or its columns are not as above.
Coefficients read_coefficients_fits(const std::string& path, FitsHeader* primary_header = nullptr);

} // namespace demix
#pragma GCC visibility pop

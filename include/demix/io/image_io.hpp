#pragma once
// Reading and writing images whatever their format: FITS or npy on input (recognised from the
// file's first bytes, not its name), FITS or npy on output (chosen by the extension).

#include <demix/io/fits.hpp>
#include <demix/io/image.hpp>

#include <string>
#include <string_view>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

enum class FileFormat {
  Fits, ///< .fits .fit .fts (optionally .gz)
  Npy,  ///< .npy
  Png,  ///< .png (previews only; see preview.hpp)
};

/// The format an output path asks for, from its extension. ValueError for any other extension.
FileFormat format_for_output(const std::string& path);

/// The format of an existing file, from its first bytes (FITS "SIMPLE  =", gzip, "\x93NUMPY").
/// `spec` may carry a FITS HDU selector. IoError if missing, FormatError if neither FITS nor npy.
FileFormat detect_input_format(const std::string& spec);

struct ReadOptions {
  NonFinitePolicy non_finite = NonFinitePolicy::Reject; ///< see NonFinitePolicy
};

/// A read FITS HDU as an Image (data, header, a description of the HDU as `format`), of any
/// dimension: read_image checks the shape, `demix info` also shows 4D batches.
Image image_from_fits(FitsImage fits, const std::string& source);

/// Reads a 2D image or 3D cube from FITS (optionally "file.fits[HDU]") or npy. ShapeError unless
/// the data has 2 or 3 dimensions, each at least 1 pixel.
Image read_image(const std::string& spec, const ReadOptions& options = {});

/// Pixel type of written images.
enum class PixelType {
  Same,    ///< float32 stays float32, float64 (and complex128) stays 64-bit
  Float32, ///< float32 / complex64
  Float64, ///< float64 / complex128
};

struct WriteOptions {
  PixelType type = PixelType::Same;
};

/// Writes `image` to `path` (format from the extension), atomically. FITS outputs carry
/// image.header; complex data can only go to npy (FITS has no complex image type): ValueError.
void write_image(const std::string& path, const Image& image, const WriteOptions& options = {});

/// Writes `text` to `path` as is (JSON, CSV, ...), atomically: a failure leaves no file and an
/// existing one unchanged. IoError if the folder is missing or the write fails.
void write_text_file(const std::string& path, std::string_view text);

} // namespace demix
#pragma GCC visibility pop

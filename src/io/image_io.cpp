#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/npy.hpp>

#include "io/detail/atomic_file.hpp"
#include "io/detail/files.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>

namespace demix {

namespace {

std::string lower_extension(const std::string& path) {
  std::string p = path;
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
  if (p.size() > 3 && p.ends_with(".gz")) p.resize(p.size() - 3);
  const std::string name = detail::file_name(p);
  const auto dot = name.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? std::string() : name.substr(dot);
}

at::ScalarType output_dtype(const at::Tensor& data, PixelType type) {
  const bool complex = data.is_complex();
  switch (type) {
  case PixelType::Float32: return complex ? at::kComplexFloat : at::kFloat;
  case PixelType::Float64: return complex ? at::kComplexDouble : at::kDouble;
  case PixelType::Same: break;
  }
  if (data.scalar_type() == at::kDouble || data.scalar_type() == at::kComplexDouble)
    return data.scalar_type();
  return complex ? at::kComplexFloat : at::kFloat;
}

} // namespace

FileFormat format_for_output(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".fits" || ext == ".fit" || ext == ".fts") return FileFormat::Fits;
  if (ext == ".npy") return FileFormat::Npy;
  if (ext == ".png") return FileFormat::Png;
  throw ValueError("cannot tell the format of output '" + path + "' from its extension '" + ext +
                   "'; use .fits, .fit, .fts, .npy or .png");
}

FileFormat detect_input_format(const std::string& spec) {
  const std::string base = strip_hdu_selector(spec);
  detail::require_input_file(base, spec);
  std::ifstream in(base, std::ios::binary);
  if (!in) throw IoError("cannot read '" + spec + "': " + std::strerror(errno));
  char head[9] = {0};
  in.read(head, sizeof head);
  const auto got = in.gcount();
  if (got >= 6 && std::memcmp(head, "\x93NUMPY", 6) == 0) {
    if (base != spec) throw ValueError("'" + spec + "': HDU selectors apply to FITS files only");
    return FileFormat::Npy;
  }
  if (got >= 9 && std::memcmp(head, "SIMPLE  =", 9) == 0) return FileFormat::Fits;
  if (got >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b)
    return FileFormat::Fits; // gzip: CFITSIO reads compressed FITS transparently
  if (got == 0) throw FormatError("cannot read '" + spec + "': the file is empty");
  throw FormatError("cannot read '" + spec +
                    "': neither a FITS file (no 'SIMPLE  =' card) nor a NumPy .npy file");
}

Image image_from_fits(FitsImage fits, const std::string& source) {
  Image image;
  image.source = source;
  image.data = std::move(fits.data);
  image.header = std::move(fits.header);
  image.format = "FITS HDU " + std::to_string(fits.hdu_index) +
                 (fits.name.empty() ? "" : " (" + fits.name + ")") + ", BITPIX " +
                 std::to_string(fits.bitpix) + (fits.scaled ? ", scaled by BSCALE/BZERO" : "");
  return image;
}

Image read_image(const std::string& spec, const ReadOptions& options) {
  Image image;
  image.source = spec;
  if (detect_input_format(spec) == FileFormat::Npy) {
    image.data = read_npy(spec);
    if (!image.data.is_floating_point() && !image.data.is_complex())
      image.data = image.data.to(at::kDouble); // integer images: exact in float64
    const bool f64 =
        image.data.scalar_type() == at::kDouble || image.data.scalar_type() == at::kComplexDouble;
    image.format =
        std::string("npy ") + (image.data.is_complex() ? (f64 ? "complex128" : "complex64")
                                                       : (f64 ? "float64" : "float32"));
  } else {
    image = image_from_fits(read_fits(spec), spec);
  }
  const auto d = image.data.dim();
  if (d != 2 && d != 3) {
    std::string shape;
    for (auto s : image.data.sizes()) shape += (shape.empty() ? "" : " x ") + std::to_string(s);
    throw ShapeError("'" + spec + "' holds an array of " + std::to_string(d) + " dimension(s) (" +
                     shape + "); demix reads 2D images (H, W) and 3D cubes (C, H, W)");
  }
  for (auto s : image.data.sizes())
    if (s == 0) throw ShapeError("'" + spec + "' holds an empty array (an axis of length 0)");
  image.data = apply_non_finite_policy(image.data, options.non_finite, "'" + spec + "'");
  return image;
}

void write_image(const std::string& path, const Image& image, const WriteOptions& options) {
  const at::Tensor data = image.data.detach().to(at::kCPU, output_dtype(image.data, options.type));
  switch (format_for_output(path)) {
  case FileFormat::Fits:
    write_fits(path, data, image.header,
               data.scalar_type() == at::kDouble ? FitsPixelType::Float64 : FitsPixelType::Float32);
    return;
  case FileFormat::Npy: write_npy(path, data); return;
  case FileFormat::Png:
    throw ValueError("'" + path + "': PNG is for previews; use write_preview (demix preview)");
  }
}

void write_text_file(const std::string& path, std::string_view text) {
  detail::AtomicFile out(path);
  {
    std::ofstream file(out.temp_path(), std::ios::binary | std::ios::trunc);
    file.write(text.data(), static_cast<std::streamsize>(text.size()));
    file.flush();
    if (!file) throw IoError("cannot write '" + path + "': write failed (disk full?)");
  }
  out.commit();
}

} // namespace demix

// NumPy's .npy format: magic "\x93NUMPY", version, header length, a Python dict literal
// {'descr': '<f8', 'fortran_order': False, 'shape': (H, W), } padded with spaces, then raw data.

#include <demix/core/errors.hpp>
#include <demix/io/npy.hpp>

#include "io/detail/atomic_file.hpp"
#include "io/detail/files.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace demix {

namespace {

static_assert(std::endian::native == std::endian::little, "npy I/O assumes a little-endian host");

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

struct Descr {
  at::ScalarType dtype;
  std::size_t item_size;
  bool big_endian;
};

Descr parse_descr(const std::string& descr, const std::string& what) {
  if (descr.size() < 3) throw FormatError(what + ": unsupported dtype '" + descr + "'");
  const char order = descr[0];
  const std::string kind = descr.substr(1);
  // The dtypes demix reads, by NumPy's kind and size code.
  static const std::map<std::string, std::pair<at::ScalarType, std::size_t>> kKinds{
      {"f4", {at::kFloat, 4}},           {"f8", {at::kDouble, 8}}, {"c8", {at::kComplexFloat, 8}},
      {"c16", {at::kComplexDouble, 16}}, {"i1", {at::kChar, 1}},   {"u1", {at::kByte, 1}},
      {"i2", {at::kShort, 2}},           {"i4", {at::kInt, 4}},    {"i8", {at::kLong, 8}}};
  const auto found = kKinds.find(kind);
  if (found == kKinds.end())
    throw FormatError(what + ": unsupported dtype '" + descr +
                      "'; demix reads float32/64 ('<f4', '<f8'), complex64/128 ('<c8', '<c16') and "
                      "signed integers or uint8 ('<i1' .. '<i8', '|u1'), either byte order");
  if (order != '<' && order != '>' && order != '=' && order != '|')
    throw FormatError(what + ": unsupported byte order in dtype '" + descr + "'");
  // '=' and '|' are native, and demix runs on little-endian hosts
  return {found->second.first, found->second.second, order == '>'};
}

/// The value text following 'key': in the header dict. (Scanned by hand: std::regex recurses
/// once per character of a run of blanks, and a header may hold megabytes of them.)
std::string dict_value(const std::string& header, const std::string& key, const std::string& what) {
  const auto blank = [&](std::size_t i) {
    return i < header.size() && std::isspace(static_cast<unsigned char>(header[i]));
  };
  for (const char quote : {'\'', '"'}) {
    const std::string quoted = std::string(1, quote) + key + quote;
    for (auto at = header.find(quoted); at != std::string::npos; at = header.find(quoted, at + 1)) {
      std::size_t i = at + quoted.size();
      while (blank(i)) ++i;
      if (i >= header.size() || header[i] != ':') continue;
      ++i;
      while (blank(i)) ++i;
      return header.substr(i);
    }
  }
  throw FormatError(what + ": npy header has no '" + key + "' entry: " + header.substr(0, 200));
}

void swap_bytes(void* data, std::size_t count, std::size_t width) {
  auto* p = static_cast<unsigned char*>(data);
  for (std::size_t i = 0; i < count; ++i, p += width) std::reverse(p, p + width);
}

} // namespace

at::Tensor read_npy(const std::string& path) {
  const std::string what = "cannot read npy '" + path + "'";
  detail::require_input_file(path, path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(what + ": " + std::strerror(errno));
  const std::uint64_t file_size = detail::file_size(path).value_or(0);

  char prefix[kMagicSize + 2] = {0};
  if (!in.read(prefix, sizeof prefix) || std::memcmp(prefix, kMagic, kMagicSize) != 0)
    throw FormatError(what + ": not a NumPy .npy file (bad magic string)");
  const int major = static_cast<unsigned char>(prefix[kMagicSize]);
  std::uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0};
  const int len_size = major == 1 ? 2 : 4;
  if (major < 1 || major > 3)
    throw FormatError(what + ": unsupported npy version " + std::to_string(major));
  if (!in.read(reinterpret_cast<char*>(len_bytes), len_size))
    throw FormatError(what + ": the file is truncated (header length missing)");
  for (int i = len_size - 1; i >= 0; --i) header_len = header_len * 256 + len_bytes[i]; // LE
  // Checked against the file before anything of that size is allocated.
  if (kMagicSize + 2 + len_size + static_cast<std::uint64_t>(header_len) > file_size)
    throw FormatError(what + ": the file is truncated (a header of " + std::to_string(header_len) +
                      " bytes announced, the file has " + std::to_string(file_size) + ")");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len))
    throw FormatError(what + ": the file is truncated (header of " + std::to_string(header_len) +
                      " bytes announced)");

  std::string descr_text = dict_value(header, "descr", what);
  if (descr_text.empty() || (descr_text[0] != '\'' && descr_text[0] != '"'))
    throw FormatError(what + ": structured or object arrays are not supported (descr " +
                      descr_text.substr(0, 40) + ")");
  const std::string descr = descr_text.substr(1, descr_text.find(descr_text[0], 1) - 1);
  const Descr d = parse_descr(descr, what);
  const bool fortran = dict_value(header, "fortran_order", what).rfind("True", 0) == 0;
  const std::string shape_text = dict_value(header, "shape", what);
  const auto close = shape_text.find(')');
  if (shape_text.empty() || shape_text[0] != '(' || close == std::string::npos)
    throw FormatError(what + ": malformed shape in npy header: " + header.substr(0, 200));
  // Comma-separated non-negative integers (a trailing comma for one dimension): anything else,
  // negative sizes included, is refused, and so is a product beyond int64 (or beyond the file).
  std::vector<int64_t> shape;
  const std::string dims = shape_text.substr(1, close - 1);
  std::int64_t count = 1;
  bool overflow = false;
  std::stringstream entries(dims);
  for (std::string entry; std::getline(entries, entry, ',');) {
    const auto first = entry.find_first_not_of(" \t"), last = entry.find_last_not_of(" \t");
    if (first == std::string::npos) continue; // "(5,)"
    const std::string digits = entry.substr(first, last - first + 1);
    if (digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos)
      throw FormatError(what + ": the shape entry '" + digits.substr(0, 24) +
                        "' is not a size (a non-negative integer below 10^18)");
    const std::int64_t size = std::stoll(digits);
    shape.push_back(size);
    if (size != 0 && count > std::numeric_limits<std::int64_t>::max() / size) overflow = true;
    if (!overflow) count *= size;
  }
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) count = 0, overflow = false;
  if (overflow || (count > 0 && static_cast<std::uint64_t>(count) >
                                    file_size / static_cast<std::uint64_t>(d.item_size)))
    throw FormatError(what + ": the file is truncated or its header wrong: the shape " +
                      shape_text.substr(0, close + 1) + " holds " +
                      (overflow ? std::string("more than 2^63") : std::to_string(count)) +
                      " values; the file has " + std::to_string(file_size) + " bytes");
  const std::uint64_t data_offset = kMagicSize + 2 + len_size + header_len;
  const std::uint64_t needed = data_offset + static_cast<std::uint64_t>(count) * d.item_size;
  if (file_size < needed)
    throw FormatError(what + ": the file is truncated (" + std::to_string(file_size) +
                      " bytes, the header announces " + std::to_string(needed) + ")");

  // Fortran order is C order of the reversed shape; read that, then transpose back.
  std::vector<int64_t> stored = shape;
  if (fortran) std::reverse(stored.begin(), stored.end());
  at::Tensor t = at::empty(stored, at::TensorOptions().dtype(d.dtype));
  if (count > 0 && !in.read(static_cast<char*>(t.data_ptr()), count * d.item_size))
    throw FormatError(what + ": the file is truncated");
  if (d.big_endian) {
    const bool complex = d.dtype == at::kComplexFloat || d.dtype == at::kComplexDouble;
    const std::size_t width = complex ? d.item_size / 2 : d.item_size; // swap each component
    if (width > 1) swap_bytes(t.data_ptr(), count * (complex ? 2 : 1), width);
  }
  if (fortran && t.dim() > 1) {
    std::vector<int64_t> perm(t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) perm[i] = t.dim() - 1 - i;
    t = t.permute(perm).contiguous();
  }
  return t;
}

void write_npy(const std::string& path, const at::Tensor& data) {
  const std::string what = "cannot write npy '" + path + "'";
  std::string descr;
  switch (data.scalar_type()) {
  case at::kFloat: descr = "<f4"; break;
  case at::kDouble: descr = "<f8"; break;
  case at::kComplexFloat: descr = "<c8"; break;
  case at::kComplexDouble: descr = "<c16"; break;
  default:
    throw ValueError(what + ": unsupported dtype " +
                     std::string(c10::toString(data.scalar_type())) +
                     "; demix writes float32, float64, complex64 and complex128");
  }
  const at::Tensor t = data.detach().to(at::kCPU).contiguous();
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += std::to_string(t.size(i)) + ", ";
  if (t.dim() > 1)
    shape.resize(shape.size() - 2);
  else if (t.dim() == 1)
    shape.resize(shape.size() - 1);
  shape += ")";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad so that the data starts on a 64-byte boundary; the header ends with '\n'.
  const bool v2 = header.size() + kMagicSize + 4 + 1 > 65535;
  const std::size_t prelude = kMagicSize + 2 + (v2 ? 4 : 2);
  const std::size_t total = (prelude + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prelude - header.size() - 1, ' ');
  header += '\n';

  detail::AtomicFile out(path);
  {
    std::ofstream os(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!os) throw IoError(what + ": " + std::strerror(errno));
    os.write(kMagic, kMagicSize);
    const char version[2] = {static_cast<char>(v2 ? 2 : 1), 0};
    os.write(version, 2);
    const std::uint32_t len = static_cast<std::uint32_t>(header.size());
    const char len_bytes[4] = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                               static_cast<char>((len >> 16) & 0xff),
                               static_cast<char>((len >> 24) & 0xff)};
    os.write(len_bytes, v2 ? 4 : 2);
    os.write(header.data(), static_cast<std::streamsize>(header.size()));
    os.write(static_cast<const char*>(t.data_ptr()),
             static_cast<std::streamsize>(t.numel() * t.element_size()));
    os.flush();
    if (!os) throw IoError(what + ": write failed (disk full?)");
  }
  out.commit();
}

} // namespace demix

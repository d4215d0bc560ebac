#include "io/detail/tensor_archive.hpp"

#include <demix/core/errors.hpp>

#include "core/detail/hash.hpp"
#include "io/detail/atomic_file.hpp"
#include "io/detail/files.hpp"

#include <ATen/ATen.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace demix::detail {

namespace {

static_assert(std::endian::native == std::endian::little,
              "the archive format stores little-endian values as they lie in memory");

constexpr char kMagic[8] = {'D', 'M', 'X', 'A', 'R', 'C', 'H', '1'};
constexpr std::uint64_t kMaxEntries = 1u << 20; // a sanity bound against corrupt counts

template <typename T> void append(std::string& out, T value) {
  char b[sizeof(T)];
  std::memcpy(b, &value, sizeof(T));
  out.append(b, sizeof(T));
}

std::uint8_t dtype_code(c10::ScalarType t) {
  switch (t) {
  case at::kFloat: return 0;
  case at::kDouble: return 1;
  case at::kLong: return 2;
  default: return 255;
  }
}

/// Reads values from a byte buffer, throwing FormatError when it runs out.
class Reader {
public:
  Reader(const std::string& bytes, std::size_t end, std::string what)
      : bytes_(bytes), end_(end), what_(std::move(what)) {}
  template <typename T> T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_bytes(std::uint64_t n) {
    need(n);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void copy_to(void* dst, std::uint64_t n) {
    need(n);
    if (n == 0) return; // an empty tensor's data pointer may be null, which memcpy may not take
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
  }
  std::size_t position() const { return pos_; }

private:
  void need(std::uint64_t n) const {
    if (n > end_ - pos_) throw FormatError(what_ + ": truncated entry");
  }
  const std::string& bytes_;
  std::size_t pos_ = sizeof(kMagic);
  std::size_t end_;
  std::string what_;
};

} // namespace

void TensorArchive::put(const std::string& name, const at::Tensor& value) {
  if (!value.defined()) throw ValueError("archive entry '" + name + "': undefined tensor");
  if (dtype_code(value.scalar_type()) == 255)
    throw ValueError("archive entry '" + name + "': unsupported dtype " +
                     std::string(c10::toString(value.scalar_type())) +
                     " (float32, float64 and int64 are stored)");
  Entry e{name, false, value.detach().to(at::kCPU).contiguous().clone(), {}};
  for (auto& old : entries_)
    if (old.name == name) {
      old = std::move(e);
      return;
    }
  entries_.push_back(std::move(e));
}

void TensorArchive::put_text(const std::string& name, const std::string& value) {
  Entry e{name, true, {}, value};
  for (auto& old : entries_)
    if (old.name == name) {
      old = std::move(e);
      return;
    }
  entries_.push_back(std::move(e));
}

void TensorArchive::put_int(const std::string& name, std::int64_t value) {
  put(name, at::scalar_tensor(value, at::kLong));
}

void TensorArchive::put_double(const std::string& name, double value) {
  put(name, at::scalar_tensor(value, at::kDouble));
}

bool TensorArchive::has(const std::string& name) const { return find(name) != nullptr; }

bool TensorArchive::has_tensor(const std::string& name) const {
  const Entry* e = find(name);
  return e != nullptr && !e->is_text;
}

const TensorArchive::Entry* TensorArchive::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::string TensorArchive::what() const {
  return source_.empty() ? std::string("archive") : "'" + source_ + "'";
}

at::Tensor TensorArchive::tensor(const std::string& name) const {
  const Entry* e = find(name);
  if (!e) throw FormatError(what() + ": no entry '" + name + "'");
  if (e->is_text) throw FormatError(what() + ": entry '" + name + "' is text, not a tensor");
  return e->tensor;
}

std::string TensorArchive::text(const std::string& name) const {
  const Entry* e = find(name);
  if (!e) throw FormatError(what() + ": no entry '" + name + "'");
  if (!e->is_text) throw FormatError(what() + ": entry '" + name + "' is a tensor, not text");
  return e->text;
}

std::int64_t TensorArchive::integer(const std::string& name) const {
  const at::Tensor t = tensor(name);
  if (t.numel() != 1 || t.scalar_type() != at::kLong)
    throw FormatError(what() + ": entry '" + name + "' is not an integer");
  return t.item<std::int64_t>();
}

double TensorArchive::real(const std::string& name) const {
  const at::Tensor t = tensor(name);
  if (t.numel() != 1 || t.scalar_type() != at::kDouble)
    throw FormatError(what() + ": entry '" + name + "' is not a real number");
  return t.item<double>();
}

std::vector<std::string> TensorArchive::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

void TensorArchive::save(const std::string& path) const {
  std::string bytes(kMagic, sizeof(kMagic));
  append<std::uint64_t>(bytes, entries_.size());
  for (const auto& e : entries_) {
    append<std::uint32_t>(bytes, static_cast<std::uint32_t>(e.name.size()));
    bytes += e.name;
    append<std::uint8_t>(bytes, e.is_text ? 1 : 0);
    if (e.is_text) {
      append<std::uint64_t>(bytes, e.text.size());
      bytes += e.text;
      continue;
    }
    append<std::uint8_t>(bytes, dtype_code(e.tensor.scalar_type()));
    append<std::uint32_t>(bytes, static_cast<std::uint32_t>(e.tensor.dim()));
    for (int64_t d : e.tensor.sizes()) append<std::int64_t>(bytes, d);
    bytes.append(static_cast<const char*>(e.tensor.data_ptr()),
                 static_cast<std::size_t>(e.tensor.numel() * e.tensor.element_size()));
  }
  append<std::uint64_t>(bytes, fnv1a(bytes.data(), bytes.size()));

  AtomicFile out(path);
  {
    std::ofstream os(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!os) throw IoError("cannot write '" + path + "': " + std::strerror(errno));
    os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    os.flush();
    if (!os) throw IoError("cannot write '" + path + "': write failed (disk full?)");
  }
  out.commit();
}

bool TensorArchive::is_archive(const std::string& path) {
  std::ifstream is(path, std::ios::binary);
  char magic[sizeof(kMagic)] = {};
  return is && is.read(magic, sizeof(magic)) && std::memcmp(magic, kMagic, sizeof(kMagic)) == 0;
}

TensorArchive TensorArchive::load(const std::string& path) {
  require_input_file(path, path);
  std::ifstream is(path, std::ios::binary);
  if (!is) throw IoError("cannot read '" + path + "': " + std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
  const std::string what = "'" + path + "'";
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    throw FormatError(what + " is not a demix model or checkpoint file (wrong magic bytes)");
  if (bytes.size() < sizeof(kMagic) + 16) throw FormatError(what + ": truncated file");
  const std::size_t body = bytes.size() - sizeof(std::uint64_t);
  std::uint64_t stored;
  std::memcpy(&stored, bytes.data() + body, sizeof(stored));
  if (stored != fnv1a(bytes.data(), body))
    throw FormatError(what + ": corrupt or truncated file (checksum mismatch)");

  TensorArchive archive;
  archive.source_ = path;
  Reader r(bytes, body, what);
  const auto count = r.get<std::uint64_t>();
  if (count > kMaxEntries)
    throw FormatError(what + ": implausible entry count " + std::to_string(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    Entry e;
    e.name = r.get_bytes(r.get<std::uint32_t>());
    const auto kind = r.get<std::uint8_t>();
    if (kind == 1) {
      e.is_text = true;
      e.text = r.get_bytes(r.get<std::uint64_t>());
    } else if (kind == 0) {
      const auto code = r.get<std::uint8_t>();
      const c10::ScalarType dtype = code == 0 ? at::kFloat : code == 1 ? at::kDouble : at::kLong;
      if (code > 2)
        throw FormatError(what + ": entry '" + e.name + "' has unknown dtype code " +
                          std::to_string(code));
      const auto ndim = r.get<std::uint32_t>();
      if (ndim > 16)
        throw FormatError(what + ": entry '" + e.name + "' has " + std::to_string(ndim) +
                          " dimensions");
      std::vector<int64_t> sizes(ndim);
      std::uint64_t numel = 1;
      for (auto& s : sizes) {
        s = r.get<std::int64_t>();
        if (s < 0 || (s > 0 && numel > (std::uint64_t{1} << 40) / static_cast<std::uint64_t>(s)))
          throw FormatError(what + ": entry '" + e.name + "' has an implausible shape");
        numel *= static_cast<std::uint64_t>(s);
      }
      e.tensor = at::empty(sizes, at::TensorOptions().dtype(dtype));
      r.copy_to(e.tensor.data_ptr(), numel * e.tensor.element_size());
    } else {
      throw FormatError(what + ": entry '" + e.name + "' has unknown kind " + std::to_string(kind));
    }
    archive.entries_.push_back(std::move(e));
  }
  if (r.position() != body) throw FormatError(what + ": trailing bytes after the last entry");
  return archive;
}

} // namespace demix::detail

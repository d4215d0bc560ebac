#pragma once
// A small, self-describing container of named tensors and strings: the file format of trained
// models and training checkpoints. Written by demix itself (no pickles, no LibTorch serialisation),
// so a file written by one LibTorch version loads with any other.
//
// Layout (all integers little-endian):
//   "DMXARCH1"                                   8-byte magic and format version
//   uint64 entry count
//   per entry: uint32 name length, name bytes, uint8 kind (0 = tensor, 1 = text),
//     tensor: uint8 dtype (0 float32, 1 float64, 2 int64), uint32 ndim, int64 sizes[ndim],
//             raw little-endian values (C order)
//     text:   uint64 length, bytes
//   uint64 FNV-1a hash of every byte above        detects truncation and corruption

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace demix::detail {

class TensorArchive {
public:
  /// Adds or replaces an entry. Tensors are stored from CPU copies as float32, float64 or int64
  /// (other dtypes: ValueError).
  void put(const std::string& name, const at::Tensor& value);
  void put_text(const std::string& name, const std::string& value);
  void put_int(const std::string& name, std::int64_t value);
  void put_double(const std::string& name, double value);

  bool has(const std::string& name) const;
  /// True when `name` is a tensor entry (not text, not missing).
  bool has_tensor(const std::string& name) const;
  /// The tensor called `name` (CPU); FormatError naming the file and the entry when it is missing
  /// or is text.
  at::Tensor tensor(const std::string& name) const;
  std::string text(const std::string& name) const;
  std::int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;
  /// Names of the entries in the order they were added.
  std::vector<std::string> names() const;

  /// Atomic write (temporary file + rename). IoError when the folder is missing or not writable.
  void save(const std::string& path) const;
  /// IoError (missing, unreadable), FormatError (not an archive, truncated, corrupt).
  static TensorArchive load(const std::string& path);
  /// True when the file starts with the archive's magic bytes (false for missing files).
  static bool is_archive(const std::string& path);

  /// Where the archive was read from ("" for one built in memory); used in error messages.
  const std::string& source() const { return source_; }

private:
  struct Entry {
    std::string name;
    bool is_text = false;
    at::Tensor tensor;
    std::string text;
  };
  const Entry* find(const std::string& name) const;
  std::string what() const;

  std::vector<Entry> entries_;
  std::string source_;
};

} // namespace demix::detail

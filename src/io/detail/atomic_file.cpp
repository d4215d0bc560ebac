#include "io/detail/atomic_file.hpp"

#include <demix/core/errors.hpp>

#include "io/detail/files.hpp"
#include "io/detail/temporary_files.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <vector>

#include <unistd.h>
#include <zlib.h>

namespace demix::detail {

AtomicFile::AtomicFile(const std::string& target) : target_(target) {
  if (target.empty()) throw IoError("output path is empty");
  const std::string folder = parent_folder(target);
  if (!is_folder(folder))
    throw IoError("cannot write '" + target + "': folder '" + folder + "' does not exist");
  if (is_folder(target)) throw IoError("cannot write '" + target + "': it is a folder");
  // ".part": the writers write plain files, whatever the target's extension (CFITSIO would
  // compress a name ending in ".gz" itself).
  temp_ = make_temporary_name(target, ".part");
  if (target.size() > 3 && target.compare(target.size() - 3, 3, ".gz") == 0)
    compressed_ = make_temporary_name(target, ".part.gz");
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    discard_temporary(temp_);
    if (!compressed_.empty()) discard_temporary(compressed_);
  }
}

namespace {

/// gzip of `from` into `to` (zlib's gz* interface writes the gzip format that gunzip, CFITSIO and
/// astropy read; level 6, zlib's default).
void gzip_file(const std::string& from, const std::string& to, const std::string& target) {
  std::FILE* in = std::fopen(from.c_str(), "rb");
  if (!in) throw IoError("cannot write '" + target + "': " + std::strerror(errno));
  gzFile out = gzopen(to.c_str(), "wb6");
  if (!out) {
    std::fclose(in);
    throw IoError("cannot write '" + target + "': gzopen failed");
  }
  std::vector<char> buffer(1 << 20);
  bool ok = true;
  for (std::size_t n; ok && (n = std::fread(buffer.data(), 1, buffer.size(), in)) > 0;)
    ok = gzwrite(out, buffer.data(), static_cast<unsigned>(n)) == static_cast<int>(n);
  ok = ok && !std::ferror(in);
  std::fclose(in);
  if (gzclose(out) != Z_OK || !ok)
    throw IoError("cannot write '" + target + "': gzip compression failed");
}

} // namespace

void AtomicFile::commit() {
  const std::string* ready = &temp_;
  if (!compressed_.empty()) {
    gzip_file(temp_, compressed_, target_);
    discard_temporary(temp_);
    ready = &compressed_;
  }
  if (std::rename(ready->c_str(), target_.c_str()) != 0)
    throw IoError("cannot write '" + target_ + "': " + std::strerror(errno));
  forget_temporary(*ready);
  if (ready != &temp_) forget_temporary(temp_);
  committed_ = true;
}

} // namespace demix::detail

#include "detail/atomic_file.hpp"

#include <demix/errors.hpp>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace demix::detail {

namespace fs = std::filesystem;

AtomicFile::AtomicFile(const std::string& target) : target_(target) {
  if (target.empty()) throw IoError("output path is empty");
  const fs::path path(target);
  fs::path folder = path.parent_path();
  if (folder.empty()) folder = ".";
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw IoError("cannot write '" + target + "': folder '" + folder.string() +
                  "' does not exist");
  if (fs::is_directory(path, ec))
    throw IoError("cannot write '" + target + "': it is a folder");
  static std::atomic<unsigned> counter{0};
  // A hidden name in the same folder, so that rename() stays within one filesystem.
  temp_ = (folder / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter++)))
              .string();
}

AtomicFile::~AtomicFile() {
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicFile::commit() {
  if (std::rename(temp_.c_str(), target_.c_str()) != 0)
    throw IoError("cannot write '" + target_ + "': " + std::strerror(errno));
  committed_ = true;
}

}  // namespace demix::detail

#include "io/detail/atomic_file.hpp"

#include <demix/core/errors.hpp>

#include "io/detail/files.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <unistd.h>

namespace demix::detail {

AtomicFile::AtomicFile(const std::string& target) : target_(target) {
  if (target.empty()) throw IoError("output path is empty");
  const std::string folder = parent_folder(target);
  if (!is_folder(folder))
    throw IoError("cannot write '" + target + "': folder '" + folder + "' does not exist");
  if (is_folder(target)) throw IoError("cannot write '" + target + "': it is a folder");
  static std::atomic<unsigned> counter{0};
  // A hidden name in the same folder, so that rename() stays within one filesystem.
  temp_ = folder + "/." + file_name(target) + ".tmp-" + std::to_string(::getpid()) + "-" +
          std::to_string(counter++);
}

AtomicFile::~AtomicFile() {
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicFile::commit() {
  if (std::rename(temp_.c_str(), target_.c_str()) != 0)
    throw IoError("cannot write '" + target_ + "': " + std::strerror(errno));
  committed_ = true;
}

} // namespace demix::detail

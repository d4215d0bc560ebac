#include "io/detail/files.hpp"

#include <demix/core/errors.hpp>

#include <sys/stat.h>

namespace demix::detail {

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_folder(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::optional<std::uint64_t> file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_size);
}

std::string parent_folder(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string file_name(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void require_input_file(const std::string& path, const std::string& spec) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw IoError("cannot read '" + spec + "': file not found");
  if (S_ISDIR(st.st_mode)) throw IoError("cannot read '" + spec + "': it is a folder");
  // A device (/dev/zero, a terminal) never ends or blocks: readers would read forever. Pipes stay
  // allowed (`<(zcat map.npy.gz)`).
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode))
    throw IoError("cannot read '" + spec + "': it is a device or socket, not a file");
}

} // namespace demix::detail

#include <demix/core/errors.hpp>
#include <demix/io/output_files.hpp>

#include "io/detail/files.hpp"
#include "io/detail/temporary_files.hpp"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>

#include <unistd.h>

namespace demix {
namespace {

/// One text per file whatever its spelling: the device and inode of an existing file (links
/// included), else the resolved folder and the name.
std::string file_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0)
    return "inode:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  char resolved[PATH_MAX];
  const std::string folder = detail::parent_folder(path);
  const std::string base = ::realpath(folder.c_str(), resolved) ? resolved : folder;
  return "path:" + base + "/" + detail::file_name(path);
}

/// "a.fits[1]" -> "a.fits" when only the latter exists (CFITSIO's selectors).
std::string without_selector(const std::string& path) {
  const auto bracket = path.find('[');
  if (bracket == std::string::npos || bracket == 0 || detail::path_exists(path)) return path;
  return path.substr(0, bracket);
}

} // namespace

OutputFiles::~OutputFiles() {
  if (committed_) return;
  for (const auto& o : outputs_)
    if (!o.staged.empty()) detail::discard_temporary(o.staged);
}

void OutputFiles::input(const std::string& path) {
  input_keys_.push_back(file_key(without_selector(path)));
}

const std::string& OutputFiles::add(const std::string& path, const std::string& what) {
  if (path.empty()) throw ValueError(what + ": the output path is empty");
  const std::string folder = detail::parent_folder(path);
  if (!detail::is_folder(folder))
    throw IoError("cannot write " + what + " '" + path + "': folder '" + folder +
                  "' does not exist");
  if (::access(folder.c_str(), W_OK | X_OK) != 0)
    throw IoError("cannot write " + what + " '" + path + "': folder '" + folder +
                  "' is not writable");
  if (detail::is_folder(path))
    throw IoError("cannot write " + what + " '" + path + "': it is a folder");
  if (detail::path_exists(path) && ::access(path.c_str(), W_OK) != 0)
    throw IoError("cannot write " + what + " '" + path + "': the file exists and is read-only");
  const std::string key = file_key(path);
  for (const auto& k : input_keys_)
    if (k == key) throw ValueError(what + " '" + path + "' is an input of this command");
  for (const auto& o : outputs_)
    if (o.key == key)
      throw ValueError(what + " '" + path + "' is the same file as " + o.what + " '" + o.path +
                       "'");
  outputs_.push_back({path, what, key, {}, false});
  return outputs_.back().path;
}

void OutputFiles::add_unstaged(const std::string& path, const std::string& what) {
  add(path, what);
  outputs_.back().in_place = true;
}

std::string OutputFiles::staged(const std::string& path) {
  for (auto& o : outputs_)
    if (o.path == path && !o.in_place) {
      if (o.staged.empty()) o.staged = detail::make_temporary_name(path);
      return o.staged;
    }
  throw ValueError("output '" + path + "' was not registered (OutputFiles::add)");
}

void OutputFiles::commit() {
  for (const auto& o : outputs_)
    if (!o.in_place && (o.staged.empty() || !detail::path_exists(o.staged)))
      throw IoError("cannot write " + o.what + " '" + o.path + "': it was not written");
  for (const auto& o : outputs_) {
    if (o.in_place) continue;
    if (std::rename(o.staged.c_str(), o.path.c_str()) != 0)
      throw IoError("cannot write " + o.what + " '" + o.path + "': " + std::strerror(errno));
    detail::forget_temporary(o.staged);
  }
  committed_ = true;
}

std::vector<std::string> OutputFiles::paths() const {
  std::vector<std::string> p;
  for (const auto& o : outputs_) p.push_back(o.path);
  return p;
}

} // namespace demix

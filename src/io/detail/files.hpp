#pragma once
// File-system queries with POSIX calls. Not std::filesystem: PyTorch's pip LibTorch exports its own
// copies of some std::filesystem symbols, and calls resolved to them crashed (remove_all, seen on
// the GPU machine with PyTorch 2.11), so demix keeps those symbols out of its code paths.

#include <cstdint>
#include <optional>
#include <string>

namespace demix::detail {

bool path_exists(const std::string& path);
bool is_folder(const std::string& path);
std::optional<std::uint64_t> file_size(const std::string& path);
/// "a/b/c.fits" -> "a/b"; "c.fits" -> "."; "/c.fits" -> "/".
std::string parent_folder(const std::string& path);
/// "a/b/c.fits" -> "c.fits".
std::string file_name(const std::string& path);
/// Throws IoError "cannot read 'SPEC': file not found" (or "it is a folder", "a device") unless
/// `path` is a file or a pipe. `spec` is what the user wrote (a FITS name may carry an HDU selector
/// that `path` lacks).
void require_input_file(const std::string& path, const std::string& spec);

} // namespace demix::detail

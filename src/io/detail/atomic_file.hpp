#pragma once
// Outputs are written to a temporary file beside the target and renamed into place on success,
// so an interrupted or failed write never leaves a half-written file under the final name.

#include <string>

namespace demix::detail {

class AtomicFile {
public:
  /// Checks that the target's folder exists and picks a unique temporary name in it (IoError).
  explicit AtomicFile(const std::string& target);
  ~AtomicFile(); // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& target() const { return target_; }
  /// Renames the temporary file to the target, replacing it (IoError on failure).
  void commit();

private:
  std::string target_;
  std::string temp_;
  bool committed_ = false;
};

} // namespace demix::detail

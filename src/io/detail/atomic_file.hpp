#pragma once
// Outputs are written to a temporary file beside the target and renamed into place on success,
// so an interrupted or failed write never leaves a half-written file under the final name. A
// target ending in ".gz" is gzip-compressed on commit (FITS readers, astropy included, open
// compressed files directly), so every writer produces what the name says.

#include <string>

namespace demix::detail {

class AtomicFile {
public:
  /// Checks that the target's folder exists and picks a unique temporary name in it (IoError).
  explicit AtomicFile(const std::string& target);
  ~AtomicFile(); // removes the temporary files unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Where the writer writes (uncompressed); its name has only plain characters.
  const std::string& temp_path() const { return temp_; }
  const std::string& target() const { return target_; }
  /// Compresses the temporary file if the target ends in ".gz", then renames it to the target,
  /// replacing it (IoError on failure).
  void commit();

private:
  std::string target_;
  std::string temp_;
  std::string compressed_; ///< the gzip temporary for ".gz" targets, else empty
  bool committed_ = false;
};

} // namespace demix::detail

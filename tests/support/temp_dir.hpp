#pragma once
// A fresh folder per test, removed with its contents at the end.

#include <string>
#include <vector>

namespace demix::test {

class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name) const { return root_ + "/" + name; }
  const std::string& root() const { return root_; }
  /// Names of the files in the folder (to check that no temporary file was left behind).
  std::vector<std::string> files() const;

private:
  std::string root_;
};

} // namespace demix::test

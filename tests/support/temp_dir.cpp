#include "support/temp_dir.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include <dirent.h>
#include <unistd.h>

// POSIX rather than std::filesystem: PyTorch's pip LibTorch exports std::filesystem symbols of its
// own and remove_all crashed through them (see src/io/detail/files.hpp).

namespace demix::test {

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/demix-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  root_ = tmpl;
}

TempDir::~TempDir() {
  for (const auto& f : files()) ::unlink(path(f).c_str()); // test folders are flat
  ::rmdir(root_.c_str());
}

std::vector<std::string> TempDir::files() const {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(root_.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace demix::test

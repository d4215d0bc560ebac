#include "support/shared_files.hpp"

#include <cstdlib>
#include <fstream>

namespace demix::test {

std::string shared_dir() {
  const char* from_environment = std::getenv("DEMIX_SHARED_DIR");
  return from_environment && *from_environment ? from_environment : DEMIX_SHARED_DIR;
}

std::string peers_dir() { return shared_dir() + "/reference/peers/"; }

::testing::AssertionResult shared_files_exist(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    if (!std::ifstream(path).good()) {
      return ::testing::AssertionFailure()
             << "missing reference file " << path
             << "\nThe regression tests need the project's shared folder (dust maps, peer "
                "reference outputs), here \""
             << shared_dir()
             << "\". Point the CMake cache variable DEMIX_SHARED_DIR at it (cmake -B <build> "
                "-DDEMIX_SHARED_DIR=/path/to/shared), or set the environment variable of the "
                "same name.";
    }
  }
  return ::testing::AssertionSuccess();
}

} // namespace demix::test

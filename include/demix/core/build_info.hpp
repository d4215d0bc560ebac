#pragma once
// Versions of demix and of the libraries it was built against, for `demix version` and bug reports.

#include <demix/version.hpp> // generated: DEMIX_VERSION_STRING

#include <string>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct BuildInfo {
  std::string demix;    ///< e.g. "0.1.0"
  std::string libtorch; ///< e.g. "1.13.1"
  bool libtorch_cuda;   ///< LibTorch built with CUDA support
  std::string cfitsio;  ///< e.g. "4.2"
  std::string libpng;   ///< e.g. "1.6.39"
};

BuildInfo build_info();

} // namespace demix
#pragma GCC visibility pop

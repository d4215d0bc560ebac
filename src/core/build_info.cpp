#include <demix/core/build_info.hpp>

#include <ATen/Context.h>
#include <torch/version.h>

#include <string>

#include <fitsio.h>
#include <png.h>

namespace demix {

BuildInfo build_info() {
  return BuildInfo{
      .demix = DEMIX_VERSION_STRING,
      .libtorch = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) +
                  "." + std::to_string(TORCH_VERSION_PATCH),
      .libtorch_cuda = at::hasCUDA(),
      .cfitsio = std::to_string(CFITSIO_MAJOR) + "." + std::to_string(CFITSIO_MINOR) + "." +
                 std::to_string(CFITSIO_MICRO),
      .libpng = png_get_libpng_ver(nullptr),
  };
}

} // namespace demix

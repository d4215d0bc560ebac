// demix version: versions of demix and its libraries, and the devices LibTorch sees.

#include <demix/core/build_info.hpp>

#include "common.hpp"

#include <ATen/Parallel.h>

#include <iostream>

namespace demix::cli {

void add_version_command(CLI::App& app, const Globals& globals) {
  auto* cmd = app.add_subcommand("version", "Print versions and the devices demix can use");
  cmd->callback([&globals] {
    const Context ctx = make_context(globals);
    const BuildInfo info = build_info();
    const int n_cuda = cuda_device_count();
    std::cout << "demix " << info.demix << "\n"
              << "LibTorch " << info.libtorch
              << (info.libtorch_cuda ? " (CUDA build)" : " (CPU build)") << "\nCFITSIO "
              << info.cfitsio << ", libpng " << info.libpng << "\n"
              << "devices: cpu (" << at::get_num_threads() << " threads)";
    if (n_cuda > 0)
      std::cout << ", cuda (" << n_cuda << " device" << (n_cuda > 1 ? "s" : "") << ")";
    else
      std::cout << ", no CUDA device";
    std::cout << "\ncompute: " << ctx.describe() << "\n";
  });
}

} // namespace demix::cli

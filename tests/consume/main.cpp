// Writes and reads back a FITS image through the installed demix (exit 0 only if it matches) and
// prints where the shipped model is.
#include <demix/demix.hpp>

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "consumer.fits";
  const at::Tensor x = at::randn({8, 8});
  demix::write_fits(path, x);
  const bool ok = at::equal(demix::read_fits(path).data, x);
  std::cout << "demix " << demix::build_info().demix << (ok ? ": ok" : ": MISMATCH") << "\n";
  // Found relative to the libdemix.so this program loaded (run.cmake moves the installation).
  std::cout << "shipped model: " << demix::MadnessModel::shipped_model_path() << "\n";
  std::remove(path.c_str());
  return ok ? 0 : 1;
}

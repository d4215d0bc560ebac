// demix._demix: the extension module under the Python package (python/demix).

#include <demix/core/build_info.hpp>

#include "bindings.hpp"

PYBIND11_MODULE(_demix, m) {
  m.doc() = "demix's C++ library (private: use the demix package)";
  demix::python::bind_errors(m);
  demix::python::bind_stats(m);
  demix::python::bind_synthesis(m);
  demix::python::bind_separation(m);
  demix::python::bind_galaxies(m);
  demix::python::bind_io(m);

  const demix::BuildInfo info = demix::build_info();
  m.attr("__version__") = info.demix;
  // The LibTorch the library was compiled against: demix/__init__.py refuses a different torch.
  m.attr("libtorch_version") = info.libtorch;
  m.attr("libtorch_cuda") = info.libtorch_cuda;
}

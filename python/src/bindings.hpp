#pragma once
// The pieces of the extension module demix._demix, one function per domain. The module is a thin
// layer: arguments are converted, the library is called with the GIL released, and every
// demix::Error becomes the matching exception of demix.errors (errors.cpp).

// torch's own pybind11 type casters (torch.Tensor <-> at::Tensor without a copy, torch.device):
// the extension runs on the libtorch that Python's torch loaded, so tensors and autograd graphs
// pass through unchanged.
#include <torch/csrc/utils/pybind.h>

namespace demix::python {

namespace py = pybind11;

/// Registers the translation of library (and LibTorch) exceptions to demix.errors.
void bind_errors(py::module_& m);
/// Statistics operators (stats/registry.hpp) and their references.
void bind_stats(py::module_& m);
/// Microcanonical synthesis (synthesis/microcanonical.hpp).
void bind_synthesis(py::module_& m);
/// Component separation, the Wiener filter and the validation report
/// (separation/component_separation.hpp, validation/compare.hpp).
void bind_separation(py::module_& m);
/// Galaxy simulation and deblending (sim/simulate.hpp, deblend/pipeline.hpp).
void bind_galaxies(py::module_& m);
/// Images in and out with their FITS headers (io/image_io.hpp).
void bind_io(py::module_& m);

} // namespace demix::python

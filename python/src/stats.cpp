// Statistics operators for Python: built through the registry (stats/registry.hpp) from the same
// common options as the command line, plus each statistic's own. The Python classes
// (python/demix/stats.py) hold one operator per device and precision of the maps they see.

#include <demix/core/errors.hpp>
#include <demix/stats/registry.hpp>

#include "statistics.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <memory>
#include <optional>
#include <pybind11/stl.h>
#include <string>
#include <vector>

namespace demix::python {

Context make_context(const at::Device& device, const std::string& dtype) {
  ContextOptions o;
  if (device.is_cuda()) {
    o.device = DeviceKind::Cuda;
    o.cuda_index = device.has_index() ? device.index() : 0;
  } else if (device.is_cpu()) {
    o.device = DeviceKind::Cpu;
  } else {
    throw DeviceError("demix computes on cpu or cuda devices, got '" + device.str() + "'");
  }
  o.precision = choice<Precision>(
      "dtype", dtype, {{"float32", Precision::Float32}, {"float64", Precision::Float64}});
  // Keep the process's thread count (torch.set_num_threads): 0 would reset it to one per core.
  o.threads = at::get_num_threads();
  return Context(o);
}

namespace {

/// `name` = value of an option the statistic `kind` does not take: a ValueError naming both.
template <class T>
void refuse(const std::optional<T>& value, const char* name, const std::string& kind) {
  if (value) throw ValueError("statistic '" + kind + "' has no option " + name);
}

} // namespace

Grid2d grid_of(const BuildArgs& a) {
  if (a.height < 1 || a.width < 1)
    throw ShapeError("shape must be two positive sizes (H, W), got (" + std::to_string(a.height) +
                     ", " + std::to_string(a.width) + ")");
  return {
      a.height, a.width,
      choice<Boundary>("boundary", a.boundary,
                       {{"periodic", Boundary::Periodic}, {"nonperiodic", Boundary::NonPeriodic}})};
}

StatisticSpec spec_of(const BuildArgs& a, const Grid2d& grid) {
  const StatisticInfo& info = statistic_info(a.kind);
  CommonOptions common;
  common.kind = info.kind;
  common.J = a.J;
  common.L = a.L;
  common.dn = a.dn;
  common.complex_data = a.complex_data;
  // "p11" is the scattering covariance's own; the registry knows the common two.
  const bool p11 = a.norm == "p11";
  if (p11 && info.kind != StatisticKind::ScatteringCov)
    throw ValueError("norm 'p11' applies to the scattering covariance only (statistic '" + a.kind +
                     "')");
  common.norm = p11 ? CommonNorm::Auto
                    : choice<CommonNorm>("norm", a.norm,
                                         {{"default", CommonNorm::Default},
                                          {"none", CommonNorm::None},
                                          {"auto", CommonNorm::Auto}});
  StatisticSpec spec = resolve(common, grid);

  if (auto* w = std::get_if<WphOptions>(&spec)) {
    if (a.A) w->A = *a.A;
    if (a.cut_param) w->cut_param = *a.cut_param;
    if (a.memory_bytes) w->memory_bytes = *a.memory_bytes;
  } else {
    refuse(a.A, "A", a.kind);
    refuse(a.cut_param, "cut_param", a.kind);
    refuse(a.memory_bytes, "memory_bytes", a.kind);
  }
  if (auto* w = std::get_if<WstOptions>(&spec)) {
    if (a.max_order) w->max_order = *a.max_order;
  } else {
    refuse(a.max_order, "max_order", a.kind);
  }
  if (auto* s = std::get_if<ScatteringCovOptions>(&spec)) {
    if (p11) s->normalization = ScovNormalization::P11;
    if (a.isotropic)
      s->coefficients = *a.isotropic ? ScovCoefficients::Isotropic : ScovCoefficients::All;
  } else {
    refuse(a.isotropic, "isotropic", a.kind);
  }
  if (auto* p = std::get_if<PowerSpectrumOptions>(&spec)) {
    if (a.bins) p->bins = *a.bins;
    if (a.binning)
      p->binning = choice<PsBinning>("binning", *a.binning,
                                     {{"linear", PsBinning::Linear}, {"log", PsBinning::Log}});
    if (a.subtract_mean) p->subtract_mean = *a.subtract_mean;
    if (a.include_corners) p->include_corners = *a.include_corners;
  } else {
    refuse(a.bins, "bins", a.kind);
    refuse(a.binning, "binning", a.kind);
    refuse(a.subtract_mean, "subtract_mean", a.kind);
    refuse(a.include_corners, "include_corners", a.kind);
  }
  return spec;
}

py::tuple to_python(Coefficients c) {
  py::object values = c.values.defined() ? py::cast(c.values) : py::none();
  return py::make_tuple(values, c.classes, c.class_id, c.label_names, c.labels);
}

/// An undefined tensor for None.
at::Tensor optional_tensor(const std::optional<at::Tensor>& t) { return t ? *t : at::Tensor(); }

void bind_stats(py::module_& m) {
  py::class_<Reference>(m, "Reference", R"(Normalisation statistics of reference maps.

Computed by ``Statistic.reference(maps)`` and passed to ``forward``, ``forward_cross`` and
``loss_and_grad`` (pywph's stored ``norm="auto"`` normalisation; Cheng's P00 of a reference).
A value, not state of the operator: one operator serves many references.)")
      .def(py::init<>(), "An empty reference: each map normalised by its own statistics.")
      .def(py::init<std::string, std::vector<std::pair<std::string, at::Tensor>>>(),
           py::arg("statistic"), py::arg("tensors"))
      .def_property_readonly("statistic", &Reference::statistic,
                             "Name of the statistic that computed it ('wph', 'scov').")
      .def_property_readonly(
          "tensors",
          [](const Reference& r) {
            py::dict d;
            for (const auto& [name, t] : r.tensors()) d[py::str(name)] = t;
            return d;
          },
          "The named tensors; their first axis runs over the B0 reference maps.")
      .def_property_readonly("maps", &Reference::maps, "B0, the number of reference maps.")
      .def("__bool__", [](const Reference& r) { return !r.empty(); })
      .def("__repr__", [](const Reference& r) {
        if (r.empty()) return std::string("Reference()");
        std::string names;
        for (const auto& [name, t] : r.tensors()) names += (names.empty() ? "" : ", ") + name;
        return "Reference(" + r.statistic() + ", " + std::to_string(r.maps()) +
               " map(s): " + names + ")";
      });

  py::class_<PyStatistic>(m, "Statistic")
      .def(py::init([](std::string kind, int64_t height, int64_t width, std::string boundary,
                       at::Device device, std::string dtype, bool complex_data,
                       std::optional<int> J, std::optional<int> L, std::optional<int> dn,
                       std::string norm, std::optional<int> A, std::optional<double> cut_param,
                       std::optional<int64_t> memory_bytes, std::optional<int> max_order,
                       std::optional<bool> isotropic, std::optional<int> bins,
                       std::optional<std::string> binning, std::optional<bool> subtract_mean,
                       std::optional<bool> include_corners) {
             const BuildArgs a{.kind = std::move(kind),
                               .height = height,
                               .width = width,
                               .boundary = std::move(boundary),
                               .device = device,
                               .dtype = std::move(dtype),
                               .complex_data = complex_data,
                               .J = J,
                               .L = L,
                               .dn = dn,
                               .norm = std::move(norm),
                               .A = A,
                               .cut_param = cut_param,
                               .memory_bytes = memory_bytes,
                               .max_order = max_order,
                               .isotropic = isotropic,
                               .bins = bins,
                               .binning = std::move(binning),
                               .subtract_mean = subtract_mean,
                               .include_corners = include_corners};
             py::gil_scoped_release unlocked; // filters are built here
             return std::make_unique<PyStatistic>(a);
           }),
           py::arg("kind"), py::arg("height"), py::arg("width"), py::kw_only(),
           py::arg("boundary") = "periodic", py::arg("device") = at::Device(at::kCPU),
           py::arg("dtype") = "float32", py::arg("complex_data") = false, py::arg("J") = py::none(),
           py::arg("L") = py::none(), py::arg("dn") = py::none(), py::arg("norm") = "default",
           py::arg("A") = py::none(), py::arg("cut_param") = py::none(),
           py::arg("memory_bytes") = py::none(), py::arg("max_order") = py::none(),
           py::arg("isotropic") = py::none(), py::arg("bins") = py::none(),
           py::arg("binning") = py::none(), py::arg("subtract_mean") = py::none(),
           py::arg("include_corners") = py::none())
      .def("forward", &PyStatistic::forward, py::arg("x"), py::arg("reference") = py::none())
      .def("forward_cross", &PyStatistic::forward_cross, py::arg("x"), py::arg("y"),
           py::arg("reference") = py::none())
      .def("reference", &PyStatistic::reference, py::arg("maps"))
      .def("forward_maps", &PyStatistic::forward_maps, py::arg("x"))
      .def("loss_and_grad", &PyStatistic::loss_and_grad, py::arg("x"), py::arg("target"),
           py::arg("weights") = py::none(), py::arg("weights_imag") = py::none(),
           py::arg("reference") = py::none(), py::arg("want_grad") = true)
      .def("labels", &PyStatistic::labels)
      .def("keywords", &PyStatistic::keywords)
      .def_property_readonly("name", &PyStatistic::name)
      .def_property_readonly("size", &PyStatistic::size)
      .def_property_readonly("supports_cross", &PyStatistic::supports_cross)
      .def_property_readonly("supports_complex", &PyStatistic::supports_complex)
      .def_property_readonly("device", &PyStatistic::device)
      .def("describe", &PyStatistic::describe);

  m.def("statistic_names", [] {
    std::vector<std::string> names;
    for (const StatisticInfo& info : statistic_registry()) names.push_back(info.name);
    return names;
  });
  m.def(
      "default_J",
      [](const std::string& kind, int64_t height, int64_t width) {
        return demix::default_J(statistic_info(kind).kind, Grid2d{height, width});
      },
      py::arg("kind"), py::arg("height"), py::arg("width"));
}

} // namespace demix::python

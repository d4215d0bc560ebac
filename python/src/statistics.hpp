#pragma once
// The statistics operators as the extension builds them, shared by the statistics bindings
// (stats.cpp) and those that build their own statistics from the same options (synthesis.cpp).

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/registry.hpp>
#include <demix/stats/wst.hpp>

#include "bindings.hpp"

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace demix::python {

/// Everything that defines an operator, as the Python classes pass it. Options a statistic does
/// not take are nullopt (the Python classes' signatures keep them apart).
struct BuildArgs {
  std::string kind; // registry name: "wph", "wst", "scov", "ps"
  int64_t height = 0, width = 0;
  std::string boundary = "periodic"; // "periodic" | "nonperiodic"
  at::Device device = at::kCPU;
  std::string dtype = "float32"; // "float32" | "float64"
  bool complex_data = false;     // WPH: complex maps (Q + iU)
  std::optional<int> J, L, dn;
  std::string norm = "default"; // "default" | "none" | "auto" (| "p11" for scov)
  // WPH
  std::optional<int> A;
  std::optional<double> cut_param;
  std::optional<int64_t> memory_bytes;
  // WST
  std::optional<int> max_order;
  // scattering covariance
  std::optional<bool> isotropic;
  // power spectrum
  std::optional<int> bins;
  std::optional<std::string> binning; // "linear" | "log"
  std::optional<bool> subtract_mean, include_corners;
};

/// The enumerator `value` names among `choices`; ValueError listing them otherwise.
template <class E>
E choice(const std::string& what, const std::string& value,
         std::initializer_list<std::pair<const char*, E>> choices) {
  std::string names;
  for (const auto& [name, e] : choices) {
    if (value == name) return e;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  throw ValueError(what + " must be one of " + names + ", got '" + value + "'");
}

/// The device and precision a call asks for, keeping the process's thread count.
Context make_context(const at::Device& device, const std::string& dtype);
/// The grid of the options' shape and boundary (ShapeError, ValueError).
Grid2d grid_of(const BuildArgs& a);
/// The statistic's options resolved by the registry (defaults filled in, as the CLI does), with
/// the statistic's own options applied; ValueError for an option the statistic does not take.
StatisticSpec spec_of(const BuildArgs& a, const Grid2d& grid);
/// Coefficients as the Python class takes them: (values or None, classes, class_id (K,),
/// label_names, labels (K, n_labels)).
py::tuple to_python(Coefficients c);
/// An undefined tensor for None.
at::Tensor optional_tensor(const std::optional<at::Tensor>& t);

/// The operator as Python sees it: const methods of a shared, immutable statistic.
class PyStatistic {
public:
  explicit PyStatistic(const BuildArgs& args)
      : args_(args), stat_(make_statistic(spec_of(args, grid_of(args)), grid_of(args),
                                          make_context(args.device, args.dtype))) {}
  /// The options it was built from (synthesis builds its own statistics from them).
  const BuildArgs& args() const { return args_; }

  py::tuple forward(const at::Tensor& x, const std::optional<Reference>& ref) const {
    Coefficients c;
    {
      py::gil_scoped_release unlocked;
      c = stat_->forward(x, ref.value_or(Reference()));
    }
    return to_python(std::move(c));
  }

  py::tuple forward_cross(const at::Tensor& x, const at::Tensor& y,
                          const std::optional<Reference>& ref) const {
    Coefficients c;
    {
      py::gil_scoped_release unlocked;
      c = stat_->forward_cross(x, y, ref.value_or(Reference()));
    }
    return to_python(std::move(c));
  }

  Reference reference(const at::Tensor& maps) const {
    py::gil_scoped_release unlocked;
    return stat_->reference(maps);
  }

  py::tuple loss_and_grad(const at::Tensor& x, const at::Tensor& target,
                          const std::optional<at::Tensor>& weights,
                          const std::optional<at::Tensor>& weights_imag,
                          const std::optional<Reference>& ref, bool want_grad) const {
    LossResult r;
    {
      py::gil_scoped_release unlocked;
      const SquaredDistance loss(target, optional_tensor(weights), optional_tensor(weights_imag));
      r = stat_->loss_and_grad(x, loss, ref.value_or(Reference()), want_grad);
    }
    return py::make_tuple(r.loss, r.grad.defined() ? py::cast(r.grad) : py::none());
  }

  /// The WST's scattering maps before their spatial mean (kymatio's output array): (B, C, h, w),
  /// differentiable. ValueError for the other statistics, which have no such maps.
  at::Tensor forward_maps(const at::Tensor& x) const {
    const auto* wst = dynamic_cast<const WstOperator*>(stat_.get());
    if (!wst)
      throw ValueError("statistic '" + std::string(stat_->name()) +
                       "' has no scattering maps (only 'wst' does)");
    py::gil_scoped_release unlocked;
    return wst->forward_maps(x);
  }

  py::tuple labels() const { return to_python(stat_->labels()); }

  /// (FITS keyword, JSON key, value, comment) of each option.
  std::vector<py::tuple> keywords() const {
    std::vector<py::tuple> out;
    for (const StatisticKeyword& k : stat_->keywords())
      out.push_back(py::make_tuple(k.fits, k.json,
                                   std::visit([](const auto& v) { return py::cast(v); }, k.value),
                                   k.comment));
    return out;
  }

  std::string name() const { return stat_->name(); }
  int64_t size() const { return stat_->size(); }
  bool supports_cross() const { return stat_->supports_cross(); }
  bool supports_complex() const { return stat_->supports_complex(); }
  at::Device device() const { return stat_->context().device(); }
  std::string describe() const { return stat_->context().describe(); }

private:
  BuildArgs args_;
  std::shared_ptr<const Statistic> stat_;
};

} // namespace demix::python

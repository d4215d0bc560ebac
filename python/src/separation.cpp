// Component separation (separation/component_separation.hpp) and the validation report
// (validation/compare.hpp) for Python. The statistics come as the Python operators' options, as
// for synthesis; the separation's progress callback runs with the GIL and lets Ctrl-C stop it.

#include <demix/separation/component_separation.hpp>
#include <demix/validation/compare.hpp>

#include "statistics.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace demix::python {

namespace {

std::vector<StatisticTerm> terms_of(const std::vector<std::pair<const PyStatistic*, double>>& stats,
                                    const Grid2d& grid, bool complex) {
  std::vector<StatisticTerm> out;
  for (const auto& [stat, weight] : stats) {
    BuildArgs a = stat->args();
    a.complex_data = complex && a.kind == "wph";
    if (a.height != grid.height || a.width != grid.width)
      throw ShapeError("a " + a.kind + " operator built for " + std::to_string(a.height) + " x " +
                       std::to_string(a.width) + " maps cannot separate " +
                       std::to_string(grid.height) + " x " + std::to_string(grid.width) + " maps");
    out.push_back({spec_of(a, grid_of(a)), weight});
  }
  return out;
}

} // namespace

void bind_separation(py::module_& m) {
  m.def(
      "separate",
      [](const at::Tensor& observation, const at::Tensor& contamination,
         const std::vector<std::pair<const PyStatistic*, double>>& stats,
         const std::string& estimator, int eras, int iterations, int spectrum_eras,
         const std::string& start, const py::dict& terms, const std::optional<at::Tensor>& tmpl,
         const std::optional<at::Tensor>& half_missions, const std::optional<at::Tensor>& regions,
         const std::optional<at::Tensor>& masks, double bias_clip, bool cross,
         int fresh_realizations, std::uint64_t seed, int chunk, const at::Device& device,
         const std::string& dtype, const py::object& progress) {
        if (observation.dim() != 3)
          throw ShapeError("observation must be (C, H, W), got " +
                           std::to_string(observation.dim()) + " dimensions");
        const Grid2d grid{observation.size(1), observation.size(2)};
        SeparationOptions o;
        o.statistics = terms_of(stats, grid, observation.is_complex());
        o.estimator =
            choice<SeparationEstimator>("estimator", estimator,
                                        {{"bias", SeparationEstimator::Bias},
                                         {"realizations", SeparationEstimator::Realizations}});
        o.eras = eras, o.iterations = iterations, o.spectrum_eras = spectrum_eras;
        o.lbfgs.max_iterations = iterations;
        o.start = choice<SeparationStart>("start", start,
                                          {{"matched", SeparationStart::Matched},
                                           {"wiener", SeparationStart::Wiener},
                                           {"observation", SeparationStart::Observation}});
        for (const auto& [key, value] : terms) {
          const std::string name = py::str(key);
          const double w = value.cast<double>();
          if (name == "contamination")
            o.terms.contamination = w;
          else if (name == "independence")
            o.terms.independence = w;
          else if (name == "template")
            o.terms.template_correlation = w;
          else if (name == "half_missions")
            o.terms.half_missions = w;
          else if (name == "residual_variance")
            o.terms.residual_variance = w;
          else
            throw ValueError("terms: no term '" + name +
                             "' (contamination, independence, template, half_missions, "
                             "residual_variance)");
        }
        o.bias_clip = bias_clip, o.cross_channels = cross, o.chunk = chunk;
        o.fresh_realizations = fresh_realizations, o.fresh_seed = seed;
        const SeparationMaps maps{optional_tensor(tmpl), optional_tensor(half_missions),
                                  optional_tensor(regions), optional_tensor(masks)};
        const Context context = make_context(device, dtype);
        SeparationRun run;
        run.progress = [&progress](const SeparationProgress& p) {
          py::gil_scoped_acquire locked;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();
          if (!progress.is_none())
            progress(py::dict(py::arg("era") = p.era, py::arg("eras") = p.eras,
                              py::arg("iteration") = p.iteration,
                              py::arg("iterations") = p.iterations, py::arg("loss") = p.loss));
        };
        SeparationResult r;
        {
          py::gil_scoped_release unlocked;
          const Separator separator(observation, contamination, o, grid, context, maps);
          r = separator.run(run);
        }
        return py::dict(py::arg("signal") = r.signal, py::arg("contamination") = r.contamination,
                        py::arg("loss_history") = r.loss_history,
                        py::arg("kept_parts") = r.kept_parts, py::arg("seconds") = r.seconds);
      },
      py::arg("observation"), py::arg("contamination"), py::arg("statistics"), py::kw_only(),
      py::arg("estimator"), py::arg("eras"), py::arg("iterations"), py::arg("spectrum_eras"),
      py::arg("start"), py::arg("terms"), py::arg("template"), py::arg("half_missions"),
      py::arg("regions"), py::arg("masks"), py::arg("bias_clip"), py::arg("cross"),
      py::arg("fresh_realizations"), py::arg("seed"), py::arg("chunk"), py::arg("device"),
      py::arg("dtype"), py::arg("progress"));

  m.def(
      "wiener_filter",
      [](const at::Tensor& observation, const at::Tensor& contamination, const std::string& gain) {
        const FilterGain g = choice<FilterGain>(
            "gain", gain, {{"wiener", FilterGain::Wiener}, {"matched", FilterGain::Matched}});
        py::gil_scoped_release unlocked;
        return wiener_filter(observation, contamination, {}, g);
      },
      py::arg("observation"), py::arg("contamination"), py::arg("gain"));

  m.def(
      "validate",
      [](const at::Tensor& targets, const at::Tensor& samples, const std::string& figure,
         const std::string& title) {
        py::gil_scoped_release unlocked;
        const ValidationReport report = validate_maps(targets, samples);
        if (!figure.empty()) write_validation_figure(figure, report, title);
        return validation_json(report);
      },
      py::arg("targets"), py::arg("samples"), py::arg("figure"), py::arg("title"));
}

} // namespace demix::python

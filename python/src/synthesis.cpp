// Microcanonical synthesis (synthesis/microcanonical.hpp) for Python: the statistics come as the
// Python operators' options (so demix.WPH(..., norm="auto") means the same in both places), the
// progress callback runs with the GIL and lets Ctrl-C stop a long run.

#include <demix/synthesis/microcanonical.hpp>

#include "statistics.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace demix::python {

void bind_synthesis(py::module_& m) {
  m.def(
      "synthesize",
      [](const at::Tensor& targets, const std::vector<std::pair<const PyStatistic*, double>>& stats,
         int samples, int iterations, std::uint64_t seed, bool log, bool standardize,
         const std::string& init, const std::string& scale, bool cross, int history,
         const at::Device& device, const std::string& dtype, const py::object& progress) {
        if (targets.dim() != 4)
          throw ShapeError("targets must be (T, C, H, W), got " + std::to_string(targets.dim()) +
                           " dimensions");
        const Grid2d grid{targets.size(2), targets.size(3)};
        SynthesisOptions o;
        for (const auto& [stat, weight] : stats) {
          BuildArgs a = stat->args();
          a.complex_data = targets.is_complex() && a.kind == "wph";
          if (a.height != grid.height || a.width != grid.width)
            throw ShapeError("a " + a.kind + " operator built for " + std::to_string(a.height) +
                             " x " + std::to_string(a.width) + " maps cannot match " +
                             std::to_string(grid.height) + " x " + std::to_string(grid.width) +
                             " targets");
          o.matching.statistics.push_back({spec_of(a, grid_of(a)), weight});
        }
        o.matching.cross = cross;
        o.matching.scale = choice<TermScale>("scale", scale,
                                             {{"auto", TermScale::Auto},
                                              {"none", TermScale::None},
                                              {"modulus", TermScale::Modulus},
                                              {"class-rms", TermScale::ClassRms},
                                              {"statistic-rms", TermScale::StatisticRms},
                                              {"spread", TermScale::Spread}});
        o.samples = samples;
        o.iterations = iterations;
        o.lbfgs.history = history;
        o.seed = seed;
        o.log = log;
        o.standardize = standardize;
        o.init = choice<SynthesisInit>(
            "init", init, {{"noise", SynthesisInit::Noise}, {"gaussian", SynthesisInit::Gaussian}});
        const Context context = make_context(device, dtype);

        SynthesisRun run;
        // After each iteration: the user's callback, and Ctrl-C (a Python exception thrown
        // through the run, which leaves nothing behind).
        run.progress = [&progress](const SynthesisProgress& p) {
          py::gil_scoped_acquire locked;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();
          if (!progress.is_none())
            progress(py::dict(
                py::arg("iteration") = p.iteration, py::arg("iterations") = p.iterations,
                py::arg("loss") = p.loss, py::arg("running") = p.running,
                py::arg("iterations_per_s") = p.iterations_per_s, py::arg("eta_s") = p.eta_s));
        };
        SynthesisResult r;
        {
          py::gil_scoped_release unlocked;
          const Synthesizer synthesizer(targets, o, grid, context);
          r = synthesizer.run(run);
        }
        return py::dict(py::arg("samples") = r.samples, py::arg("loss_history") = r.loss_history,
                        py::arg("term_losses") = r.term_losses,
                        py::arg("term_names") = r.term_names, py::arg("converged") = r.converged,
                        py::arg("iterations") = r.iterations,
                        py::arg("evaluations") = r.evaluations, py::arg("seconds") = r.seconds);
      },
      py::arg("targets"), py::arg("statistics"), py::kw_only(), py::arg("samples"),
      py::arg("iterations"), py::arg("seed"), py::arg("log"), py::arg("standardize"),
      py::arg("init"), py::arg("scale"), py::arg("cross"), py::arg("history"), py::arg("device"),
      py::arg("dtype"), py::arg("progress"));
}

} // namespace demix::python

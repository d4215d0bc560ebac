// Galaxy simulation (sim/simulate.hpp, sim/dataset.hpp) and the deblending pipeline
// (deblend/pipeline.hpp) for Python: the same dataset files as `demix simulate`, the same
// catalogue as `demix deblend`. Tables pass as (name, values, unit, description) columns; the
// Python side (python/demix/galaxies.py) makes NumPy or astropy tables of them.

#include <demix/deblend/pipeline.hpp>
#include <demix/io/image.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/sim/simulate.hpp>

#include "header.hpp"
#include "statistics.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <pybind11/stl.h>
#include <string>
#include <vector>

namespace demix::python {

namespace {

/// A table's columns: (name, values tensor or list of str, unit, description).
py::list columns_of(const Table& t) {
  py::list out;
  for (const Column& c : t.columns) {
    py::object values = c.is_text() ? py::cast(c.text) : py::cast(c.values);
    out.append(py::make_tuple(c.name, values, c.unit, c.description));
  }
  return out;
}

/// None for an undefined tensor.
py::object optional_tensor_value(const at::Tensor& t) {
  return t.defined() ? py::cast(t) : py::none();
}

PsfModel psf_of(const std::string& name) {
  return choice<PsfModel>("psf", name,
                          {{"moffat", PsfModel::Moffat},
                           {"kolmogorov", PsfModel::Kolmogorov},
                           {"none", PsfModel::None}});
}

/// The writer's progress: the Python callback with the GIL, Ctrl-C stops the run.
std::function<void(int64_t, int64_t)> progress_of(const py::object& progress) {
  return [progress](int64_t done, int64_t total) {
    py::gil_scoped_acquire locked;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (!progress.is_none()) progress(py::dict(py::arg("done") = done, py::arg("total") = total));
  };
}

} // namespace

void bind_galaxies(py::module_& m) {
  m.def(
      "simulate_blends",
      [](const std::string& path, int64_t count, std::uint64_t seed, int64_t min_galaxies,
         int64_t max_galaxies, int64_t field_size, double density, int64_t stamp_size, bool noise,
         bool source_noise, const std::string& psf, double mag_limit, double mag_bright,
         const std::string& truth, const at::Device& device, const py::object& progress) {
        BlendOptions o;
        o.count = count, o.seed = seed, o.min_galaxies = min_galaxies;
        o.max_galaxies = max_galaxies, o.field_size = field_size, o.density = density;
        o.stamp_size = stamp_size, o.noise = noise, o.source_noise = source_noise;
        o.psf = psf_of(psf);
        o.population.mag_limit = mag_limit, o.population.mag_bright = mag_bright;
        const Context context = make_context(device, "float32");
        py::gil_scoped_release unlocked;
        const BlendSimulator simulator(Survey::lsst(), o, context);
        write_blend_dataset(path, simulator, {truth, 256, progress_of(progress)});
      },
      py::arg("path"), py::kw_only(), py::arg("count"), py::arg("seed"), py::arg("min_galaxies"),
      py::arg("max_galaxies"), py::arg("field_size"), py::arg("density"), py::arg("stamp_size"),
      py::arg("noise"), py::arg("source_noise"), py::arg("psf"), py::arg("mag_limit"),
      py::arg("mag_bright"), py::arg("truth"), py::arg("device"), py::arg("progress"));

  m.def(
      "simulate_isolated",
      [](const std::string& path, int64_t count, std::uint64_t seed, int64_t stamp_size,
         double max_offset, bool noise, bool source_noise, const std::string& psf, double mag_limit,
         double mag_bright, const std::string& truth, const at::Device& device,
         const py::object& progress) {
        IsolatedOptions o;
        o.count = count, o.seed = seed, o.stamp_size = stamp_size, o.max_offset = max_offset;
        o.noise = noise, o.source_noise = source_noise, o.psf = psf_of(psf);
        o.population.mag_limit = mag_limit, o.population.mag_bright = mag_bright;
        const Context context = make_context(device, "float32");
        py::gil_scoped_release unlocked;
        const IsolatedSimulator simulator(Survey::lsst(), o, context);
        write_isolated_dataset(path, simulator, {truth, 256, progress_of(progress)});
      },
      py::arg("path"), py::kw_only(), py::arg("count"), py::arg("seed"), py::arg("stamp_size"),
      py::arg("max_offset"), py::arg("noise"), py::arg("source_noise"), py::arg("psf"),
      py::arg("mag_limit"), py::arg("mag_bright"), py::arg("truth"), py::arg("device"),
      py::arg("progress"));

  m.def(
      "read_dataset",
      [](const std::string& path) {
        SimulatedDataset d;
        {
          py::gil_scoped_release unlocked;
          d = read_dataset(path);
        }
        return py::dict(py::arg("kind") = d.kind, py::arg("images") = d.images,
                        py::arg("noiseless") = optional_tensor_value(d.noiseless),
                        py::arg("stamps") = optional_tensor_value(d.stamps),
                        py::arg("psf") = optional_tensor_value(d.psf),
                        py::arg("sigma") = optional_tensor_value(d.sigma),
                        py::arg("bands") = d.bands, py::arg("truth") = columns_of(d.truth),
                        py::arg("cards") = d.header.cards());
      },
      py::arg("path"));

  m.def(
      "deblend",
      [](const at::Tensor& image, const std::vector<Entry>& header,
         const std::optional<at::Tensor>& positions, const std::string& method,
         const std::string& model, const std::vector<double>& noise_sigmas, bool noise_from_image,
         int max_steps, int64_t stamp_size, bool full_frame, double threshold,
         const at::Device& device, const std::string& dtype) {
        DeblendPipelineOptions o;
        o.method = choice<DeblendMethod>(
            "method", method,
            {{"madness", DeblendMethod::Madness}, {"classical", DeblendMethod::Classical}});
        if (!noise_sigmas.empty()) {
          o.noise = NoiseLevels::Given;
          o.noise_sigmas = noise_sigmas;
        } else if (noise_from_image) {
          o.noise = NoiseLevels::Image;
        }
        o.madness.max_steps = max_steps;
        o.stamp_size = stamp_size, o.full_frame = full_frame;
        o.detection.threshold = threshold;
        const Context context = make_context(device, dtype);
        DeblendReport r;
        {
          py::gil_scoped_release unlocked;
          std::shared_ptr<const GalaxyPrior> prior;
          if (o.method == DeblendMethod::Madness) {
            auto loaded = std::make_shared<MadnessModel>(MadnessModel::load(
                model.empty() ? MadnessModel::shipped_model_path() : model, context.device()));
            loaded->vae().set_decoder_compute(DecoderCompute::for_fitting(context.device()));
            prior = loaded;
          }
          const DeblendPipeline pipeline(o, prior, context);
          const Image blend{image, header_from(header), "the blend", {}};
          r = pipeline.run(blend, positions ? *positions : at::Tensor());
        }
        return py::dict(py::arg("positions") = r.blend.positions,
                        py::arg("noise_sigmas") = optional_tensor_value(r.blend.noise_sigmas),
                        py::arg("bands") = r.blend.band_names, py::arg("stamps") = r.stamps,
                        py::arg("stamp_origins") = r.stamp_origins,
                        py::arg("children") = optional_tensor_value(r.children),
                        py::arg("residual") = r.residual, py::arg("converged") = r.converged,
                        py::arg("steps") = r.steps, py::arg("loss") = r.loss,
                        py::arg("catalogue") = columns_of(r.catalogue));
      },
      py::arg("image"), py::arg("header"), py::arg("positions"), py::kw_only(), py::arg("method"),
      py::arg("model"), py::arg("noise_sigmas"), py::arg("noise_from_image"), py::arg("max_steps"),
      py::arg("stamp_size"), py::arg("full_frame"), py::arg("threshold"), py::arg("device"),
      py::arg("dtype"));
}

} // namespace demix::python

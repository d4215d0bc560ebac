// demix simulate isolated|blends: LSST-like galaxy datasets (simulation in
// include/demix/sim/simulate.hpp, file layout in include/demix/sim/dataset.hpp).

#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/table.hpp>
#include <demix/sim/dataset.hpp>
#include <demix/sim/simulate.hpp>
#include <demix/viz/chart.hpp>
#include <demix/viz/rgb.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

namespace demix::cli {

namespace {

enum class DatasetKind { Isolated, Blends };

struct SimulateCliOptions {
  DatasetKind kind = DatasetKind::Isolated;
  int64_t count = 0; // 0: the kind's default
  uint64_t seed = 0;
  std::string output, csv, png;
  int64_t stamp_size = 45;
  PsfModel psf = PsfModel::Moffat;
  bool no_noise = false, source_noise = false;
  PopulationOptions population;
  double max_offset = 0;                      // isolated
  int64_t min_galaxies = 1, max_galaxies = 6; // blends
  int64_t field_size = 120;
  double density = 0;
  int64_t chunk = 256;
  int64_t render_batch = 48;
  std::string rgb_bands = "i,r,g";
};

/// Planes of `image` (B, H, W) named in "i,r,g" order (R, G, B), using the survey's band names,
/// each divided by its band's electrons per unit AB flux (relative to the red one), so that a
/// source with a flat AB spectrum is grey.
at::Tensor pick_rgb(const at::Tensor& image, const Survey& survey, const std::string& names) {
  std::vector<at::Tensor> planes;
  std::vector<int> bands;
  std::size_t start = 0;
  while (start <= names.size()) {
    const auto comma = names.find(',', start);
    const std::string name =
        names.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    bands.push_back(survey.band_index(name));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (bands.size() != 3)
    throw ValueError("--rgb needs three band names, e.g. i,r,g; got '" + names + "'");
  for (int b : bands) planes.push_back(image[b] * (survey.flux(bands[0], 0) / survey.flux(b, 0)));
  return at::stack(planes);
}

/// Black level of the --png picture: the mean calibrated noise sigma of the three bands, so that
/// the sky is dark and galaxies stand out (0 without noise).
double black_level(const Survey& survey, const std::string& names, bool noise) {
  if (!noise) return 0.0;
  const at::Tensor sigma = survey.noise_sigmas(at::kDouble).view({-1, 1, 1});
  return pick_rgb(sigma, survey, names).mean().item<double>();
}

class Progress {
public:
  Progress(bool quiet, const char* unit) : quiet_(quiet), unit_(unit) {}
  void operator()(int64_t done, int64_t total) {
    if (quiet_) return;
    const double t = seconds();
    if (done < total && t - last_ < 5.0) return; // a line every 5 s, and the last one
    last_ = t;
    std::fprintf(stderr, "demix simulate: %lld / %lld %s (%.0f%%), %.1f s, %.0f %s/s\n",
                 static_cast<long long>(done), static_cast<long long>(total), unit_,
                 100.0 * static_cast<double>(done) / static_cast<double>(total), t,
                 static_cast<double>(done) / std::max(t, 1e-9), unit_);
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

private:
  bool quiet_;
  const char* unit_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double last_ = 0;
};

void run_simulate(const SimulateCliOptions& o, const Globals& globals) {
  if (format_for_output(o.output) != FileFormat::Fits)
    throw ValueError("simulate writes FITS files; output '" + o.output + "' does not end in .fits");
  if (!o.png.empty() && format_for_output(o.png) != FileFormat::Png)
    throw ValueError("--png '" + o.png + "' does not end in .png");
  OutputFiles outputs;
  outputs.add(o.output, "the dataset (-o)");
  if (!o.csv.empty()) {
    table_format_for_output(o.csv); // refuse a name of no catalogue format before the work
    outputs.add(o.csv, "--csv");
  }
  if (!o.png.empty()) outputs.add(o.png, "--png");
  const Context ctx = make_context(globals);
  const Survey survey = Survey::lsst();
  const DatasetWriteOptions write{
      .csv_path = o.csv.empty() ? "" : outputs.staged(o.csv), .chunk = o.chunk, .progress = {}};
  const bool isolated = o.kind == DatasetKind::Isolated;
  Progress progress(globals.quiet, isolated ? "stamps" : "blends");
  DatasetWriteOptions w = write;
  w.progress = [&progress](int64_t done, int64_t total) { progress(done, total); };
  at::Tensor first_image; // for --png
  int64_t items = 0, galaxies = 0;
  std::string shape;
  if (isolated) {
    const IsolatedOptions opts{.count = o.count > 0 ? o.count : 1000,
                               .seed = o.seed,
                               .stamp_size = o.stamp_size,
                               .max_offset = o.max_offset,
                               .noise = !o.no_noise,
                               .source_noise = o.source_noise,
                               .psf = o.psf,
                               .population = o.population,
                               .render_batch = o.render_batch};
    const IsolatedSimulator sim(survey, opts, ctx);
    // The picture first, so that a bad --rgb fails before the long run.
    if (!o.png.empty()) first_image = pick_rgb(sim.render(0, 1).images[0], survey, o.rgb_bands);
    write_isolated_dataset(outputs.staged(o.output), sim, w);
    items = galaxies = sim.size();
    shape = std::to_string(survey.n_bands()) + " x " + std::to_string(o.stamp_size) + " x " +
            std::to_string(o.stamp_size);
  } else {
    const BlendOptions opts{.count = o.count > 0 ? o.count : 100,
                            .seed = o.seed,
                            .min_galaxies = o.min_galaxies,
                            .max_galaxies = o.max_galaxies,
                            .field_size = o.field_size,
                            .density = o.density,
                            .stamp_size = o.stamp_size,
                            .noise = !o.no_noise,
                            .source_noise = o.source_noise,
                            .psf = o.psf,
                            .population = o.population,
                            .render_batch = o.render_batch};
    const BlendSimulator sim(survey, opts, ctx);
    if (!o.png.empty()) first_image = pick_rgb(sim.render(0, 1).images[0], survey, o.rgb_bands);
    write_blend_dataset(outputs.staged(o.output), sim, w);
    items = sim.size();
    galaxies = sim.galaxy_count();
    shape = std::to_string(survey.n_bands()) + " x " + std::to_string(o.field_size) + " x " +
            std::to_string(o.field_size);
  }
  if (!o.png.empty()) {
    RgbOptions rgb;
    rgb.minimum = black_level(survey, o.rgb_bands, !o.no_noise);
    if (charts_available())
      write_picture_figure(outputs.staged(o.png), render_rgb(first_image, rgb), rgb.origin_lower,
                           std::string(isolated ? "stamp" : "blend") + " 0 of " + o.output +
                               " (red, green, blue: " + o.rgb_bands + ")");
    else // a build without cairo: the picture alone
      write_rgb_png(outputs.staged(o.png), first_image, rgb);
  }
  outputs.commit();
  if (!globals.quiet) {
    const double t = progress.seconds();
    std::cout << "wrote " << o.output << ": " << items << (isolated ? " stamps" : " blends")
              << " of " << shape << " pixels";
    if (!isolated) std::cout << ", " << galaxies << " galaxies";
    std::cout << " (seed " << o.seed << ", " << ctx.describe() << ", "
              << static_cast<int64_t>(t * 10) / 10.0 << " s)\n";
    if (!o.csv.empty()) std::cout << "wrote " << o.csv << " (truth catalogue)\n";
    if (!o.png.empty())
      std::cout << "wrote " << o.png << " (" << o.rgb_bands << " of the first "
                << (isolated ? "stamp" : "blend") << ")\n";
  }
}

void add_common_options(CLI::App* cmd, SimulateCliOptions& o) {
  const std::map<std::string, PsfModel> psfs{
      {"moffat", PsfModel::Moffat}, {"kolmogorov", PsfModel::Kolmogorov}, {"none", PsfModel::None}};
  cmd->add_option("-o,--output", o.output, "Output FITS file")->required();
  cmd->add_option("--seed", o.seed, "Random seed (same seed, same dataset)")->default_str("0");
  cmd->add_option("--csv", o.csv,
                  "Also write the truth catalogue here: .csv, or .ecsv / .fits with units");
  cmd->add_option("--png", o.png, "Also write a colour picture of the first stamp or blend");
  cmd->add_option("--rgb", o.rgb_bands, "Bands shown as red, green, blue in --png")
      ->default_str("i,r,g");
  cmd->add_option("--stamp-size", o.stamp_size, "Side of the galaxy stamps, pixels (odd)")
      ->check(CLI::Range(5, 1001))
      ->default_str("45");
  cmd->add_option("--psf", o.psf, "PSF profile: moffat, kolmogorov or none")
      ->transform(choice(psfs))
      ->default_str("moffat");
  cmd->add_flag("--no-noise", o.no_noise, "Noiseless images only");
  cmd->add_flag("--source-noise", o.source_noise, "Add the galaxies' own Poisson noise");
  cmd->add_option("--mag-limit", o.population.mag_limit, "Faintest magnitude (LSST gold: 25.3)")
      ->default_str("25.3");
  cmd->add_option("--mag-bright", o.population.mag_bright, "Brightest magnitude")
      ->default_str("20");
  cmd->add_option("--mag-band", o.population.limit_band, "Band of the magnitude limit")
      ->default_str("i");
  cmd->add_option("--chunk", o.chunk, "Items rendered at a time (memory)")
      ->check(at_least(1))
      ->default_str("256");
  cmd->add_option("--render-batch", o.render_batch,
                  "Galaxies per FFT batch (speed: ~48 on CPUs, ~512 on GPUs)")
      ->check(at_least(1))
      ->default_str("48");
}

} // namespace

void add_simulate_command(CLI::App& app, const Globals& globals) {
  auto* cmd = app.add_subcommand(
      "simulate", "Simulate LSST-like galaxy stamps or blends, or a noisy observation of a map");
  cmd->require_subcommand(1);
  add_simulate_observation_command(*cmd, globals);

  auto iso = std::make_shared<SimulateCliOptions>();
  auto* isolated =
      cmd->add_subcommand("isolated", "Isolated galaxies, one per stamp (training sets)");
  isolated->add_option("-n,--count", iso->count, "Number of stamps")
      ->check(at_least(1))
      ->default_str("1000");
  isolated
      ->add_option("--max-offset", iso->max_offset,
                   "Centres uniform within +-this many pixels of the centre pixel, [0, 0.5)")
      ->check(CLI::Range(0.0, 0.4999999))
      ->default_str("0");
  add_common_options(isolated, *iso);
  isolated->callback([iso, &globals] {
    iso->kind = DatasetKind::Isolated;
    run_simulate(*iso, globals);
  });

  auto bl = std::make_shared<SimulateCliOptions>();
  auto* blends = cmd->add_subcommand("blends", "Blends of several galaxies with their truth");
  blends->add_option("-n,--count", bl->count, "Number of blends")
      ->check(at_least(1))
      ->default_str("100");
  blends->add_option("--min-galaxies", bl->min_galaxies, "Fewest galaxies per blend")
      ->check(in_range(1, 100))
      ->default_str("1");
  blends->add_option("--max-galaxies", bl->max_galaxies, "Most galaxies per blend")
      ->check(in_range(1, 100))
      ->default_str("6");
  blends->add_option("--size", bl->field_size, "Side of the blend images, pixels")
      ->check(at_least(5))
      ->default_str("120");
  blends
      ->add_option("--density", bl->density,
                   "Galaxies per arcmin^2 over the square their centres are drawn in "
                   "(0: the largest square that keeps every stamp inside the image)")
      ->check(at_least(0))
      ->default_str("0");
  add_common_options(blends, *bl);
  blends->callback([bl, &globals] {
    bl->kind = DatasetKind::Blends;
    run_simulate(*bl, globals);
  });
}

} // namespace demix::cli

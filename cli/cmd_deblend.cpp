// demix deblend BLEND.fits... (--catalog POS.csv... | --detect) -o OUTDIR: separate the galaxies of
// multi-band blends, with MADNESS (a trained generative model, --model) or the SDSS-style
// symmetric-template deblender (--method classical, no model). The pipeline is the library's
// (deblend/pipeline.hpp); this file parses the options, writes the files and prints.
//
// Outputs in OUTDIR, written all together or not at all (OutputFiles):
//   galaxy_<k>.fits  the model of galaxy k: a (B, S, S) cube centred on its nearest pixel (S = the
//                    model's stamp size; --stamp for classical), or (B, H, W) with --full-frame;
//                    the input's keywords plus DEBLEND, GALID, GALX, GALY, STAMPX0, STAMPY0
//   residual.fits    (B, H, W) the blend minus all models
//   catalogue.fits   id, x, y, ra, dec, flux_<band>, mag_<band>, e1, e2, converged, flags (with
//                    units; --catalogue-format ecsv or csv for text)
// Several blends (a survey's worth, the model loaded once): blend_<k>/ holds blend k's
// galaxy_<i>.fits and residual.fits, and OUTDIR/catalogue.fits all galaxies with their blend's
// index and file.
// Noise per band, in this order: --sigma or --noise-from-image (estimate_noise_sigmas), the
// keywords SIGMA1..SIGMAn of the blend, the survey table.

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/deblend/pipeline.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>
#include <demix/models/madness_model.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <sys/stat.h>

namespace demix::cli {

namespace {

struct DeblendCliOptions {
  std::vector<std::string> inputs;       ///< blend files
  std::vector<std::string> catalogs;     ///< FITS, ECSV or CSV with the positions, one per blend;
                                         ///< none with --detect
  PositionColumns columns;               ///< --x-col, --y-col, --origin
  std::string catalogue_format = "fits"; ///< of the output catalogue: fits, ecsv, csv
  bool detect = false;
  std::string output; ///< folder
  std::string model;
  bool float32_decoder = false; ///< MADNESS: no reduced-precision decoder on CUDA
  std::vector<double> sigma;    ///< --sigma
  bool noise_from_image = false;
  NonFinitePolicy non_finite = NonFinitePolicy::Reject;
  DeblendPipelineOptions pipeline; ///< the rest: method, fit, detection, stamps
};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string noise_source_text(NoiseSource source, int64_t bands) {
  switch (source) {
  case NoiseSource::Given: return "--sigma";
  case NoiseSource::Image: return "the image's clipped pixel scatter";
  case NoiseSource::Keywords: return "header SIGMA1..SIGMA" + std::to_string(bands);
  case NoiseSource::SurveyTable: return "survey table";
  case NoiseSource::None: break;
  }
  return "nowhere";
}

/// IoError unless `path` is a folder or can be made one; made only once the results are there, so
/// that a failure leaves nothing behind.
void check_output_folder(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw IoError("output '" + path + "' exists and is not a folder");
    return;
  }
  std::string parent = path;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  const auto slash = parent.find_last_of('/');
  parent = slash == std::string::npos ? "." : slash == 0 ? "/" : parent.substr(0, slash);
  if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw IoError("cannot create the output folder '" + path + "': folder '" + parent +
                  "' does not exist");
}

void make_folder(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
  if (::mkdir(path.c_str(), 0777) != 0)
    throw IoError("cannot create the output folder '" + path + "': " + std::strerror(errno));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The catalogues of several blends as one: columns blend (the blend's index among the inputs)
/// and file first, then the columns every catalogue has, in the first one's order.
Table merge_catalogues(const std::vector<DeblendReport>& reports,
                       const std::vector<std::string>& files, std::vector<std::string>& dropped) {
  Table out;
  std::vector<int64_t> blend;
  std::vector<std::string> file;
  for (std::size_t k = 0; k < reports.size(); ++k)
    for (int64_t g = 0; g < reports[k].catalogue.rows(); ++g)
      blend.push_back(static_cast<int64_t>(k)), file.push_back(files[k]);
  out.add("blend", at::tensor(blend, at::kLong), "", "index of the blend among the inputs");
  out.add_text("file", file, "the blend's file");
  for (const Column& c : reports.front().catalogue.columns) {
    bool everywhere = true;
    for (const DeblendReport& r : reports)
      everywhere = everywhere && std::any_of(r.catalogue.columns.begin(), r.catalogue.columns.end(),
                                             [&](const Column& d) { return d.name == c.name; });
    if (!everywhere) {
      dropped.push_back(c.name);
      continue;
    }
    std::vector<at::Tensor> parts;
    for (const DeblendReport& r : reports) parts.push_back(r.catalogue.column(c.name).values);
    out.add(c.name, at::cat(parts), c.unit, c.description);
  }
  out.meta = reports.front().catalogue.meta;
  out.meta.erase(std::remove_if(out.meta.begin(), out.meta.end(),
                                [](const auto& kv) { return kv.first == "BLEND"; }),
                 out.meta.end());
  return out;
}

void run_deblend(DeblendCliOptions o, const Globals& globals) {
  if (o.catalogs.empty() == !o.detect)
    throw CLI::ValidationError("deblend", "give exactly one of --catalog FILE... or --detect");
  const std::size_t N = o.inputs.size();
  if (!o.detect && o.catalogs.size() != N)
    throw CLI::ValidationError("deblend", std::to_string(o.catalogs.size()) +
                                              " --catalog file(s) for " + std::to_string(N) +
                                              " blend(s): give one per blend, in their order");
  DeblendPipelineOptions& po = o.pipeline;
  const bool madness = po.method == DeblendMethod::Madness;
  if (madness && o.model.empty()) {
    // The model shipped with demix (models/README.md), found relative to libdemix.so.
    try {
      o.model = MadnessModel::shipped_model_path();
    } catch (const ValueError& e) {
      throw ValueError(std::string("--method madness without --model: ") + e.what() +
                       " (--model MODEL.dmx), or use --method classical");
    }
  }
  if (!o.sigma.empty()) {
    po.noise = NoiseLevels::Given;
    po.noise_sigmas = o.sigma;
  } else if (o.noise_from_image) {
    po.noise = NoiseLevels::Image;
  }
  check_output_folder(o.output);
  const Context ctx = make_context(globals);
  const bool talk = !globals.quiet;
  ProgressLine line(globals.quiet);
  if (madness)
    po.madness.progress = [&line, steps = po.madness.max_steps](const MadnessProgress& p) {
      char text[128];
      const double rate = p.step / std::max(line.seconds(), 1e-9);
      std::snprintf(text, sizeof text,
                    "deblend: Adam step %d/%d, %.1f steps/s, at most %.0f s left", p.step, steps,
                    rate, (steps - p.step) / std::max(rate, 1e-9));
      line.show(text, p.running_blends == 0 || p.step >= steps);
    };
  if (talk && madness) std::cerr << "deblend: model " << o.model << "\n";
  // The model first: its errors (missing file, wrong bands) come before any long computation.
  const DeblendPipeline pipeline(
      po, madness ? load_prior(o.model, ctx, o.float32_decoder) : nullptr, ctx);

  // Every blend read and prepared before any fit: a bad file or catalogue stops the run at once.
  std::vector<Image> images;
  std::vector<PreparedBlend> blends;
  for (std::size_t k = 0; k < N; ++k) {
    images.push_back(read_image(o.inputs[k], {.non_finite = o.non_finite}));
    const Image& image = images.back();
    const int64_t B = image.data.dim() == 2 ? 1 : image.data.size(0);
    if (!o.sigma.empty() && static_cast<int64_t>(o.sigma.size()) != B)
      throw ValueError("--sigma gives " + std::to_string(o.sigma.size()) + " values, the blend '" +
                       o.inputs[k] + "' has " + std::to_string(B) + " bands");
    blends.push_back(pipeline.prepare(image, o.detect ? at::Tensor()
                                                      : read_positions(o.catalogs[k], o.columns)));
    const PreparedBlend& blend = blends.back();
    if (!talk || N > 1) continue;
    const std::string noise = noise_source_text(blend.noise_source, B);
    std::cerr << "deblend: " << o.inputs[k] << " (" << B << " bands, " << image.data.size(-2)
              << " x " << image.data.size(-1) << ")\n";
    const int64_t G = blend.positions.size(0);
    if (o.detect)
      std::cerr << "deblend: " << G << " peaks above " << po.detection.threshold
                << " sigma (noise from " << noise << ")\n";
    else
      std::cerr << "deblend: " << G << " galaxies from " << o.catalogs[k] << "\n";
    if (blend.noise_sigmas.defined() && !o.detect) {
      std::cerr << "deblend: noise from " << noise << ":";
      for (int64_t b = 0; b < B; ++b)
        std::cerr << " " << number(blend.noise_sigmas[b].item<double>());
      std::cerr << "\n";
    }
  }
  int64_t galaxies = 0;
  for (const PreparedBlend& b : blends) galaxies += b.positions.size(0);
  if (talk && N > 1) std::cerr << "deblend: " << N << " blends, " << galaxies << " galaxies\n";

  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<DeblendReport> reports = pipeline.deblend(blends);
  if (talk) {
    int64_t converged = 0, steps = 0;
    for (const DeblendReport& r : reports)
      converged += r.converged.all().item<bool>(), steps = std::max(steps, r.steps);
    const std::string summary =
        madness ? "MADNESS: " + (N == 1 ? std::to_string(reports[0].steps) + " Adam steps, loss " +
                                              number(reports[0].loss) + ", " +
                                              (converged ? "converged" : "not converged")
                                        : "at most " + std::to_string(steps) + " Adam steps, " +
                                              std::to_string(converged) + " of " +
                                              std::to_string(N) + " blends converged")
                : "classical (symmetric templates; the children add up to the blend)";
    std::cerr << "deblend: " << summary << " (" << number(seconds_since(t0)) << " s on "
              << ctx.describe() << ")\n";
  }

  // One blend: its files in the folder. Several: each blend's in blend_<k>/, one catalogue.
  make_folder(o.output);
  const std::string method = madness ? "madness" : "classical";
  OutputFiles outputs; // all the files or none
  for (std::size_t k = 0; k < N; ++k) {
    outputs.input(o.inputs[k]);
    if (!o.detect) outputs.input(o.catalogs[k]);
  }
  for (std::size_t k = 0; k < N; ++k) {
    const DeblendReport& r = reports[k];
    const PreparedBlend& blend = blends[k];
    const Image& image = images[k];
    std::string dir = o.output + "/";
    if (N > 1) {
      dir += "blend_" + std::to_string(k) + "/";
      make_folder(dir);
    }
    const int64_t G = blend.positions.size(0);
    for (int64_t i = 0; i < G; ++i) {
      FitsHeader h = image.header;
      h.set("DEBLEND", method, "deblending method");
      h.set("GALID", static_cast<long long>(i), "id in the catalogue");
      h.set("GALX", blend.positions[i][0].item<double>(),
            "galaxy column in the blend (0-based pixels)");
      h.set("GALY", blend.positions[i][1].item<double>(),
            "galaxy row in the blend (0-based pixels)");
      if (!po.full_frame) {
        const int64_t x0 = r.stamp_origins[i][0].item<int64_t>(),
                      y0 = r.stamp_origins[i][1].item<int64_t>();
        h.set("STAMPX0", static_cast<long long>(x0), "blend column of stamp column 0");
        h.set("STAMPY0", static_cast<long long>(y0), "blend row of stamp row 0");
        // The stamp's WCS: its pixels at their sky positions in the blend.
        shift_reference_pixel(h, static_cast<double>(x0), static_cast<double>(y0));
      }
      h.set("CONVERGD", r.converged[i].item<bool>(), "the optimisation converged");
      h.add_history("demix " + build_info().demix + " deblend --method " + method + " " +
                    o.inputs[k]);
      const std::string file = dir + "galaxy_" + std::to_string(i) + ".fits";
      write_fits(outputs.staged(outputs.add(file, "a galaxy's image")),
                 po.full_frame ? r.children[i] : r.stamps[i], h);
    }
    FitsHeader rh = image.header;
    rh.set("DEBLEND", method, "deblending method");
    rh.set("NGAL", static_cast<long long>(G), "galaxies modelled");
    rh.add_history("demix " + build_info().demix + " deblend: blend minus all galaxy models");
    write_fits(outputs.staged(outputs.add(dir + "residual.fits", "the residual")), r.residual, rh);
  }
  const std::string catalogue = o.output + "/catalogue." + o.catalogue_format;
  std::vector<std::string> dropped;
  const Table merged = N == 1 ? reports[0].catalogue : merge_catalogues(reports, o.inputs, dropped);
  write_table(outputs.staged(outputs.add(catalogue, "the catalogue")), merged);
  outputs.commit();
  if (talk && !dropped.empty()) {
    std::cerr << "deblend: columns not in every blend's catalogue left out:";
    for (const std::string& c : dropped) std::cerr << " " << c;
    std::cerr << "\n";
  }
  if (talk)
    std::cerr << "deblend: wrote " << galaxies << " galaxy_<k>.fits, "
              << (N == 1 ? "residual.fits"
                         : "residual.fits in blend_<k>/ for " + std::to_string(N) + " blends")
              << " and catalogue." << o.catalogue_format << " to " << o.output << "\n";
}

} // namespace

void add_deblend_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<DeblendCliOptions>();
  auto* cmd = app.add_subcommand("deblend", "Separate the galaxies of a multi-band blend");
  cmd->add_option("blend", o->inputs,
                  "Blend image(s) (B, H, W): FITS or .npy; several are fitted together (MADNESS: "
                  "one batch for those of one shape and noise) into blend_<k>/ folders and one "
                  "catalogue")
      ->required();
  auto* catalog = cmd->add_option(
      "--catalog", o->catalogs,
      "Positions: a FITS, ECSV or CSV table with columns x and y (0-based pixels; see --x-col, "
      "--y-col, --origin), one per blend");
  cmd->add_option("--x-col", o->columns.x,
                  "--catalog: the column of pixel columns (e.g. X_IMAGE of SExtractor)")
      ->default_str("x");
  cmd->add_option("--y-col", o->columns.y, "--catalog: the column of pixel rows (e.g. Y_IMAGE)")
      ->default_str("y");
  cmd->add_option("--origin", o->columns.origin,
                  "--catalog: the first pixel's coordinate, 0 (numpy, demix) or 1 (FITS, "
                  "SExtractor, ds9)")
      ->check(CLI::IsMember({0, 1}))
      ->default_str("0");
  cmd->add_option("--catalogue-format", o->catalogue_format,
                  "The output catalogue: catalogue.fits (default), .ecsv or .csv, with units, "
                  "magnitudes, RA/Dec from the WCS and quality flags")
      ->check(CLI::IsMember({"fits", "ecsv", "csv"}))
      ->default_str("fits");
  auto* detect = cmd->add_flag("--detect", o->detect, "Find the galaxies by peak detection");
  catalog->excludes(detect);
  cmd->add_option("-o,--output", o->output, "Output folder (created if missing)")->required();
  const std::map<std::string, DeblendMethod> methods{{"madness", DeblendMethod::Madness},
                                                     {"classical", DeblendMethod::Classical}};
  cmd->add_option("--method", o->pipeline.method,
                  "madness (needs --model) or classical (SDSS templates)")
      ->transform(choice(methods))
      ->default_str("madness");
  cmd->add_option(
      "--model", o->model,
      "Trained MADNESS model (VAE + flow); default: the shipped models/madness-lsst.dmx");
  auto* sigma =
      cmd->add_option("--sigma", o->sigma, "Noise per band (e-/pixel); default: SIGMA1..n keywords")
          ->expected(1, -1);
  cmd->add_flag("--noise-from-image", o->noise_from_image,
                "Estimate the noise per band from the blend's pixels (clipped MAD)")
      ->excludes(sigma);
  cmd->add_flag("--full-frame", o->pipeline.full_frame,
                "Write each galaxy as a full (B, H, W) image instead of a stamp");
  cmd->add_option("--neighbour-share", o->pipeline.neighbour_share_limit,
                  "Quality: flag 8 when more than this share of a model's light lies nearer "
                  "another galaxy's position than its own")
      ->check(in_range(1e-9, 1))
      ->capture_default_str();
  cmd->add_option("--chi2-limit", o->pipeline.chi2_limit,
                  "Quality: flag 16 when the residual chi^2 per pixel in a galaxy's footprint "
                  "exceeds this")
      ->check(positive())
      ->capture_default_str();
  cmd->add_flag("--classical-fallback", o->pipeline.classical_fallback,
                "MADNESS: galaxies flagged 1, 8 or 16 get the classical deblender's "
                "measurements and stamp instead (flag 32)");
  cmd->add_option("--stamp", o->pipeline.stamp_size,
                  "Classical: stamp side of galaxy_<k>.fits (odd)")
      ->check(positive())
      ->default_str("45");
  add_nan_option(*cmd, o->non_finite);
  // MADNESS optimiser.
  cmd->add_option("--steps", o->pipeline.madness.max_steps, "MADNESS: Adam steps at most")
      ->check(at_least(0))
      ->default_str("200");
  cmd->add_option("--lr", o->pipeline.madness.learning_rate, "MADNESS: Adam learning rate")
      ->check(positive())
      ->default_str("0.05");
  cmd->add_option("--lbfgs", o->pipeline.madness.lbfgs_steps,
                  "MADNESS: L-BFGS iterations after Adam")
      ->check(at_least(0))
      ->default_str("0");
  cmd->add_option("--prior-weight", o->pipeline.madness.prior_weight, "MADNESS: weight of log p(z)")
      ->check(at_least(0))
      ->default_str("1");
  cmd->add_option("--init-passes", o->pipeline.madness.init_passes,
                  "MADNESS: encoder passes (1 or 2)")
      ->check(CLI::Range(1, 2))
      ->default_str("1");
  cmd->add_flag("--source-variance", o->pipeline.madness.source_variance,
                "MADNESS: add the sources' Poisson variance to the noise");
  cmd->add_flag("--float32-decoder", o->float32_decoder,
                "MADNESS: the whole decoder in float32 (default on CUDA: float16 upsampling)");
  // Detection.
  cmd->add_option("--threshold", o->pipeline.detection.threshold,
                  "--detect: peaks above this many sigma")
      ->default_str("5");
  cmd->add_option("--min-separation", o->pipeline.detection.min_separation,
                  "--detect: pixels between two peaks, at least")
      ->check(at_least(0))
      ->default_str("3");
  cmd->add_option("--smoothing", o->pipeline.detection.smoothing_sigma,
                  "--detect: Gaussian smoothing sigma in pixels")
      ->check(positive())
      ->default_str("1.5");
  // Classical.
  const std::map<std::string, SymmetryImage> symmetries{{"per-band", SymmetryImage::PerBand},
                                                        {"band-sum", SymmetryImage::BandSum}};
  cmd->add_option("--symmetry", o->pipeline.classical.symmetry,
                  "Classical: templates from per-band or band-sum")
      ->transform(choice(symmetries))
      ->default_str("per-band");
  const std::map<std::string, FluxSharing> sharings{{"fitted", FluxSharing::Fitted},
                                                    {"proportional", FluxSharing::Proportional}};
  cmd->add_option("--sharing", o->pipeline.classical.sharing,
                  "Classical: fitted or proportional template weights")
      ->transform(choice(sharings))
      ->default_str("fitted");
  cmd->callback([o, &globals] {
    if (o->pipeline.stamp_size % 2 == 0)
      throw CLI::ValidationError("--stamp",
                                 "must be odd, got " + std::to_string(o->pipeline.stamp_size));
    run_deblend(*o, globals);
  });
}

} // namespace demix::cli

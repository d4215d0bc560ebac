// demix deblend BLEND.fits (--catalog POS.csv | --detect) -o OUTDIR: separate the galaxies of a
// multi-band blend, with MADNESS (a trained generative model, --model) or the SDSS-style
// symmetric-template deblender (--method classical, no model).
//
// Outputs in OUTDIR, each written atomically:
//   galaxy_<k>.fits  the model of galaxy k: a (B, S, S) cube centred on its nearest pixel (S = the
//                    model's stamp size; --stamp for classical), or (B, H, W) with --full-frame;
//                    the input's keywords plus DEBLEND, GALID, GALX, GALY, STAMPX0, STAMPY0
//   residual.fits    (B, H, W) the blend minus all models
//   catalogue.csv    id, x, y, flux_<band>..., e1, e2, converged
// Noise per band, in this order: --sigma or --noise-from-image (estimate_noise_sigmas), the
// keywords SIGMA1..SIGMAn of the blend, the survey table.

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/deblend/classical.hpp>
#include <demix/deblend/detection.hpp>
#include <demix/deblend/madness.hpp>
#include <demix/deblend/metrics.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>

#include "common.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <sys/stat.h>

namespace demix::cli {

namespace {

enum class DeblendMethod { Madness, Classical };

struct DeblendCliOptions {
  std::string input;
  std::string catalog; ///< CSV with columns x and y; empty with --detect
  bool detect = false;
  std::string output; ///< folder
  DeblendMethod method = DeblendMethod::Madness;
  std::string model;
  bool float32_decoder = false; ///< MADNESS: no reduced-precision decoder on CUDA
  std::vector<double> sigma;
  bool noise_from_image = false;
  bool full_frame = false;
  int64_t stamp = 45; ///< classical only: stamp side of galaxy_<k>.fits
  NonFinitePolicy non_finite = NonFinitePolicy::Reject;
  MadnessOptions madness;
  DetectionOptions detection;
  SymmetryImage symmetry = SymmetryImage::PerBand;
  FluxSharing sharing = FluxSharing::Fitted;
};

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\"");
  const auto b = s.find_last_not_of(" \t\r\"");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, ',')) out.push_back(trim(field));
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

/// Positions (G, 2) from a CSV file whose header names columns x and y (others ignored).
at::Tensor read_positions_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot read '" + path + "': " + std::strerror(errno));
  std::string line;
  if (!std::getline(in, line))
    throw FormatError("'" + path + "' is empty: expected a header line naming columns x and y");
  const std::vector<std::string> header = split_csv(line);
  int ix = -1, iy = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    std::string h = header[i];
    for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (h == "x") ix = static_cast<int>(i);
    if (h == "y") iy = static_cast<int>(i);
  }
  if (ix < 0 || iy < 0)
    throw FormatError("'" + path + "': the header line '" + line +
                      "' has no column named x and y (0-based pixel column and row)");
  std::vector<double> xy;
  int number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (trim(line).empty()) continue;
    const std::vector<std::string> f = split_csv(line);
    for (const int i : {ix, iy}) {
      const std::string v = i < static_cast<int>(f.size()) ? f[i] : std::string();
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(d))
        throw FormatError("'" + path + "' line " + std::to_string(number) + ": '" + v +
                          "' is not a finite number (column " + header[i] + ")");
      xy.push_back(d);
    }
  }
  return at::tensor(xy, at::kDouble).view({-1, 2});
}

/// Per-band noise: --sigma or --noise-from-image, else SIGMA1..SIGMAn keywords, else the survey
/// table.
at::Tensor noise_sigmas(const DeblendCliOptions& o, const Image& image, int64_t bands,
                        std::string* source) {
  if (!o.sigma.empty()) {
    if (static_cast<int64_t>(o.sigma.size()) != bands)
      throw ValueError("--sigma gives " + std::to_string(o.sigma.size()) + " values, the blend '" +
                       o.input + "' has " + std::to_string(bands) + " bands");
    for (const double s : o.sigma)
      if (!(s > 0) || !std::isfinite(s))
        throw ValueError("--sigma values must be > 0, got " + std::to_string(s));
    *source = "--sigma";
    return at::tensor(o.sigma, at::kDouble);
  }
  if (o.noise_from_image) {
    *source = "the image's clipped pixel scatter";
    return estimate_noise_sigmas(image.data.dim() == 2 ? image.data.unsqueeze(0) : image.data);
  }
  std::vector<double> s;
  for (int64_t b = 1; b <= bands; ++b) {
    const auto v = image.header.number("SIGMA" + std::to_string(b));
    if (!v) break;
    if (!(*v > 0))
      throw ValueError("'" + o.input + "': keyword SIGMA" + std::to_string(b) + " = " +
                       std::to_string(*v) + " is not a positive noise level");
    s.push_back(*v);
  }
  if (static_cast<int64_t>(s.size()) == bands) {
    *source = "header SIGMA1..SIGMA" + std::to_string(bands);
    return at::tensor(s, at::kDouble);
  }
  *source = "survey table";
  return survey_noise_sigmas(bands);
}

std::vector<std::string> band_names(int64_t bands) {
  if (bands == 6) return {"u", "g", "r", "i", "z", "y"};
  std::vector<std::string> n;
  for (int64_t b = 0; b < bands; ++b) n.push_back("b" + std::to_string(b));
  return n;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void make_folder(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw IoError("output '" + path + "' exists and is not a folder");
    return;
  }
  if (::mkdir(path.c_str(), 0777) != 0)
    throw IoError("cannot create the output folder '" + path + "': " + std::strerror(errno));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_deblend(DeblendCliOptions o, const Globals& globals) {
  if (o.catalog.empty() == !o.detect)
    throw CLI::ValidationError("deblend", "give exactly one of --catalog FILE or --detect");
  if (o.method == DeblendMethod::Madness && o.model.empty()) {
    // The model shipped in the repository (models/README.md), installed beside the data files.
    for (const char* candidate : {DEMIX_INSTALLED_MODEL, DEMIX_SOURCE_MODEL})
      if (std::FILE* f = std::fopen(candidate, "rb")) {
        std::fclose(f);
        o.model = candidate;
        break;
      }
    if (o.model.empty())
      throw ValueError(std::string("--method madness: no --model given and the shipped model is "
                                   "missing (looked for ") +
                       DEMIX_INSTALLED_MODEL + " and " + DEMIX_SOURCE_MODEL +
                       "); give --model MODEL.dmx or use --method classical");
  }
  const Context ctx = make_context(globals);
  const bool talk = !globals.quiet;
  const Image image = read_image(o.input, {.non_finite = o.non_finite});
  const at::Tensor cube = image.data.dim() == 2 ? image.data.unsqueeze(0) : image.data; // (B, H, W)
  if (cube.is_complex())
    throw ValueError("'" + o.input + "' holds complex pixels; a blend must be real");
  const int64_t B = cube.size(0), H = cube.size(1), W = cube.size(2);
  if (talk)
    std::cerr << "deblend: " << o.input << " (" << B << " bands, " << H << " x " << W << ")\n";

  // The model first: its errors (missing file, wrong bands) come before any long computation.
  std::shared_ptr<const GalaxyPrior> prior;
  if (o.method == DeblendMethod::Madness) {
    prior = load_prior(o.model, ctx, o.float32_decoder);
    if (prior->n_bands() != B)
      throw ValueError("the model '" + o.model + "' has " + std::to_string(prior->n_bands()) +
                       " bands, the blend '" + o.input + "' has " + std::to_string(B));
  }
  std::string sigma_source;
  at::Tensor sigmas;
  // Classical without --detect works without noise levels (then without a footprint).
  const bool need_sigmas = o.method == DeblendMethod::Madness || o.detect;
  if (need_sigmas || !o.sigma.empty() || o.noise_from_image || image.header.contains("SIGMA1"))
    sigmas = noise_sigmas(o, image, B, &sigma_source);

  at::Tensor xy; // (G, 2)
  if (o.detect) {
    xy = PeakDetector(o.detection, ctx).detect(cube, sigmas)[0].xy;
    if (talk)
      std::cerr << "deblend: " << xy.size(0) << " peaks above " << o.detection.threshold
                << " sigma (noise from " << sigma_source << ")\n";
  } else {
    xy = read_positions_csv(o.catalog);
    if (talk) std::cerr << "deblend: " << xy.size(0) << " galaxies from " << o.catalog << "\n";
  }
  if (talk && sigmas.defined() && !o.detect) {
    std::cerr << "deblend: noise from " << sigma_source << ":";
    for (int64_t b = 0; b < B; ++b) std::cerr << " " << number(sigmas[b].item<double>());
    std::cerr << "\n";
  }
  const int64_t G = xy.size(0);
  for (int64_t i = 0; i < G; ++i) {
    const double x = xy[i][0].item<double>(), y = xy[i][1].item<double>();
    if (x < -0.5 || x >= W - 0.5 || y < -0.5 || y >= H - 0.5)
      throw ValueError("galaxy " + std::to_string(i) + " at (" + number(x) + ", " + number(y) +
                       ") lies outside the " + std::to_string(W) + " x " + std::to_string(H) +
                       " blend '" + o.input + "'");
  }
  const BlendGalaxies galaxies{xy, at::zeros({G}, at::kLong), 1};
  const at::Tensor images = cube.unsqueeze(0); // (1, B, H, W)

  const auto t0 = std::chrono::steady_clock::now();
  at::Tensor stamps, frames, converged; // (G, B, S, S), (G, B, H, W) or undefined, (G) bool
  int64_t S = o.stamp;
  std::string summary;
  {
    c10::AutoGradMode no_grad(
        false); // the MADNESS optimiser turns gradients on where it needs them
    if (o.method == DeblendMethod::Madness) {
      const MadnessDeblender deb(prior, o.madness, ctx);
      const MadnessResult r = deb.deblend(images, galaxies, sigmas);
      stamps = r.stamps.to(at::kCPU);
      S = stamps.size(2);
      converged = r.converged.expand({G});
      summary = "MADNESS: " + std::to_string(r.steps[0].item<int64_t>()) + " Adam steps, loss " +
                number(r.loss[0].item<double>()) + ", " +
                (r.converged[0].item<bool>() ? "converged" : "not converged");
      if (o.full_frame) frames = StampPlacer(galaxies, B, H, W, S, at::kCPU).render_each(stamps);
    } else {
      const ClassicalResult r =
          ClassicalDeblender({.symmetry = o.symmetry, .sharing = o.sharing}, ctx)
              .deblend(images, galaxies, sigmas);
      frames = r.children.to(at::kCPU);
      ClassicalResult cpu = r;
      cpu.children = frames;
      stamps = cpu.stamps(S);
      converged = at::ones({G}, at::kBool);
      summary = "classical (symmetric templates; the children add up to the blend)";
    }
  }
  const at::Tensor models = frames.defined()
                                ? frames.sum(0)
                                : StampPlacer(galaxies, B, H, W, S, at::kCPU).render(stamps)[0];
  const at::Tensor residual =
      cube.to(at::kDouble) - (G > 0 ? models.to(at::kDouble) : at::zeros_like(cube, at::kDouble));
  if (talk)
    std::cerr << "deblend: " << summary << " (" << number(seconds_since(t0)) << " s on "
              << ctx.describe() << ")\n";

  // Catalogue: each model's total flux per band and the ellipticity of its band sum.
  const at::Tensor flux =
      (frames.defined() ? frames : stamps).sum({2, 3}).to(at::kDouble); // (G, B)
  const at::Tensor e =
      G > 0 ? measure_shapes(stamps.sum(1)).ellipticity : at::zeros({0, 2}, at::kDouble);
  const std::vector<std::string> names = band_names(B);
  std::ostringstream csv;
  csv << "id,x,y";
  for (const auto& n : names) csv << ",flux_" << n;
  csv << ",e1,e2,converged\n";
  for (int64_t i = 0; i < G; ++i) {
    csv << i << "," << number(xy[i][0].item<double>()) << "," << number(xy[i][1].item<double>());
    for (int64_t b = 0; b < B; ++b) csv << "," << number(flux[i][b].item<double>());
    csv << "," << number(e[i][0].item<double>()) << "," << number(e[i][1].item<double>()) << ","
        << (converged[i].item<bool>() ? 1 : 0) << "\n";
  }

  make_folder(o.output);
  const std::string dir = o.output + "/";
  const std::string method = o.method == DeblendMethod::Madness ? "madness" : "classical";
  const at::Tensor pix = galaxies.pixel();
  for (int64_t i = 0; i < G; ++i) {
    FitsHeader h = image.header;
    h.set("DEBLEND", method, "deblending method");
    h.set("GALID", static_cast<long long>(i), "row of catalogue.csv");
    h.set("GALX", xy[i][0].item<double>(), "galaxy column in the blend (0-based pixels)");
    h.set("GALY", xy[i][1].item<double>(), "galaxy row in the blend (0-based pixels)");
    if (!o.full_frame) {
      h.set("STAMPX0", static_cast<long long>(pix[i][0].item<int64_t>() - S / 2),
            "blend column of stamp column 0");
      h.set("STAMPY0", static_cast<long long>(pix[i][1].item<int64_t>() - S / 2),
            "blend row of stamp row 0");
    }
    h.set("CONVERGD", converged[i].item<bool>(), "the optimisation converged");
    h.add_history("demix " + build_info().demix + " deblend --method " + method + " " + o.input);
    write_fits(dir + "galaxy_" + std::to_string(i) + ".fits", o.full_frame ? frames[i] : stamps[i],
               h);
  }
  FitsHeader rh = image.header;
  rh.set("DEBLEND", method, "deblending method");
  rh.set("NGAL", static_cast<long long>(G), "galaxies modelled");
  rh.add_history("demix " + build_info().demix + " deblend: blend minus all galaxy models");
  write_fits(dir + "residual.fits", residual, rh);
  write_text_file(dir + "catalogue.csv", csv.str());
  if (talk)
    std::cerr << "deblend: wrote " << G << " galaxy_<k>.fits, residual.fits and catalogue.csv to "
              << o.output << "\n";
}

} // namespace

void add_deblend_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<DeblendCliOptions>();
  auto* cmd = app.add_subcommand("deblend", "Separate the galaxies of a multi-band blend");
  cmd->add_option("blend", o->input, "Blend image (B, H, W): FITS or .npy")->required();
  auto* catalog = cmd->add_option("--catalog", o->catalog,
                                  "CSV with a header naming columns x and y (0-based pixels)");
  auto* detect = cmd->add_flag("--detect", o->detect, "Find the galaxies by peak detection");
  catalog->excludes(detect);
  cmd->add_option("-o,--output", o->output, "Output folder (created if missing)")->required();
  const std::map<std::string, DeblendMethod> methods{{"madness", DeblendMethod::Madness},
                                                     {"classical", DeblendMethod::Classical}};
  cmd->add_option("--method", o->method, "madness (needs --model) or classical (SDSS templates)")
      ->transform(CLI::CheckedTransformer(methods, CLI::ignore_case))
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
  cmd->add_flag("--full-frame", o->full_frame,
                "Write each galaxy as a full (B, H, W) image instead of a stamp");
  cmd->add_option("--stamp", o->stamp, "Classical: stamp side of galaxy_<k>.fits (odd)")
      ->check(CLI::PositiveNumber)
      ->default_str("45");
  add_nan_option(*cmd, o->non_finite);
  // MADNESS optimiser.
  cmd->add_option("--steps", o->madness.max_steps, "MADNESS: Adam steps at most")
      ->check(CLI::NonNegativeNumber)
      ->default_str("200");
  cmd->add_option("--lr", o->madness.learning_rate, "MADNESS: Adam learning rate")
      ->check(CLI::PositiveNumber)
      ->default_str("0.05");
  cmd->add_option("--lbfgs", o->madness.lbfgs_steps, "MADNESS: L-BFGS iterations after Adam")
      ->check(CLI::NonNegativeNumber)
      ->default_str("0");
  cmd->add_option("--prior-weight", o->madness.prior_weight, "MADNESS: weight of log p(z)")
      ->check(CLI::NonNegativeNumber)
      ->default_str("1");
  cmd->add_option("--init-passes", o->madness.init_passes, "MADNESS: encoder passes (1 or 2)")
      ->check(CLI::Range(1, 2))
      ->default_str("1");
  cmd->add_flag("--source-variance", o->madness.source_variance,
                "MADNESS: add the sources' Poisson variance to the noise");
  cmd->add_flag("--float32-decoder", o->float32_decoder,
                "MADNESS: the whole decoder in float32 (default on CUDA: float16 upsampling)");
  // Detection.
  cmd->add_option("--threshold", o->detection.threshold, "--detect: peaks above this many sigma")
      ->default_str("5");
  cmd->add_option("--min-separation", o->detection.min_separation,
                  "--detect: pixels between two peaks, at least")
      ->check(CLI::NonNegativeNumber)
      ->default_str("3");
  cmd->add_option("--smoothing", o->detection.smoothing_sigma,
                  "--detect: Gaussian smoothing sigma in pixels")
      ->check(CLI::PositiveNumber)
      ->default_str("1.5");
  // Classical.
  const std::map<std::string, SymmetryImage> symmetries{{"per-band", SymmetryImage::PerBand},
                                                        {"band-sum", SymmetryImage::BandSum}};
  cmd->add_option("--symmetry", o->symmetry, "Classical: templates from per-band or band-sum")
      ->transform(CLI::CheckedTransformer(symmetries, CLI::ignore_case))
      ->default_str("per-band");
  const std::map<std::string, FluxSharing> sharings{{"fitted", FluxSharing::Fitted},
                                                    {"proportional", FluxSharing::Proportional}};
  cmd->add_option("--sharing", o->sharing, "Classical: fitted or proportional template weights")
      ->transform(CLI::CheckedTransformer(sharings, CLI::ignore_case))
      ->default_str("fitted");
  cmd->callback([o, &globals] {
    if (o->stamp % 2 == 0)
      throw CLI::ValidationError("--stamp", "must be odd, got " + std::to_string(o->stamp));
    run_deblend(*o, globals);
  });
}

} // namespace demix::cli

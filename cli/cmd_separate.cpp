// demix separate d.fits -o s.fits --contamination ...: statistical component separation
// (separation/component_separation.hpp). Reads the observation and the contamination's
// realizations (files, or Gaussian white noise drawn here), runs the separation with a progress
// line, writes the signal (FITS, the observation's header) with the contamination d - s~ and the
// loss history, optionally the Wiener baseline, and a JSON sidecar.

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/npy.hpp>
#include <demix/separation/component_separation.hpp>
#include <demix/separation/contamination.hpp>
#include <demix/separation/report.hpp>
#include <demix/synthesis/microcanonical.hpp>
#include <demix/validation/compare.hpp>
#include <demix/viz/chart.hpp>

#include "common.hpp"
#include "contamination_options.hpp"
#include "statistic_options.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace demix::cli {

namespace {

struct SeparateCliOptions {
  std::string observation, output, json, wiener, truth, template_map, report, checkpoint, resume;
  std::string regions; ///< --regions: a label map (H, W) for the residual-variance term
  std::string mask;    ///< --mask: weights (H, W) or (R, H, W) in [0, 1] for the statistics
  int checkpoint_every = 0;
  bool no_cross = false;
  std::vector<std::string> contamination, half_missions;
  int realizations = 20; ///< drawn for gaussian:sigma=...
  int runs = 1;          ///< separations with independent realizations: mean and std maps
  std::uint64_t seed = 0;
  StatisticChoice statistics;
  SeparationOptions separation;
  NonFinitePolicy non_finite = NonFinitePolicy::Reject;
};

/// (C, H, W): a 2-D map is one channel.
at::Tensor as_channels(const at::Tensor& d) { return d.dim() == 2 ? d.unsqueeze(0) : d; }

/// The realizations of each run, K x (M, C, H, W). A model draws M maps per run from seeds seed,
/// seed + 1, ... (on the CPU, so that a seed means the same maps everywhere):
/// - gaussian:sigma=X: white noise of deviation X;
/// - gaussian:sigma-map=F: inhomogeneous white noise, a deviation per pixel (F: (H, W) or d's
///   shape);
/// - spectrum:F: a Gaussian field of power spectrum F, per integer-|k| annulus ((K) npy, (1, K)
///   or (C, K)) or per mode ((H, W) or (C, H, W)), as E|fft2(c)|^2 / (H W);
/// - model:F: maps synthesised from the example(s) F of c (synthesis defaults);
/// otherwise files, each a cube of realizations (one channel) or one realization (C, H, W) /
/// (H, W), split into K disjoint blocks.
std::vector<at::Tensor> read_contamination(const SeparateCliOptions& o,
                                           const at::Tensor& d /* (C, H, W) */,
                                           const Context& context) {
  const std::string spec = o.contamination.size() == 1 ? o.contamination[0] : "";
  const auto starts = [&](const char* prefix) { return spec.rfind(prefix, 0) == 0; };
  const std::optional<ContaminationModel> model = contamination_model(spec, d);
  if (!model && starts("model:")) {
    const std::string file = spec.substr(std::string("model:").size());
    at::Tensor examples = read_image(file, {.non_finite = NonFinitePolicy::Reject}).data;
    if (examples.dim() == 2 || examples.sizes() == d.sizes())
      examples = examples.reshape(d.sizes()).unsqueeze(0);
    else if (examples.dim() == 3 && d.size(0) == 1 &&
             examples.sizes().slice(1) == d.sizes().slice(1))
      examples = examples.unsqueeze(1);
    if (examples.dim() != 4 || examples.sizes().slice(1) != d.sizes())
      throw ShapeError("--contamination " + spec + ": the examples are " + shape_text(examples) +
                       "; the observation is " + shape_text(d));
    std::vector<at::Tensor> sets;
    for (int k = 0; k < o.runs; ++k) {
      SynthesisOptions so;
      so.samples = o.realizations;
      so.seed = o.seed + static_cast<std::uint64_t>(k);
      const Synthesizer synth(examples.to(at::kDouble), so, Grid2d{d.size(1), d.size(2)}, context);
      sets.push_back(synth.run().samples.to(at::kCPU, at::kDouble));
    }
    return sets;
  }
  if (model) {
    std::vector<at::Tensor> sets;
    for (int k = 0; k < o.runs; ++k)
      sets.push_back(draw_contamination(*model, o.realizations, d.sizes(),
                                        o.seed + static_cast<std::uint64_t>(k)));
    return sets;
  }
  std::vector<at::Tensor> maps;
  for (const std::string& file : o.contamination) {
    const at::Tensor c = read_image(file, {.non_finite = o.non_finite}).data;
    at::Tensor r; // (m, C, H, W)
    if (c.sizes() == d.sizes() ||
        (c.dim() == 2 && d.size(0) == 1 && c.sizes() == d.sizes().slice(1)))
      r = c.reshape(d.sizes()).unsqueeze(0);
    else if (c.dim() == 3 && d.size(0) == 1 && c.sizes().slice(1) == d.sizes().slice(1))
      r = c.unsqueeze(1);
    else
      throw ShapeError("contamination '" + file + "' is " + shape_text(c) +
                       "; the observation is " + shape_text(d) +
                       " (C, H, W): give realizations of that shape, or cubes (M, H, W) of "
                       "realizations of a one-channel map");
    maps.push_back(r.to(at::kDouble));
  }
  const at::Tensor all = at::cat(maps);
  const int64_t per_run = all.size(0) / o.runs;
  if (per_run < 2)
    throw ValueError("--runs " + std::to_string(o.runs) + " splits " + std::to_string(all.size(0)) +
                     " contamination realizations into disjoint sets of fewer than 2; give at "
                     "least " +
                     std::to_string(2 * o.runs));
  std::vector<at::Tensor> sets;
  for (int k = 0; k < o.runs; ++k) sets.push_back(all.narrow(0, k * per_run, per_run));
  return sets;
}

/// Pixel error (mean square) and correlation of a map against the truth.
struct AgainstTruth {
  double mse = 0, correlation = 0;
};
AgainstTruth against(const at::Tensor& map, const at::Tensor& truth) {
  const at::Tensor a = map.detach().to(at::kCPU, at::kDouble).flatten();
  const at::Tensor b = truth.to(at::kCPU, at::kDouble).flatten();
  return {(a - b).square().mean().item<double>(),
          at::corrcoef(at::stack({a, b}))[0][1].item<double>()};
}

/// "separated", "wiener", "observation" against the truth, as JSON members.
using TruthRows = std::vector<std::pair<std::string, AgainstTruth>>;

std::string history_json(const SeparateCliOptions& o, const SeparationResult& r, int64_t M,
                         const Context& ctx, const TruthRows& truth) {
  std::ostringstream s;
  const SeparationOptions& so = o.separation;
  s << "{\n  \"demix\": " << json_string(build_info().demix)
    << ",\n  \"observation\": " << json_string(o.observation) << ",\n  \"contamination\": [";
  for (std::size_t i = 0; i < o.contamination.size(); ++i)
    s << (i ? ", " : "") << json_string(o.contamination[i]);
  s << "],\n  \"output\": " << json_string(o.output) << ",\n  \"options\": {"
    << statistic_json(o.statistics)
    << ", \"estimator\": " << json_string(separation_estimator_name(so.estimator))
    << ", \"realizations\": " << M << ", \"fresh_realizations\": " << so.fresh_realizations
    << ", \"eras\": " << so.eras << ", \"iterations\": " << so.iterations
    << ", \"spectrum_eras\": " << so.spectrum_eras
    << ", \"start\": " << json_string(separation_start_name(so.start))
    << ", \"terms\": {\"contamination\": " << so.terms.contamination
    << ", \"independence\": " << so.terms.independence
    << ", \"template_correlation\": " << so.terms.template_correlation
    << ", \"half_missions\": " << so.terms.half_missions
    << ", \"residual_variance\": " << so.terms.residual_variance << "}"
    << ", \"regions\": " << json_string(o.regions) << ", \"mask\": " << json_string(o.mask)
    << ", \"template\": " << json_string(o.template_map) << ", \"half_missions\": ["
    << (o.half_missions.empty()
            ? std::string()
            : json_string(o.half_missions[0]) + ", " + json_string(o.half_missions[1]))
    << "], \"bias_clip\": " << so.bias_clip
    << ", \"cross_channels\": " << (o.no_cross ? "false" : "true") << ", \"seed\": " << o.seed
    << ", \"runs\": " << o.runs << ", \"device\": " << json_string(ctx.describe()) << "},\n";
  if (!truth.empty()) {
    s << "  \"truth\": {\"file\": " << json_string(o.truth);
    for (const auto& [name, t] : truth)
      s << ", " << json_string(name) << ": {\"mse\": " << json_number(t.mse)
        << ", \"correlation\": " << json_number(t.correlation) << "}";
    s << "},\n";
  }
  s << "  \"seconds\": " << json_number(r.seconds) << ",\n  \"kept_parts\": [";
  for (std::size_t e = 0; e < r.kept_parts.size(); ++e) s << (e ? ", " : "") << r.kept_parts[e];
  s << "],\n  \"loss_history\": [";
  for (std::size_t e = 0; e < r.loss_history.size(); ++e) {
    s << (e ? ",\n    " : "\n    ") << "[";
    for (std::size_t k = 0; k < r.loss_history[e].size(); ++k)
      s << (k ? ", " : "") << json_number(r.loss_history[e][k]);
    s << "]";
  }
  s << "\n  ]\n}\n";
  return s.str();
}

/// --report DIR, per channel (suffix _c with several): separation.png, the spectra (and with a
/// truth the correlation per scale) of d, s~, Wiener, the contamination and the truth; and the
/// validation report (validation/compare.hpp) of s~ against the truth, or without one of d - s~
/// against the realizations (the residual should look like the contamination).
void write_report(const SeparateCliOptions& o, OutputFiles& outputs,
                  const at::Tensor& d /* (C, H, W) */, const at::Tensor& signal,
                  const at::Tensor& wiener, const at::Tensor& noise /* (M, C, H, W) */,
                  const at::Tensor& truth) {
  const at::Tensor s = signal.detach().to(at::kCPU, at::kDouble);
  const at::Tensor t = truth.defined() ? as_channels(truth).to(at::kDouble) : at::Tensor();
  if (!charts_available())
    std::cerr << "demix separate: this build has no cairo: the report has no figures\n";
  for (int64_t c = 0; c < d.size(0); ++c) {
    const std::string suffix = d.size(0) > 1 ? "_" + std::to_string(c) : "";
    const at::Tensor realizations = noise.select(1, c).to(at::kDouble);
    if (charts_available())
      write_separation_figure(outputs.staged(o.report + "/separation" + suffix + ".png"),
                              {d[c], s[c], wiener.to(at::kCPU, at::kDouble)[c], realizations,
                               t.defined() ? t[c] : at::Tensor()},
                              "demix separate " + o.observation +
                                  (d.size(0) > 1 ? ", channel " + std::to_string(c) : ""));
    const ValidationReport v = t.defined()
                                   ? validate_maps(t[c].unsqueeze(0), s[c].unsqueeze(0))
                                   : validate_maps(realizations, (d[c] - s[c]).unsqueeze(0));
    write_text_file(outputs.staged(o.report + "/validation" + suffix + ".json"),
                    validation_json(v));
    if (charts_available())
      write_validation_figure(outputs.staged(o.report + "/validation" + suffix + ".png"), v,
                              t.defined() ? "truth (target) against the separated map (sample)"
                                          : "contamination realizations (targets) against the "
                                            "residual d - s~ (sample)");
  }
}

void run_separate(SeparateCliOptions o, const Globals& globals) {
  if (format_for_output(o.output) != FileFormat::Fits)
    throw ValueError("separate writes FITS files; output '" + o.output + "' does not end in .fits");
  if (!o.wiener.empty() && format_for_output(o.wiener) != FileFormat::Fits)
    throw ValueError("--wiener '" + o.wiener + "' does not end in .fits");
  if (o.json.empty()) o.json = path_stem(o.output) + ".json";
  if (o.checkpoint_every > 0 && o.checkpoint.empty()) o.checkpoint = path_stem(o.output) + ".ckpt";
  if ((!o.checkpoint.empty() || !o.resume.empty()) && o.runs > 1)
    throw ValueError("--checkpoint and --resume save and continue one run; --runs is " +
                     std::to_string(o.runs));
  OutputFiles outputs;
  for (const std::string& in : {o.observation, o.truth, o.template_map, o.regions, o.mask})
    if (!in.empty()) outputs.input(in);
  for (const std::string& in : o.half_missions) outputs.input(in);
  for (const std::string& spec : o.contamination) { // a file, or a model naming one after ':'/'='
    const auto cut = spec.find_last_of(":=");
    outputs.input(cut == std::string::npos ? spec : spec.substr(cut + 1));
  }
  outputs.add(o.output, "the signal (-o)");
  outputs.add(o.json, "the JSON sidecar (--json)");
  if (!o.wiener.empty()) outputs.add(o.wiener, "the Wiener filter's map (--wiener)");
  // The checkpoint is written during the run (and may be the --resume file).
  if (!o.checkpoint.empty()) outputs.add_unstaged(o.checkpoint, "the checkpoint");
  if (!o.report.empty()) make_report_folder(o.report);

  const Context ctx = make_context(globals);
  const Image observed = read_image(o.observation, {.non_finite = o.non_finite});
  if (observed.data.is_complex())
    throw ValueError("separate: '" + o.observation +
                     "' is complex; FITS has no complex images for the outputs: give Q and U as "
                     "two channels (2, H, W), or separate complex maps with the library");
  const at::Tensor d = as_channels(observed.data).to(at::kDouble); // (C, H, W)
  if (!o.report.empty())
    for (int64_t c = 0; c < d.size(0); ++c) {
      const std::string suffix = d.size(0) > 1 ? "_" + std::to_string(c) : "";
      if (charts_available())
        outputs.add(o.report + "/separation" + suffix + ".png", "the report's figure");
      outputs.add(o.report + "/validation" + suffix + ".json", "the report's JSON");
      if (charts_available())
        outputs.add(o.report + "/validation" + suffix + ".png", "the report's figure");
    }
  // Maps of the observation's shape, read before the realizations (which may be synthesised).
  const auto like_d = [&](const std::string& file, const std::string& option) {
    const at::Tensor m = read_image(file, {.non_finite = o.non_finite}).data;
    if (m.sizes() != observed.data.sizes())
      throw ShapeError(option + " '" + file + "' is " + shape_text(m) + "; the observation is " +
                       shape_text(observed.data));
    return as_channels(m).to(at::kDouble);
  };
  at::Tensor truth;
  if (!o.truth.empty()) truth = like_d(o.truth, "--truth");
  SeparationMaps maps;
  SeparationOptions so = o.separation;
  if (!o.template_map.empty()) {
    maps.template_map = like_d(o.template_map, "--template");
    if (so.terms.template_correlation == 0) so.terms.template_correlation = 1;
  } else if (so.terms.template_correlation > 0) {
    throw ValueError("--template-weight needs --template");
  }
  if (!o.half_missions.empty()) {
    maps.half_missions = at::stack({like_d(o.half_missions[0], "--half-missions"),
                                    like_d(o.half_missions[1], "--half-missions")});
    if (so.terms.half_missions == 0) so.terms.half_missions = 1;
  } else if (so.terms.half_missions > 0) {
    throw ValueError("--half-missions-weight needs --half-missions");
  }
  if (!o.mask.empty()) {
    const at::Tensor m = read_image(o.mask).data;
    if ((m.dim() != 2 && m.dim() != 3) || m.size(-2) != d.size(1) || m.size(-1) != d.size(2))
      throw ShapeError("--mask '" + o.mask + "' is " + shape_text(m) +
                       "; it must be one weight map, or a cube of them, of the observation's " +
                       std::to_string(d.size(1)) + " x " + std::to_string(d.size(2)) + " pixels");
    maps.masks = m;
  }
  if (!o.regions.empty()) {
    const at::Tensor r = read_image(o.regions).data;
    if (r.dim() != 2 || r.size(0) != d.size(1) || r.size(1) != d.size(2))
      throw ShapeError("--regions '" + o.regions + "' is " + shape_text(r) +
                       "; it must be one label map of the observation's " +
                       std::to_string(d.size(1)) + " x " + std::to_string(d.size(2)) + " pixels");
    maps.regions = r;
    if (so.terms.residual_variance == 0) so.terms.residual_variance = 1;
  } else if (so.terms.residual_variance > 0) {
    throw ValueError("--residual-variance-weight needs --regions");
  }
  if (so.fresh_realizations > 0 && so.estimator != SeparationEstimator::Realizations)
    throw ValueError("--fresh-realizations needs --estimator realizations (the bias estimator "
                     "uses the realizations only when an era starts)");
  so.cross_channels = !o.no_cross;
  o.separation.terms = so.terms; // as run, for the header and sidecar
  const std::vector<at::Tensor> sets = read_contamination(o, d, ctx); // K x (M, C, H, W)
  const at::Tensor& noise = sets.front();
  const Grid2d grid{d.size(1), d.size(2)};
  so.statistics = statistic_terms(o.statistics, grid, false);
  std::vector<Separator> separators; // built before the work: errors show at once
  for (std::size_t k = 0; k < sets.size(); ++k) {
    so.fresh_seed = o.seed + k; // run k's fresh draws, as its drawn realizations
    separators.emplace_back(d, sets[k], so, grid, ctx, maps);
  }
  if (!globals.quiet)
    std::cerr << "demix separate: " << d.size(0) << " channel(s) of " << to_string(grid) << ", "
              << noise.size(0) << " contamination realizations"
              << (o.runs > 1 ? " per run, " + std::to_string(o.runs) + " runs" : std::string())
              << ", " << separation_estimator_name(so.estimator) << " estimator, " << so.eras
              << " eras of " << so.iterations << " iterations on " << ctx.describe() << "\n";
  ProgressLine line(globals.quiet);
  std::vector<SeparationResult> results;
  for (int k = 0; k < o.runs; ++k)
    results.push_back(separators[k].run(SeparationRun{
        [&](const SeparationProgress& p) {
          const int per_run = p.eras * p.iterations, total = o.runs * per_run;
          const int done = k * per_run + (p.era - 1) * p.iterations + p.iteration;
          const double rate = done / std::max(line.seconds(), 1e-9);
          char text[200];
          std::snprintf(
              text, sizeof text,
              "demix separate: %s%s era %d/%d  iteration %d/%d  loss %.4g  ETA %.0f s",
              o.runs > 1 ? ("run " + std::to_string(k + 1) + "/" + std::to_string(o.runs)).c_str()
                         : "",
              o.runs > 1 ? " " : "", p.era, p.eras, p.iteration, p.iterations, p.loss,
              done >= total ? 0.0 : (total - done) / std::max(rate, 1e-12));
          line.show(text, done >= total);
        },
        o.checkpoint, o.checkpoint_every, o.resume}));
  // The runs' mean is the estimate; their spread (with several runs) its uncertainty from the
  // realizations and the descent.
  SeparationResult r = results.front();
  std::vector<at::Tensor> signals;
  double final_loss = 0;
  for (const SeparationResult& run : results) {
    signals.push_back(run.signal);
    final_loss += run.loss_history.back().back() / o.runs;
  }
  const at::Tensor stacked = at::stack(signals);
  r.signal = stacked.mean(0);
  r.contamination = d.to(r.signal.device(), r.signal.scalar_type()) - r.signal;
  const at::Tensor spread = o.runs > 1 ? stacked.std(0) : at::Tensor();

  const auto pixels =
      observed.data.scalar_type() == at::kDouble ? FitsPixelType::Float64 : FitsPixelType::Float32;
  const auto shaped = [&](const at::Tensor& t) { // as the observation was: (H, W) or (C, H, W)
    return t.detach().to(at::kCPU).reshape(observed.data.sizes());
  };
  FitsHeader header = observed.header;
  header.set("SEPSTATS", std::string_view(statistic_names(o.statistics)), "statistics matched");
  header.set("ESTIMATR", std::string_view(separation_estimator_name(so.estimator)),
             "separation estimator");
  header.set("NREALIZ", static_cast<long long>(noise.size(0)), "contamination realizations");
  if (so.fresh_realizations > 0)
    header.set("NFRESH", static_cast<long long>(so.fresh_realizations),
               "realizations drawn afresh per evaluation");
  header.set("ERAS", static_cast<long long>(so.eras), "outer iterations");
  header.set("SEPSTART", std::string_view(separation_start_name(so.start)),
             "first era's starting map");
  header.set("ITERS", static_cast<long long>(so.iterations), "L-BFGS iterations per era");
  header.set("SEED", static_cast<long long>(o.seed), "seed of drawn realizations");
  header.set("NRUNS", static_cast<long long>(o.runs), "separations averaged");
  header.set("FINLOSS", final_loss, "final loss (mean over runs)");
  header.add_history("demix " + build_info().demix + " separate: " + o.observation);
  Table loss;
  std::vector<int64_t> run, era, iteration;
  std::vector<double> value;
  for (std::size_t k = 0; k < results.size(); ++k)
    for (std::size_t e = 0; e < results[k].loss_history.size(); ++e)
      for (std::size_t i = 0; i < results[k].loss_history[e].size(); ++i) {
        run.push_back(static_cast<int64_t>(k) + 1), era.push_back(static_cast<int64_t>(e) + 1);
        iteration.push_back(static_cast<int64_t>(i));
        value.push_back(results[k].loss_history[e][i]);
      }
  loss.add("RUN", at::tensor(run, at::kLong), "", "run (1-based)");
  loss.add("ERA", at::tensor(era, at::kLong), "", "era (1-based)");
  loss.add("ITERATION", at::tensor(iteration, at::kLong), "", "L-BFGS iteration in the era");
  loss.add("LOSS", at::tensor(value, at::kDouble), "", "loss");
  FitsWriter writer(outputs.staged(o.output));
  writer.add_image("", shaped(r.signal), header, pixels);
  FitsHeader contam;
  contam.add_history("demix separate: the observation minus the separated signal");
  writer.add_image("CONTAM", shaped(r.contamination), contam, pixels);
  if (spread.defined()) {
    FitsHeader std_header;
    std_header.add_history("demix separate: per-pixel standard deviation over the runs");
    writer.add_image("STD", shaped(spread), std_header, pixels);
  }
  writer.add_table("LOSS", loss);
  writer.commit();
  // The linear baseline, for the file and the comparison with the truth.
  const at::Tensor wiener = !o.wiener.empty() || truth.defined() || !o.report.empty()
                                ? wiener_filter(d, noise)
                                : at::Tensor();
  if (!o.wiener.empty()) {
    FitsHeader wh = observed.header;
    wh.add_history("demix " + build_info().demix + " separate: Wiener filter of " + o.observation);
    FitsWriter w(outputs.staged(o.wiener));
    w.add_image("", shaped(wiener), wh, pixels);
    w.commit();
  }
  TruthRows rows;
  if (truth.defined()) {
    const at::Tensor t = as_channels(truth);
    rows = {{"separated", against(r.signal, t)},
            {"wiener", against(wiener, t)},
            {"observation", against(d, t)}};
    if (!globals.quiet)
      for (const auto& [name, a] : rows)
        std::fprintf(stderr,
                     "demix separate: %-11s against the truth: mean square error %.4g, "
                     "correlation %.4f\n",
                     name.c_str(), a.mse, a.correlation);
  }
  if (!o.report.empty()) write_report(o, outputs, d, r.signal, wiener, noise, truth);
  double seconds = 0;
  for (const SeparationResult& run_result : results) seconds += run_result.seconds;
  r.seconds = seconds; // all runs; the JSON's loss history and kept parts are the first run's
  write_text_file(outputs.staged(o.json), history_json(o, r, noise.size(0), ctx, rows));
  outputs.commit();
  if (!globals.quiet)
    std::cerr << "demix separate: wrote " << o.output << " and " << o.json
              << (o.wiener.empty() ? "" : " and " + o.wiener) << "; " << seconds
              << " s, final loss " << final_loss << "\n";
}

} // namespace

void add_separate_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<SeparateCliOptions>();
  auto* cmd = app.add_subcommand(
      "separate", "Separate a signal from a contamination known by realizations (statistical "
                  "component separation)");
  cmd->add_option("observation", o->observation,
                  "The observed map d = s + c (FITS or npy): (H, W) "
                  "or channels (C, H, W)")
      ->required();
  cmd->add_option("-o,--output", o->output,
                  "Signal (FITS, the observation's header), with extensions CONTAM (d - s) and "
                  "LOSS")
      ->required();
  cmd->add_option(
         "--contamination", o->contamination,
         "Realizations of c: files (cubes (M, H, W) of a one-channel map, or single "
         "realizations), or a model drawn here: gaussian:sigma=X (white noise), "
         "gaussian:sigma-map=F (a deviation per pixel), spectrum:F (a Gaussian field: F "
         "the power per integer-|k| annulus, a (1, K) image or (K) npy, or per mode (H, "
         "W), as E|fft2(c)|^2 / (H W)), model:F (maps synthesised from the example(s) F of c)")
      ->required();
  cmd->add_option("-M,--realizations", o->realizations,
                  "Realizations to draw from a model (gaussian:, spectrum:, model:)")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of drawn realizations (run k: seed + k)")
      ->capture_default_str();
  cmd->add_option("--runs", o->runs,
                  "Separations with independent realizations (drawn: seeds seed + k; files: "
                  "disjoint sets); writes their mean, and their per-pixel standard deviation as "
                  "the extension STD")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--json", o->json, "Options and loss history (default: the output's stem .json)");
  cmd->add_option("--wiener", o->wiener,
                  "Also write the Wiener filter of d (the spectra estimated from d and the "
                  "realizations) to this FITS file");
  add_statistic_options(*cmd, o->statistics,
                        "none or auto: wph and scov normalisation by the observation's");
  const std::map<std::string, SeparationEstimator> estimators{
      {"bias", SeparationEstimator::Bias}, {"realizations", SeparationEstimator::Realizations}};
  cmd->add_option("--estimator", o->separation.estimator,
                  "bias (a bias-corrected target, one map per evaluation) or realizations (the "
                  "realizations in every evaluation)")
      ->transform(choice(estimators))
      ->default_str("bias");
  cmd->add_option("--fresh-realizations", o->separation.fresh_realizations,
                  "With --estimator realizations: draw K of the M realizations afresh at every "
                  "evaluation (seeded by --seed) instead of all M throughout; 0: all, fixed")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--eras", o->separation.eras,
                  "Outer iterations (spreads and bias recomputed at the estimate)")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--iterations", o->separation.iterations, "L-BFGS iterations per era")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--spectrum-eras", o->separation.spectrum_eras,
                  "A staged schedule: the first N eras match the power spectrum only")
      ->check(at_least(0))
      ->capture_default_str();
  const std::map<std::string, SeparationStart> starts{{"observation", SeparationStart::Observation},
                                                      {"wiener", SeparationStart::Wiener},
                                                      {"matched", SeparationStart::Matched}};
  cmd->add_option("--start", o->separation.start,
                  "The first era's map: matched (the linear filter that keeps the estimated signal "
                  "spectrum), wiener (the Wiener filter of d) or observation (d, as the papers' "
                  "codes)")
      ->transform(choice(starts))
      ->default_str("matched");
  cmd->add_option("--template", o->template_map,
                  "A map T correlated with the signal (e.g. dust intensity, HI): adds the term "
                  "phi(T, u) = phi(T, d) minus its bias (weight --template-weight, default 1)");
  cmd->add_option("--template-weight", o->separation.terms.template_correlation,
                  "Weight of the template term (with --template; 0 there means 1)")
      ->check(at_least(0));
  cmd->add_option("--half-missions", o->half_missions,
                  "Two observations D1 D2 with independent noise (d their mean): phi(u, u) "
                  "matches phi(D1, D2) (weight --half-missions-weight, default 1)")
      ->expected(2);
  cmd->add_option("--half-missions-weight", o->separation.terms.half_missions,
                  "Weight of the half-missions term (with --half-missions; 0 there means 1)")
      ->check(at_least(0));
  cmd->add_option("--mask", o->mask,
                  "Weights in [0, 1] (H, W), or a cube (R, H, W) for statistics per region (FITS "
                  "or npy): the statistics are computed on the maps times each mask (0 excludes "
                  "a pixel; apodise the edges)");
  cmd->add_option("--regions", o->regions,
                  "A label map (H, W) of regions 0..R-1 (negative: no region; FITS or npy): adds "
                  "the term var(d - u) in each region = the realizations' mean variance there, for "
                  "a contamination whose level varies (weight --residual-variance-weight, default "
                  "1)");
  cmd->add_option("--residual-variance-weight", o->separation.terms.residual_variance,
                  "Weight of the residual-variance term (with --regions; 0 there means 1)")
      ->check(at_least(0));
  cmd->add_option("--contamination-weight", o->separation.terms.contamination,
                  "Weight of the term phi(d - u) = < phi(c_i) > (0: off)")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--independence-weight", o->separation.terms.independence,
                  "Weight of the term phi(u, d - u) = < phi(s~, c_i) > (cross statistics; 0: off)")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--clip-bias", o->separation.bias_clip,
                  "Bias estimator: targets of positive statistics at least this fraction of the "
                  "observed value (0: no clipping)")
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  cmd->add_option("--report", o->report,
                  "Folder for separation.png (spectra of d, s~, Wiener, contamination, truth; "
                  "correlation with the truth per scale) and validation.json/.png (s~ against "
                  "the truth, or d - s~ against the realizations)");
  cmd->add_flag("--no-cross", o->no_cross,
                "With channels (C, H, W): no cross statistics between them");
  cmd->add_option("--checkpoint", o->checkpoint,
                  "Save the run's state here (default with --checkpoint-every: the output's stem "
                  ".ckpt), at the end of each era and every --checkpoint-every iterations");
  cmd->add_option("--checkpoint-every", o->checkpoint_every,
                  "Iterations between checkpoints within an era (0: at the ends of eras)")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--resume", o->resume,
                  "Continue from a checkpoint of the same separation (same maps, realizations "
                  "and options)");
  cmd->add_option("--truth", o->truth,
                  "The true signal (simulations): prints and records the pixel error and "
                  "correlation of the separated map, of the Wiener filter and of d against it");
  cmd->add_option("--chunk", o->separation.chunk, "Realizations per statistic call (memory)")
      ->check(positive())
      ->capture_default_str();
  add_nan_option(*cmd, o->non_finite);
  cmd->callback([o, &globals] { run_separate(*o, globals); });
}

} // namespace demix::cli

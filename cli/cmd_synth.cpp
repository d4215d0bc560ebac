// demix synth TARGET... -o samples.fits: new maps whose statistics match the targets'
// (synthesis/microcanonical.hpp). Reads the targets, builds the statistics from the common options,
// runs the synthesis with a progress line, writes the samples (FITS, the first target's header)
// with the loss history, and a JSON sidecar of the options and history.

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>
#include <demix/stats/registry.hpp>
#include <demix/synthesis/microcanonical.hpp>

#include "common.hpp"
#include "statistic_options.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace demix::cli {

namespace {

struct SynthCliOptions {
  std::vector<std::string> targets;
  std::string output;
  std::string json; ///< default: the output's stem + ".json"
  StatisticChoice statistics;
  SynthesisOptions synthesis; ///< samples, iterations, seed, log, standardize, init, scale
  bool no_cross = false, channels = false;
  std::string checkpoint, resume;
  int checkpoint_every = 0;
  NonFinitePolicy non_finite = NonFinitePolicy::Reject;
};

/// The targets as (T, C, H, W), with the header of the first file: without --channels a cube is
/// T maps (several targets), with --channels it is one map of C channels.
std::pair<at::Tensor, Image> read_targets(const SynthCliOptions& o) {
  std::vector<at::Tensor> maps;
  Image first;
  for (const std::string& spec : o.targets) {
    Image image = read_image(spec, {.non_finite = o.non_finite});
    at::Tensor d = image.data; // (H, W) or (C, H, W)
    d = d.dim() == 2 ? d.view({1, 1, d.size(0), d.size(1)})
        : o.channels ? d.unsqueeze(0)
                     : d.unsqueeze(1);
    if (!maps.empty() && d.sizes().slice(1) != maps.front().sizes().slice(1))
      throw ShapeError("target '" + spec + "' is " + shape_text(image.data) + " (" +
                       std::to_string(d.size(1)) + " channel(s)); '" + o.targets.front() +
                       "' has " + std::to_string(maps.front().size(1)) + " channel(s) of " +
                       std::to_string(maps.front().size(2)) + " x " +
                       std::to_string(maps.front().size(3)));
    if (maps.empty()) first = std::move(image);
    maps.push_back(d);
  }
  return {at::cat(maps), std::move(first)};
}

/// The options and statistics as FITS keywords of the samples' header.
void add_keywords(FitsHeader& h, const SynthCliOptions& o, const Synthesizer& synth,
                  const SynthesisResult& r, const Context& ctx, int64_t targets) {
  const std::string names = statistic_names(o.statistics);
  h.set("SYNSTATS", std::string_view(names), "statistics matched");
  h.set("NTARGET", static_cast<long long>(targets), "number of target maps");
  h.set("NSAMPLE", static_cast<long long>(o.synthesis.samples), "number of samples");
  h.set("SEED", static_cast<long long>(o.synthesis.seed), "seed of the initial maps");
  h.set("LBFGSMEM", static_cast<long long>(o.synthesis.lbfgs.history), "L-BFGS pairs per sample");
  h.set("ITERS", static_cast<long long>(r.iterations), "L-BFGS iterations done");
  h.set("INIT", std::string_view(synthesis_init_name(o.synthesis.init)), "initial maps");
  h.set("LOGMAP", o.synthesis.log, "T if log(map) was synthesised");
  h.set("STDMAP", o.synthesis.standardize, "T if maps were standardised per channel");
  h.set("RESSCALE", std::string_view(term_scale_name(o.synthesis.matching.scale)),
        "residual scale of the loss");
  h.set("PRECISN", dtype_name(ctx.real_dtype()), "computing precision");
  h.set("FINLOSS", r.loss_history[-1].mean().item<double>(), "final loss, mean over samples");
  // The first term of each statistic carries its options (J, L, DN, NORM...), prefixed by its
  // index when several statistics are matched.
  std::map<std::string, bool> seen;
  for (const MatchTerm& t : synth.loss().terms()) {
    const std::string name = t.statistic->name();
    if (seen[name] || t.cross_channel >= 0) continue;
    seen[name] = true;
    for (const StatisticKeyword& k : t.statistic->keywords()) {
      const std::string key =
          o.statistics.stats.size() > 1 ? std::string(1, name[0]) + k.fits : k.fits;
      if (key.size() <= 8)
        std::visit([&](const auto& v) { h.set(key, v, name + ": " + k.comment); }, k.value);
    }
  }
  h.add_history("demix " + build_info().demix + " synth: " + std::to_string(o.synthesis.samples) +
                " sample(s) of " + names + ", seed " + std::to_string(o.synthesis.seed));
}

std::string history_json(const SynthCliOptions& o, const SynthesisResult& r, const Context& ctx) {
  std::ostringstream s;
  s << "{\n  \"demix\": " << json_string(build_info().demix) << ",\n  \"targets\": [";
  for (std::size_t i = 0; i < o.targets.size(); ++i)
    s << (i ? ", " : "") << json_string(o.targets[i]);
  s << "],\n  \"output\": " << json_string(o.output) << ",\n  \"options\": {";
  s << statistic_json(o.statistics) << ", \"samples\": " << o.synthesis.samples
    << ", \"iterations\": " << o.synthesis.iterations << ", \"seed\": " << o.synthesis.seed
    << ", \"history\": " << o.synthesis.lbfgs.history
    << ", \"log\": " << (o.synthesis.log ? "true" : "false")
    << ", \"standardize\": " << (o.synthesis.standardize ? "true" : "false")
    << ", \"init\": " << json_string(synthesis_init_name(o.synthesis.init))
    << ", \"scale\": " << json_string(term_scale_name(o.synthesis.matching.scale))
    << ", \"cross\": " << (o.no_cross ? "false" : "true")
    << ", \"channels\": " << (o.channels ? "true" : "false")
    << ", \"device\": " << json_string(ctx.describe()) << "},\n";
  s << "  \"iterations\": " << r.iterations << ",\n  \"evaluations\": " << r.evaluations
    << ",\n  \"seconds\": " << json_number(r.seconds) << ",\n  \"converged\": [";
  for (int64_t i = 0; i < r.converged.numel(); ++i)
    s << (i ? ", " : "") << (r.converged[i].item<bool>() ? "true" : "false");
  s << "],\n  \"final_terms\": {";
  for (std::size_t t = 0; t < r.term_names.size(); ++t) {
    s << (t ? ", " : "") << json_string(r.term_names[t]) << ": [";
    for (int64_t i = 0; i < r.term_losses.size(1); ++i)
      s << (i ? ", " : "") << json_number(r.term_losses[t][i].item<double>());
    s << "]";
  }
  s << "},\n  \"loss_history\": [";
  const at::Tensor h = r.loss_history.contiguous();
  for (int64_t k = 0; k < h.size(0); ++k) {
    s << (k ? ",\n    " : "\n    ") << "[";
    for (int64_t i = 0; i < h.size(1); ++i)
      s << (i ? ", " : "") << json_number(h[k][i].item<double>());
    s << "]";
  }
  s << "\n  ]\n}\n";
  return s.str();
}

void run_synth(SynthCliOptions o, const Globals& globals) {
  if (format_for_output(o.output) != FileFormat::Fits)
    throw ValueError("synth writes FITS files; output '" + o.output + "' does not end in .fits");
  if (o.json.empty()) o.json = path_stem(o.output) + ".json";
  if (o.checkpoint_every > 0 && o.checkpoint.empty()) o.checkpoint = path_stem(o.output) + ".ckpt";
  OutputFiles outputs;
  for (const std::string& t : o.targets) outputs.input(t);
  outputs.add(o.output, "the samples (-o)");
  outputs.add(o.json, "the JSON sidecar (--json)");
  // The checkpoint is written during the run (and may be the --resume file).
  if (!o.checkpoint.empty()) outputs.add_unstaged(o.checkpoint, "the checkpoint");

  const Context ctx = make_context(globals);
  auto [targets, first] = read_targets(o);
  if (targets.is_complex())
    throw ValueError("synth: complex samples cannot be written to FITS (no complex images); "
                     "write Q and U as two channels (--channels) instead");
  const Grid2d grid{targets.size(2), targets.size(3)};
  SynthesisOptions so = o.synthesis;
  so.matching.statistics = statistic_terms(o.statistics, grid, targets.is_complex());
  so.matching.cross = !o.no_cross;
  const Synthesizer synth(targets, so, grid, ctx);
  if (!globals.quiet)
    std::cerr << "demix synth: " << targets.size(0) << " target map(s) of " << targets.size(1)
              << " channel(s), " << to_string(grid) << ", " << synth.loss().terms().size()
              << " loss term(s), " << o.synthesis.samples << " sample(s) on " << ctx.describe()
              << "\n";

  ProgressLine line(globals.quiet);
  const auto report = [&](const SynthesisProgress& p) {
    const bool last = p.iteration >= p.iterations || p.running == 0;
    char text[160];
    std::snprintf(text, sizeof text,
                  "demix synth: iteration %d/%d  loss %.4g  %.1f it/s  ETA %.0f s", p.iteration,
                  p.iterations, p.loss, p.iterations_per_s, last ? 0.0 : p.eta_s);
    line.show(text, last);
  };
  const SynthesisResult r = synth.run({.progress = report,
                                       .checkpoint = o.checkpoint,
                                       .checkpoint_every = o.checkpoint_every,
                                       .resume = o.resume});

  FitsHeader header = first.header;
  add_keywords(header, o, synth, r, ctx, targets.size(0));
  at::Tensor samples = r.samples.detach().to(at::kCPU); // (S, C, H, W)
  if (samples.size(1) == 1) samples = samples.select(1, 0);
  Table loss;
  loss.add("ITERATION", at::arange(r.loss_history.size(0), at::kLong), "",
           "L-BFGS iteration (0: the initial maps)");
  loss.add("LOSS", r.loss_history, "", "loss of each sample");
  FitsWriter writer(outputs.staged(o.output));
  writer.add_image("", samples, header,
                   first.data.scalar_type() == at::kDouble ? FitsPixelType::Float64
                                                           : FitsPixelType::Float32);
  writer.add_table("LOSS", loss);
  writer.commit();
  write_text_file(outputs.staged(o.json), history_json(o, r, ctx));
  outputs.commit();
  if (!globals.quiet)
    std::cerr << "demix synth: wrote " << o.output << " (" << shape_text(samples) << ") and "
              << o.json << "; " << r.iterations << " iterations in " << r.seconds
              << " s, final loss " << r.loss_history[-1].mean().item<double>() << " (initial "
              << r.loss_history[0].mean().item<double>() << ")\n";
}

} // namespace

void add_synth_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<SynthCliOptions>();
  auto* cmd =
      app.add_subcommand("synth", "Draw new maps whose statistics match one or a few target maps "
                                  "(microcanonical synthesis)");
  cmd->add_option("targets", o->targets,
                  "Target maps (FITS or npy): 2-D maps, or cubes of several maps (of channels "
                  "with --channels); all of one size")
      ->required();
  cmd->add_option("-o,--output", o->output, "Samples (FITS): (S, H, W), or (S, C, H, W)")
      ->required();
  cmd->add_option("--json", o->json, "Options and loss history (default: the output's stem .json)");
  add_statistic_options(*cmd, o->statistics,
                        "none or auto: wph and scov normalisation by the targets'");
  cmd->add_option("--samples", o->synthesis.samples, "Number of maps to draw")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--iterations", o->synthesis.iterations, "L-BFGS iterations")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--seed", o->synthesis.seed, "Seed of the initial maps")->capture_default_str();
  cmd->add_option("--history", o->synthesis.lbfgs.history, "L-BFGS curvature pairs kept per sample")
      ->check(positive())
      ->capture_default_str();
  cmd->add_flag("--log", o->synthesis.log, "Synthesise log(map) (positive maps), exp() on output");
  cmd->add_flag("--standardize", o->synthesis.standardize,
                "Standardise each channel by the targets' mean and deviation, undone on output");
  const std::map<std::string, SynthesisInit> inits{{"noise", SynthesisInit::Noise},
                                                   {"gaussian", SynthesisInit::Gaussian}};
  cmd->add_option("--init", o->synthesis.init,
                  "noise (white, the targets' mean and deviation) or gaussian (a Gaussian field "
                  "with the targets' power spectrum)")
      ->transform(choice(inits))
      ->default_str("noise");
  const std::map<std::string, TermScale> scales{{"auto", TermScale::Auto},
                                                {"none", TermScale::None},
                                                {"modulus", TermScale::Modulus},
                                                {"class-rms", TermScale::ClassRms},
                                                {"statistic-rms", TermScale::StatisticRms},
                                                {"spread", TermScale::Spread}};
  cmd->add_option("--scale", o->synthesis.matching.scale,
                  "Residual scale of each coefficient: auto (spread over several targets, else "
                  "statistic-rms, modulus for ps), none, modulus (|target|), class-rms, "
                  "statistic-rms, spread")
      ->transform(choice(scales))
      ->default_str("auto");
  cmd->add_flag("--channels", o->channels,
                "Cubes are channels of one map (I, Q, U...), not several maps");
  cmd->add_flag("--no-cross", o->no_cross, "With channels: no cross statistics between them");
  cmd->add_option("--checkpoint", o->checkpoint,
                  "Save the optimiser's state here (default with --checkpoint-every: the "
                  "output's stem .ckpt)");
  cmd->add_option("--checkpoint-every", o->checkpoint_every, "Iterations between checkpoints")
      ->check(at_least(0));
  cmd->add_option("--resume", o->resume,
                  "Continue from a checkpoint of the same synthesis (same targets and options)");
  add_nan_option(*cmd, o->non_finite);
  cmd->callback([o, &globals] { run_synth(*o, globals); });
}

} // namespace demix::cli

// demix validate TARGET SAMPLES --report DIR: compares sample maps with target maps on
// statistics a generation did not constrain (validation/compare.hpp); writes DIR/validation.json
// and DIR/validation.png, and prints the summary.

#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/validation/compare.hpp>
#include <demix/viz/chart.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace demix::cli {

namespace {

struct ValidateCliOptions {
  std::string targets, samples, report;
  int channel = -1; ///< for (N, C, H, W) files: the channel compared
  bool log = false;
  NonFinitePolicy non_finite = NonFinitePolicy::Reject;
  ValidationOptions options;
};

/// The maps of a file as (N, H, W): a map, a cube of maps, or one channel of a 4-D file.
at::Tensor read_maps(const std::string& spec, const ValidateCliOptions& o) {
  at::Tensor d;
  if (detect_input_format(spec) == FileFormat::Fits) {
    d = image_from_fits(read_fits(spec), spec).data; // 2-D to 4-D
  } else {
    d = read_image(spec, {.non_finite = NonFinitePolicy::Keep}).data; // the policy: below
  }
  d = apply_non_finite_policy(d, o.non_finite, spec);
  if (d.dim() == 4) {
    if (o.channel < 0 && d.size(1) > 1)
      throw ValueError("'" + spec + "' holds " + std::to_string(d.size(1)) +
                       " channels: choose one with --channel");
    const int64_t c = std::max(o.channel, 0);
    if (c >= d.size(1))
      throw ValueError("--channel " + std::to_string(c) + ": '" + spec + "' has " +
                       std::to_string(d.size(1)) + " channel(s)");
    d = d.select(1, c);
  }
  if (d.dim() == 2) d = d.unsqueeze(0);
  if (d.is_complex()) throw ValueError("'" + spec + "' is complex: validate compares real maps");
  if (o.log) {
    const double lo = d.min().item<double>();
    if (!(lo > 0))
      throw ValueError("--log: '" + spec + "' has pixels <= 0 (minimum " + std::to_string(lo) +
                       ")");
    d = d.log();
  }
  return d;
}

void run_validate(const ValidateCliOptions& o, const Globals& globals) {
  make_report_folder(o.report);
  const std::string json = o.report + "/validation.json", png = o.report + "/validation.png";
  const bool figure = charts_available();
  OutputFiles outputs;
  outputs.input(o.targets);
  outputs.input(o.samples);
  outputs.add(json, "the report's JSON");
  if (figure) outputs.add(png, "the report's figure");
  const at::Tensor t = read_maps(o.targets, o), s = read_maps(o.samples, o);
  const ValidationReport r = validate_maps(t, s, o.options);
  write_text_file(outputs.staged(json), validation_json(r));
  if (figure)
    write_validation_figure(outputs.staged(png), r,
                            "targets " + o.targets + " against samples " + o.samples +
                                (o.log ? " (log maps)" : ""));
  outputs.commit();
  if (globals.quiet) return;
  std::printf("validate: %lld target and %lld sample maps of %lld x %lld%s\n",
              static_cast<long long>(r.target_maps), static_cast<long long>(r.sample_maps),
              static_cast<long long>(r.height), static_cast<long long>(r.width),
              o.log ? " (log)" : "");
  std::printf("  %-24s %12s %12s\n", "", "targets", "samples");
  const auto row = [](const char* name, const MomentSummary& m) {
    std::printf("  %-24s %12.4g %12.4g\n", name, m.target_mean, m.sample_mean);
  };
  row("skewness", r.skewness);
  row("excess kurtosis", r.kurtosis);
  std::printf("  KS distance of the PDFs: %.4f\n", r.ks_distance);
  std::printf("  largest deviation of the sample mean (spectrum: relative per bin over the "
              "well-sampled bins; others: relative to the curve's largest value):\n");
  for (const MeasureCurve& c : r.curves)
    std::printf("    %-24s %8.2f %%\n", c.name.c_str(), 100 * c.max_deviation);
  std::printf("wrote %s%s\n", json.c_str(),
              figure ? (" and " + png).c_str() : " (no figure: this build has no cairo)");
}

} // namespace

void add_validate_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<ValidateCliOptions>();
  auto* cmd = app.add_subcommand(
      "validate", "Compare sample maps with target maps on statistics a synthesis or a "
                  "separation did not constrain: spectrum, PDF, Minkowski functionals, "
                  "bispectrum, peak counts");
  cmd->add_option("targets", o->targets, "Target maps: a map or a cube of maps (FITS or npy)")
      ->required();
  cmd->add_option("samples", o->samples, "Sample maps, of the targets' size (e.g. demix synth's)")
      ->required();
  cmd->add_option("--report", o->report, "Folder for validation.json and validation.png")
      ->required();
  cmd->add_option("--channel", o->channel, "For 4-D files (N, C, H, W): the channel compared")
      ->check(at_least(0));
  cmd->add_flag("--log", o->log, "Compare log(maps) (positive maps)");
  cmd->add_option("--thresholds", o->options.thresholds, "Minkowski thresholds")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  cmd->add_option("--spectrum-bins", o->options.spectrum_bins, "Power-spectrum bins (log)")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  add_nan_option(*cmd, o->non_finite);
  cmd->callback([o, &globals] { run_validate(*o, globals); });
}

} // namespace demix::cli

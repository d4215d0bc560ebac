// demix preview IN OUT.png: a coloured picture of a map (one plane of a cube).

#include "common.hpp"

#include <demix/errors.hpp>
#include <demix/io.hpp>
#include <demix/preview.hpp>

#include <ATen/ATen.h>

#include <iostream>
#include <memory>

namespace demix::cli {

namespace {

enum class ComplexPart { Abs, Real, Imag, Phase };

struct PreviewCliOptions {
  std::string input;
  std::string output;
  PreviewOptions preview;
  std::vector<double> percentiles;
  double vmin = 0, vmax = 0;
  int plane = 0;
  ComplexPart part = ComplexPart::Abs;
  NonFinitePolicy non_finite = NonFinitePolicy::Reject;
};

at::Tensor select_part(const at::Tensor& z, ComplexPart part) {
  if (!z.is_complex()) return z;
  switch (part) {
    case ComplexPart::Abs: return z.abs();
    case ComplexPart::Real: return at::real(z);
    case ComplexPart::Imag: return at::imag(z);
    case ComplexPart::Phase: return z.angle();
  }
  return z;
}

void run_preview(PreviewCliOptions o, const Globals& globals, const CLI::App& cmd) {
  if (format_for_output(o.output) != FileFormat::Png)
    throw ValueError("preview writes PNG files; output '" + o.output + "' does not end in .png");
  const Image image = read_image(o.input, {.non_finite = o.non_finite});
  at::Tensor map = image.data;
  if (map.dim() == 3) {
    if (o.plane < 0 || o.plane >= map.size(0))
      throw ValueError("--plane " + std::to_string(o.plane) + " out of range: '" + o.input +
                       "' has " + std::to_string(map.size(0)) + " planes (0 to " +
                       std::to_string(map.size(0) - 1) + ")");
    map = map[o.plane];
  }
  if (cmd.count("--percentiles")) {
    o.preview.lower_percentile = o.percentiles.at(0);
    o.preview.upper_percentile = o.percentiles.at(1);
  }
  if (cmd.count("--vmin")) o.preview.vmin = o.vmin;
  if (cmd.count("--vmax")) o.preview.vmax = o.vmax;
  write_preview(o.output, select_part(map, o.part), o.preview);
  if (!globals.quiet)
    std::cout << "wrote " << o.output << " (" << map.size(1) << " x " << map.size(0) << " pixels)\n";
}

}  // namespace

void add_preview_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<PreviewCliOptions>();
  auto* cmd = app.add_subcommand("preview", "Write a PNG picture of a map");
  cmd->add_option("input", o->input, "FITS (file.fits, file.fits[2], file.fits[SCI]) or .npy")
      ->required();
  cmd->add_option("output", o->output, "Output .png")->required();
  const std::map<std::string, Stretch> stretches{{"linear", Stretch::Linear},
                                                 {"sqrt", Stretch::Sqrt},
                                                 {"log", Stretch::Log},
                                                 {"asinh", Stretch::Asinh}};
  const std::map<std::string, Colormap> cmaps{
      {"viridis", Colormap::Viridis}, {"magma", Colormap::Magma}, {"gray", Colormap::Gray}};
  const std::map<std::string, Origin> origins{{"lower", Origin::Lower}, {"upper", Origin::Upper}};
  const std::map<std::string, ComplexPart> parts{{"abs", ComplexPart::Abs},
                                                 {"real", ComplexPart::Real},
                                                 {"imag", ComplexPart::Imag},
                                                 {"phase", ComplexPart::Phase}};
  cmd->add_option("--stretch", o->preview.stretch, "linear, sqrt, log or asinh")
      ->transform(CLI::CheckedTransformer(stretches, CLI::ignore_case))
      ->default_str("asinh");
  cmd->add_option("--cmap", o->preview.colormap, "Colour map: viridis, magma, gray")
      ->transform(CLI::CheckedTransformer(cmaps, CLI::ignore_case))
      ->default_str("viridis");
  cmd->add_option("--origin", o->preview.origin, "Row 0 at the bottom (lower, as ds9) or top")
      ->transform(CLI::CheckedTransformer(origins, CLI::ignore_case))
      ->default_str("lower");
  cmd->add_option("--percentiles", o->percentiles, "Clip range as two percentiles")
      ->expected(2)
      ->default_str("0.5 99.5");
  cmd->add_option("--vmin", o->vmin, "Lower clip value (overrides the lower percentile)");
  cmd->add_option("--vmax", o->vmax, "Upper clip value (overrides the upper percentile)");
  cmd->add_option("--plane", o->plane, "Plane of a cube to show")->default_str("0");
  cmd->add_option("--part", o->part, "Complex maps: abs, real, imag, phase")
      ->transform(CLI::CheckedTransformer(parts, CLI::ignore_case))
      ->default_str("abs");
  add_nan_option(*cmd, o->non_finite);
  cmd->callback([o, &globals, cmd] { run_preview(*o, globals, *cmd); });
}

}  // namespace demix::cli

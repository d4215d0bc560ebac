// demix preview IN OUT.png: a coloured picture of a map (one plane of a cube), or with --rgb a
// colour composite of three bands of a multi-band image (asinh stretch of Lupton et al. 2004).

#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/viz/chart.hpp>
#include <demix/viz/preview.hpp>
#include <demix/viz/rgb.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
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
  NonFinitePolicy non_finite = NonFinitePolicy::Keep; ///< blanked pixels are routine in sky maps
  std::string rgb;   ///< "i,r,g" (band names from BAND1..n keywords) or "3,2,1" (plane indices)
  int64_t index = 0; ///< item of a 4D (N, C, H, W) input
  double q = 8.0;    ///< asinh softening of --rgb
  bool bare = false; ///< the picture alone, one PNG pixel per map pixel (no axes, no colour bar)
  int size = 560;    ///< the figure's picture: pixels on its longer side
};

/// "name [BUNIT]" of a map's values, from its header.
std::string values_label(const FitsHeader& header, ComplexPart part, bool complex) {
  std::string name = "pixel value";
  if (complex)
    name = part == ComplexPart::Abs    ? "modulus"
           : part == ComplexPart::Real ? "real part"
           : part == ComplexPart::Imag ? "imaginary part"
                                       : "phase [rad]";
  const auto unit = header.value("BUNIT");
  if (unit && !unit->empty() && !(complex && part == ComplexPart::Phase))
    name += " [" + *unit + "]";
  return name;
}

/// Why a figure came out bare.
constexpr const char* bare_note = "; the picture alone: this build has no cairo for figures";

std::string file_name_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// The plane of `bands` (C) called `name` (a BANDn keyword value) or numbered `name`.
int64_t plane_of(const std::string& name, const FitsHeader& header, int64_t planes,
                 const std::string& input) {
  for (int64_t c = 0; c < planes; ++c)
    if (header.value("BAND" + std::to_string(c + 1)) == name) return c;
  char* end = nullptr;
  const long v = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0' && v >= 0 && v < planes) return v;
  std::string known;
  for (int64_t c = 0; c < planes; ++c)
    if (const auto b = header.value("BAND" + std::to_string(c + 1)))
      known += (known.empty() ? "" : ", ") + *b;
  throw ValueError("--rgb: '" + input + "' has no band '" + name + "' (" +
                   (known.empty() ? std::string("no BANDn keywords") : "bands " + known) +
                   "; plane numbers 0 to " + std::to_string(planes - 1) + " also work)");
}

void run_rgb(const PreviewCliOptions& o, const Globals& globals, const CLI::App& cmd,
             OutputFiles& outputs) {
  at::Tensor data;
  FitsHeader header;
  if (detect_input_format(o.input) == FileFormat::Fits) {
    FitsImage f = read_fits(o.input); // 2D to 4D: datasets hold (N, C, H, W)
    data = f.data;
    header = f.header;
  } else {
    data = read_image(o.input, {.non_finite = NonFinitePolicy::Keep}).data;
  }
  if (data.dim() == 4) {
    if (o.index < 0 || o.index >= data.size(0))
      throw ValueError("--index " + std::to_string(o.index) + " out of range: '" + o.input +
                       "' holds " + std::to_string(data.size(0)) + " images");
    data = data[o.index];
  }
  if (data.dim() != 3 || data.is_complex())
    throw ShapeError("--rgb needs a real multi-band image (C, H, W) or (N, C, H, W); '" + o.input +
                     "' has " + std::to_string(data.dim()) + " dimension(s)");
  std::vector<std::string> names;
  for (std::size_t start = 0;;) {
    const auto comma = o.rgb.find(',', start);
    names.push_back(
        o.rgb.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (names.size() != 3)
    throw ValueError("--rgb needs three bands (red, green, blue), e.g. i,r,g; got '" + o.rgb + "'");
  std::vector<at::Tensor> planes;
  std::vector<int64_t> index;
  for (const auto& n : names) index.push_back(plane_of(n, header, data.size(0), o.input));
  // Calibrated files (ZPn and EXPTIMEn keywords, as demix simulate writes): each plane divided
  // by its electrons per unit AB flux, so that a flat-spectrum source is grey.
  std::vector<double> per_flux;
  for (int64_t c : index) {
    const auto zp = header.number("ZP" + std::to_string(c + 1));
    const auto t = header.number("EXPTIME" + std::to_string(c + 1));
    if (zp && t && *t > 0) per_flux.push_back(*t * std::pow(10.0, 0.4 * *zp));
  }
  for (std::size_t j = 0; j < index.size(); ++j)
    planes.push_back(per_flux.size() == 3 ? data[index[j]] * (per_flux[0] / per_flux[j])
                                          : data[index[j]]);
  RgbOptions rgb;
  rgb.q = o.q;
  rgb.origin_lower = o.preview.origin == Origin::Lower;
  if (cmd.count("--vmin")) rgb.minimum = o.vmin;
  if (cmd.count("--vmax")) rgb.stretch = o.vmax - rgb.minimum;
  if (o.bare || !charts_available()) {
    write_rgb_png(outputs.staged(o.output), at::stack(planes), rgb);
  } else {
    std::string bands;
    for (std::size_t j = 0; j < names.size(); ++j)
      bands += std::string(j ? ", " : "") +
               (j == 0   ? "red "
                : j == 1 ? "green "
                         : "blue ") +
               names[j];
    write_picture_figure(outputs.staged(o.output), render_rgb(at::stack(planes), rgb),
                         rgb.origin_lower, file_name_of(o.input) + " (" + bands + ")", o.size);
  }
  outputs.commit();
  if (!globals.quiet)
    std::cout << "wrote " << o.output << " (" << data.size(2) << " x " << data.size(1)
              << " pixels, " << o.rgb << " as red, green, blue"
              << (o.bare               ? ""
                  : charts_available() ? "; a figure with axes"
                                       : bare_note)
              << ")\n";
}

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
  if (cmd.count("--vmin") && cmd.count("--vmax") && !(o.vmin < o.vmax))
    throw ValueError("--vmin " + std::to_string(o.vmin) + " must be below --vmax " +
                     std::to_string(o.vmax));
  OutputFiles outputs;
  outputs.input(o.input);
  outputs.add(o.output, "the picture");
  if (!o.rgb.empty()) return run_rgb(o, globals, cmd, outputs);
  const Image image = read_image(o.input, {.non_finite = o.non_finite});
  at::Tensor map = image.data;
  if (map.dim() == 2 && cmd.count("--plane") && o.plane != 0)
    throw ValueError("--plane " + std::to_string(o.plane) + ": '" + o.input +
                     "' is a single map (" + shape_text(map) + "), plane 0 only");
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
  if (o.bare || !charts_available()) {
    write_preview(outputs.staged(o.output), select_part(map, o.part), o.preview);
  } else {
    const std::string title =
        file_name_of(o.input) +
        (image.data.dim() == 3 ? ", plane " + std::to_string(o.plane) : std::string());
    write_map_figure(outputs.staged(o.output), select_part(map, o.part), o.preview, title,
                     values_label(image.header, o.part, map.is_complex()), o.size);
  }
  outputs.commit();
  if (!globals.quiet)
    std::cout << "wrote " << o.output << " (" << map.size(1) << " x " << map.size(0) << " pixels"
              << (o.bare               ? ""
                  : charts_available() ? "; a figure with axes and a colour bar"
                                       : bare_note)
              << ")\n";
}

} // namespace

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
      ->transform(choice(stretches))
      ->default_str("asinh");
  cmd->add_option("--cmap", o->preview.colormap, "Colour map: viridis, magma, gray")
      ->transform(choice(cmaps))
      ->default_str("viridis");
  cmd->add_option("--origin", o->preview.origin, "Row 0 at the bottom (lower, as ds9) or top")
      ->transform(choice(origins))
      ->default_str("lower");
  cmd->add_option("--percentiles", o->percentiles, "Clip range as two percentiles")
      ->expected(2)
      ->default_str("0.5 99.5");
  cmd->add_option("--vmin", o->vmin, "Lower clip value (overrides the lower percentile)")
      ->check(finite());
  cmd->add_option("--vmax", o->vmax, "Upper clip value (overrides the upper percentile)")
      ->check(finite());
  cmd->add_option("--plane", o->plane, "Plane of a cube to show")
      ->default_str("0")
      ->check(at_least(0));
  cmd->add_option("--part", o->part, "Complex maps: abs, real, imag, phase")
      ->transform(choice(parts))
      ->default_str("abs");
  add_nan_option(*cmd, o->non_finite);
  cmd->add_option(
      "--rgb", o->rgb,
      "Colour composite of three bands (red,green,blue), by name (BANDn keywords, "
      "e.g. i,r,g) or plane number (e.g. 3,2,1); --vmin is black, --vmax full brightness; "
      "planes calibrated to AB flux when ZPn and EXPTIMEn keywords are present");
  cmd->add_option("--index", o->index, "With --rgb: the image of a 4D (N, C, H, W) input")
      ->default_str("0");
  cmd->add_option("--q", o->q, "With --rgb: asinh softening Q (linear below vmax / Q)")
      ->check(positive())
      ->default_str("8");
  cmd->add_flag("--bare", o->bare,
                "The picture alone, one PNG pixel per map pixel (default: a figure with axes in "
                "pixels, a title and a colour bar)");
  cmd->add_option("--size", o->size, "Figure: the picture's longer side, 64 to 4096 screen pixels")
      ->check(in_range(64, 4096))
      ->default_str("560");
  cmd->callback([o, &globals, cmd] { run_preview(*o, globals, *cmd); });
}

} // namespace demix::cli

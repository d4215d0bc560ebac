// demix convert IN OUT: FITS <-> npy (and FITS -> FITS, npy -> npy), keeping FITS headers.

#include <demix/core/build_info.hpp>
#include <demix/io/image_io.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

#include <iostream>
#include <memory>

namespace demix::cli {

namespace {

struct ConvertOptions {
  std::string input;
  std::string output;
  NonFinitePolicy non_finite = NonFinitePolicy::Reject;
  PixelType type = PixelType::Same;
};

void run_convert(const ConvertOptions& o, const Globals& globals) {
  format_for_output(o.output); // refuse an unknown output extension before reading anything
  Image image = read_image(o.input, {.non_finite = o.non_finite});
  image.header.add_history("demix " + build_info().demix + " convert " + o.input);
  write_image(o.output, image, {.type = o.type});
  if (!globals.quiet)
    std::cout << "wrote " << o.output << " (" << shape_text(image.data) << ", from " << image.format
              << ")\n";
  if (!globals.quiet && format_for_output(o.output) == FileFormat::Npy && !image.header.empty())
    std::cerr << "note: " << image.header.size()
              << " FITS header keywords were not kept (npy has no header)\n";
}

} // namespace

void add_convert_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<ConvertOptions>();
  auto* cmd = app.add_subcommand("convert", "Convert between FITS and NumPy .npy");
  cmd->add_option("input", o->input, "FITS (file.fits, file.fits[2], file.fits[SCI]) or .npy")
      ->required();
  cmd->add_option("output", o->output, "Output .fits/.fit/.fts or .npy")->required();
  add_nan_option(*cmd, o->non_finite);
  const std::map<std::string, PixelType> types{
      {"same", PixelType::Same}, {"float32", PixelType::Float32}, {"float64", PixelType::Float64}};
  cmd->add_option("--out-type", o->type, "Output pixel type: same, float32, float64")
      ->transform(CLI::CheckedTransformer(types, CLI::ignore_case))
      ->default_str("same");
  cmd->callback([o, &globals] { run_convert(*o, globals); });
}

} // namespace demix::cli

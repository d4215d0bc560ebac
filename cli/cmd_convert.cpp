// demix convert IN OUT: FITS <-> npy (and FITS -> FITS, npy -> npy), keeping FITS headers.

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace demix::cli {

namespace {

struct ConvertOptions {
  std::string input;
  std::string output;
  NonFinitePolicy non_finite = NonFinitePolicy::Keep; ///< blanked pixels are routine in sky maps
  PixelType type = PixelType::Same;
  std::vector<int64_t> crop; ///< x0, y0, width, height (pixels, 0-based; x = column)
};

/// The region x0, y0, w, h of every plane, with the WCS reference pixel moved along.
void crop_image(Image& image, const std::vector<int64_t>& c) {
  const int64_t H = image.data.size(-2), W = image.data.size(-1);
  const int64_t x0 = c[0], y0 = c[1], w = c[2], h = c[3];
  if (x0 < 0 || y0 < 0 || w < 1 || h < 1 || x0 + w > W || y0 + h > H)
    throw ValueError("--crop " + std::to_string(x0) + "," + std::to_string(y0) + "," +
                     std::to_string(w) + "," + std::to_string(h) + " is not inside the " +
                     std::to_string(W) + " x " + std::to_string(H) + " (width x height) image");
  image.data = image.data.narrow(-2, y0, h).narrow(-1, x0, w).contiguous();
  shift_reference_pixel(image.header, static_cast<double>(x0), static_cast<double>(y0));
}

/// A FITS file with several HDUs holding data, named without a selector: convert copies one HDU,
/// so it asks which rather than drop the others without a word.
void require_one_hdu(const std::string& spec) {
  if (detect_input_format(spec) != FileFormat::Fits || has_hdu_selector(spec)) return;
  std::vector<std::string> with_data;
  for (const FitsHduInfo& h : list_fits_hdus(spec))
    if (!h.naxes.empty())
      with_data.push_back(std::to_string(h.index) + " " + h.name + " (" + h.kind + ")");
  if (with_data.size() <= 1) return;
  std::string list;
  for (const std::string& h : with_data) list += (list.empty() ? "" : ", ") + h;
  throw ValueError("'" + spec + "' has " + std::to_string(with_data.size()) + " HDUs with data (" +
                   list + "); convert writes one image: choose it, e.g. '" + spec + "[1]'");
}

void run_convert(const ConvertOptions& o, const Globals& globals) {
  format_for_output(o.output); // refuse an unknown output extension before reading anything
  OutputFiles outputs;
  outputs.input(o.input);
  outputs.add(o.output, "the output");
  require_one_hdu(o.input);
  Image image = read_image(o.input, {.non_finite = o.non_finite});
  if (!o.crop.empty()) crop_image(image, o.crop);
  image.header.add_history("demix " + build_info().demix + " convert " + o.input +
                           (o.crop.empty() ? "" : " (cropped)"));
  write_image(outputs.staged(o.output), image, {.type = o.type});
  outputs.commit();
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
      ->transform(choice(types))
      ->default_str("same");
  cmd->add_option("--crop", o->crop,
                  "x0,y0,width,height: keep this region (pixels from 0, x along columns); the WCS "
                  "reference pixel follows")
      ->delimiter(',')
      ->expected(4);
  cmd->callback([o, &globals] { run_convert(*o, globals); });
}

} // namespace demix::cli

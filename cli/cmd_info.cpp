// demix info FILE...: shape, type, pixel statistics, NaN count, HDUs and main header keywords.

#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>
#include <demix/models/madness_model.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

namespace demix::cli {

namespace {

struct InfoOptions {
  std::vector<std::string> files;
  bool all_keywords = false;
};

// Keywords a person looks for first: what, where (WCS), in which units.
const char* const kMainKeywords[] = {
    "OBJECT",  "TELESCOP", "INSTRUME", "FILTER", "BUNIT",  "DATE-OBS", "EXPTIME",
    "EQUINOX", "RADESYS",  "CTYPE1",   "CTYPE2", "CRVAL1", "CRVAL2",   "CRPIX1",
    "CRPIX2",  "CDELT1",   "CDELT2",   "CD1_1",  "CD1_2",  "CD2_1",    "CD2_2",
    "PC1_1",   "PC1_2",    "PC2_1",    "PC2_2",  "CUNIT1", "CUNIT2"};

std::string g(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

/// A MADNESS model (or training checkpoint): parts, sizes, bands and how it was made.
void print_model_info(const std::string& path) {
  const MadnessModel m = MadnessModel::load(path);
  const VaeOptions& v = m.vae().options();
  std::string bands, sigmas;
  for (std::size_t b = 0; b < m.metadata().band_names.size(); ++b) {
    if (b) {
      bands += ' ';
      sigmas += ' ';
    }
    bands += m.metadata().band_names[b];
    sigmas += g(m.metadata().noise_sigmas[b]);
  }
  std::cout << path << "\n"
            << "  format   : demix MADNESS model\n"
            << "  stamps   : " << v.bands << " bands x " << v.stamp_size << " x " << v.stamp_size
            << " (" << bands << "), noise sigmas " << sigmas << " e-\n"
            << "  VAE      : latent dim " << v.latent_dim << ", " << m.vae().parameter_count()
            << " parameters\n"
            << "  flow     : "
            << (m.has_flow() ? std::to_string(m.flow().options().blocks) + " MADE blocks, " +
                                   std::to_string(m.flow().parameter_count()) + " parameters"
                             : std::string("none (run demix train-flow)"))
            << "\n";
  for (const auto& line : m.metadata().provenance) std::cout << "  made by  : " << line << "\n";
}

void print_info(const std::string& spec, const InfoOptions& o, const Context& ctx) {
  if (MadnessModel::is_model_file(spec)) return print_model_info(spec);
  // FITS through read_fits, which also reads 4D (N, C, H, W) batches (simulated datasets).
  Image image;
  if (detect_input_format(spec) == FileFormat::Fits) {
    image = image_from_fits(read_fits(spec), spec);
  } else {
    image = read_image(spec, {.non_finite = NonFinitePolicy::Keep});
  }
  const PixelSummary s = summarize(image.data.to(ctx.device()));
  const auto& d = image.data;
  std::cout << spec << "\n"
            << "  format   : " << image.format << "\n"
            << "  shape    : " << shape_text(d)
            << (d.dim() == 4   ? " (N x C x H x W)"
                : d.dim() == 3 ? " (C x H x W)"
                               : " (H x W)")
            << "\n"
            << "  dtype    : " << dtype_name(d.scalar_type()) << "\n"
            << "  pixels   : " << s.count << " (" << s.nan << " NaN, " << s.inf << " Inf)\n"
            << "  " << (d.is_complex() ? "|z| " : "") << "min/max  : " << g(s.min) << " / "
            << g(s.max) << "\n"
            << "  " << (d.is_complex() ? "|z| " : "") << "mean/std : " << g(s.mean) << " / "
            << g(s.std) << "\n";
  if (detect_input_format(spec) != FileFormat::Fits) return;
  std::cout << "  HDUs     :\n";
  for (const auto& h : list_fits_hdus(spec)) {
    std::string dims;
    for (auto a : h.naxes) dims += (dims.empty() ? "" : " x ") + std::to_string(a);
    std::cout << "    [" << h.index << "] " << (h.name.empty() ? "-" : h.name) << "  " << h.kind;
    if (h.kind == "image")
      std::cout << "  BITPIX " << h.bitpix << "  " << (dims.empty() ? "(empty)" : dims);
    else
      std::cout << "  " << h.naxes[0] << " columns x " << h.naxes[1] << " rows";
    std::cout << "\n";
  }
  if (o.all_keywords) {
    std::cout << "  header   :\n";
    for (const auto& card : image.header.cards()) std::cout << "    " << card << "\n";
    return;
  }
  bool any = false;
  for (const char* key : kMainKeywords) {
    if (const auto v = image.header.value(key)) {
      if (!any) std::cout << "  keywords :\n";
      any = true;
      std::cout << "    " << key << std::string(9 - std::min<std::size_t>(8, std::strlen(key)), ' ')
                << "= " << *v << "\n";
    }
  }
  std::cout << "  (" << image.header.size() << " non-structural keywords; --header lists them)\n";
}

} // namespace

void add_info_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Describe images: shape, type, statistics, header");
  cmd->add_option("files", o->files, "FITS (file.fits, file.fits[2], file.fits[SCI]) or .npy")
      ->required();
  cmd->add_flag("--header", o->all_keywords, "Print every header card");
  cmd->callback([o, &globals] {
    const Context ctx = make_context(globals);
    for (const auto& f : o->files) print_info(f, *o, ctx);
  });
}

} // namespace demix::cli

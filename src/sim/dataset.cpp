// The dataset file format (layout in dataset.hpp): one write path for both kinds, one reader.

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/sim/dataset.hpp>
#include <demix/sim/simulate.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace demix {

namespace {

using detail::sizes_text;

enum class Kind { Isolated, Blends };

std::string kind_name(Kind k) { return k == Kind::Isolated ? "isolated" : "blends"; }

std::string psf_name(PsfModel m) {
  switch (m) {
  case PsfModel::Moffat: return "moffat";
  case PsfModel::Kolmogorov: return "kolmogorov";
  case PsfModel::None: return "none";
  }
  return "?";
}

// ---- Writing ------------------------------------------------------------------------------------

/// The sizes of a dataset's HDUs.
struct Layout {
  Kind kind = Kind::Isolated;
  int64_t items = 0;      ///< N
  int64_t galaxies = 0;   ///< G (isolated: N)
  int64_t bands = 0;      ///< B
  int64_t side = 0;       ///< H = W of the images (isolated: S)
  int64_t stamp_size = 0; ///< S
};

/// The keywords every dataset carries (HDU 0 and every image HDU); IsolatedOptions and
/// BlendOptions share the fields read here. The kind's own keywords are added by its writer.
template <typename Options>
FitsHeader dataset_header(const Survey& survey, const Options& o, const Layout& layout) {
  FitsHeader h;
  h.set("DATASET", kind_name(layout.kind), "demix simulate: isolated stamps or blends");
  h.set("SURVEY", survey.name, "survey simulated");
  h.set("BUNIT", std::string("electron"), "e- over the full survey exposure, sky-subtracted");
  h.set("PIXSCALE", survey.pixel_scale_arcsec, "pixel scale, arcsec/pixel");
  h.set("NBANDS", static_cast<long long>(survey.n_bands()), "number of bands");
  for (int b = 0; b < survey.n_bands(); ++b) {
    const std::string i = std::to_string(b + 1);
    const auto& band = survey.bands[b];
    h.set("BAND" + i, band.name, "band of image plane " + i);
    h.set("SIGMA" + i, survey.noise_sigma(b), "noise sigma of band " + band.name + ", e-/pixel");
    h.set("FWHM" + i, band.psf_fwhm_arcsec, "PSF FWHM of band " + band.name + ", arcsec");
    h.set("ZP" + i, band.zero_point_mag, "AB mag giving 1 e-/s in band " + band.name);
    h.set("EXPTIME" + i, band.exposure_time_s, "total exposure of band " + band.name + ", s");
  }
  h.set("PSFMODEL", psf_name(o.psf), "PSF profile");
  h.set("MOFFBETA", survey.psf_moffat_beta, "Moffat beta (PSFMODEL = moffat)");
  // FITS integers are signed: a seed beyond 2^63 - 1 is written as text.
  if (o.seed <= static_cast<uint64_t>(std::numeric_limits<long long>::max()))
    h.set("SEED", static_cast<long long>(o.seed), "random seed of the simulation");
  else
    h.set("SEED", std::to_string(o.seed), "random seed of the simulation");
  h.set("NOISE", o.noise, "T: images are noisy (sky Gaussian noise)");
  h.set("SRCNOISE", o.source_noise, "T: the galaxies' Poisson noise is included");
  h.set("NITEMS", static_cast<long long>(layout.items), "number of stamps or blends");
  h.set("NGAL", static_cast<long long>(layout.galaxies), "number of galaxies");
  h.set("STAMPSZ", static_cast<long long>(layout.stamp_size), "side of the galaxy stamps, pixels");
  h.set("MAGBAND", o.population.limit_band, "band of the magnitude limit");
  h.set("MAGLIM", o.population.mag_limit, "faintest galaxy magnitude");
  h.set("MAGBRT", o.population.mag_bright, "brightest galaxy magnitude");
  h.set("CREATOR", std::string("demix ") + build_info().demix, "software");
  return h;
}

/// Where each galaxy lies: TRUTH's columns beside the galaxies' own properties.
struct Placement {
  at::Tensor blend_id;     // (G) int64: the blend (isolated: the stamp) holding the galaxy
  at::Tensor galaxy_id;    // (G) int64: its index within that blend
  at::Tensor stamp_origin; // (G, 2) int64: stamp_x0, stamp_y0
  at::Tensor n_blend;      // (G) int64: galaxies in its blend
  at::Tensor density;      // (G) float64: galaxies per arcmin^2 of its blend's centre square
};

/// Per-galaxy measurements taken on the noiseless stamps while writing.
struct StampStats {
  std::vector<at::Tensor> flux, snr; // chunks of (g, B) float64
  void add(const at::Tensor& stamps /* (g, B, S, S) */, const Survey& survey) {
    const at::Tensor s = stamps.to(at::kDouble);
    flux.push_back(s.sum({2, 3}).cpu());
    const at::Tensor sigma = survey.noise_sigmas(s.options()).view({1, -1});
    snr.push_back((s.square().sum({2, 3}).sqrt() / sigma).cpu());
  }
  static at::Tensor cat(const std::vector<at::Tensor>& parts, int64_t bands) {
    return parts.empty() ? at::zeros({0, bands}, at::kDouble) : at::cat(parts);
  }
};

Table truth_table(const Survey& survey, const Galaxies& g, const Placement& p,
                  const StampStats& stats, int hlr_band) {
  const int B = survey.n_bands();
  const at::Tensor stamp_flux = StampStats::cat(stats.flux, B), snr = StampStats::cat(stats.snr, B);
  Table t;
  t.add("blend_id", p.blend_id, "", "blend (isolated: stamp) index");
  t.add("galaxy_id", p.galaxy_id, "", "galaxy index within its blend");
  t.add("x", g.x, "pixel", "centre column (0-based)");
  t.add("y", g.y, "pixel", "centre row (0-based)");
  t.add("stamp_x0", p.stamp_origin.select(1, 0), "pixel",
        "column of the stamp's first pixel in the blend");
  t.add("stamp_y0", p.stamp_origin.select(1, 1), "pixel",
        "row of the stamp's first pixel in the blend");
  t.add("n_blend", p.n_blend, "", "galaxies in this blend");
  t.add("density", p.density, "arcmin-2", "galaxies per arcmin^2 of the blend's centre square");
  for (int b = 0; b < B; ++b)
    t.add("flux_" + survey.bands[b].name, g.flux.select(1, b), "electron", "total model flux");
  for (int b = 0; b < B; ++b) {
    at::Tensor mag = at::empty({g.size()}, at::kDouble);
    const at::Tensor f = g.flux.select(1, b).contiguous();
    for (int64_t i = 0; i < g.size(); ++i) {
      const double v = f.data_ptr<double>()[i];
      mag.data_ptr<double>()[i] = v > 0 ? survey.magnitude(b, v) : 99.0;
    }
    t.add("mag_" + survey.bands[b].name, mag, "mag", "AB magnitude (99: no flux)");
  }
  for (int b = 0; b < B; ++b)
    t.add("stamp_flux_" + survey.bands[b].name, stamp_flux.select(1, b), "electron",
          "flux inside the galaxy's stamp");
  for (int b = 0; b < B; ++b)
    t.add("snr_" + survey.bands[b].name, snr.select(1, b), "", "matched-filter S/N, noiseless");
  for (int b = 0; b < B; ++b)
    t.add("bulge_frac_" + survey.bands[b].name, g.bulge_fraction.select(1, b), "",
          "bulge share of the flux");
  t.add("hlr", half_light_radius(g, hlr_band), "arcsec", "half-light radius, bulge + disk");
  t.add("hlr_disk", g.disk_hlr, "arcsec", "disk half-light radius");
  t.add("hlr_bulge", g.bulge_hlr, "arcsec", "bulge half-light radius");
  t.add("e1", g.e1, "", "ellipticity (shear convention)");
  t.add("e2", g.e2, "", "ellipticity (shear convention)");
  return t;
}

/// Items [first, first + n) of a dataset, rendered.
struct Chunk {
  at::Tensor images;        // (n, B, H, W) as stored (noisy unless NOISE = F)
  at::Tensor noiseless;     // (n, B, H, W)
  at::Tensor stamps;        // (g, B, S, S) each galaxy alone, noiseless (isolated: = noiseless)
  int64_t first_galaxy = 0; // index of stamps[0] among all galaxies
};

/// What differs between the kinds of dataset.
struct KindParts {
  Layout layout;
  FitsHeader keywords;                           ///< the kind's own, added to the common ones
  Placement placement;                           ///< TRUTH's columns beside the galaxies' own
  std::function<Chunk(int64_t, int64_t)> render; ///< (first, count) -> chunk
};

/// The one write path, for either simulator (both have the members used here).
template <typename Simulator>
void write_dataset(const std::string& path, const Simulator& sim, const KindParts& kind,
                   const DatasetWriteOptions& w) {
  if (w.chunk < 1) throw ValueError("chunk size must be >= 1, got " + std::to_string(w.chunk));
  const Layout& l = kind.layout;
  const Survey& survey = sim.survey();
  const int64_t N = l.items, B = l.bands, H = l.side, S = l.stamp_size;
  const bool blends = l.kind == Kind::Blends;
  FitsHeader h = dataset_header(survey, sim.options(), l);
  for (const auto& card : kind.keywords.cards()) h.add_card(card);
  // One item: HDU 0 is the (B, H, W) image itself, so that image readers take it as it is.
  const bool single = N == 1;
  const auto item_shape = [&](int64_t n) {
    return single ? std::vector<int64_t>{B, H, H} : std::vector<int64_t>{n, B, H, H};
  };
  FitsWriter out(path);
  if (!single) out.add_empty_primary(h);
  const int images = out.add_image_shape(single   ? ""
                                         : blends ? "BLENDS"
                                                  : "STAMPS",
                                         item_shape(N), h);
  const int noiseless =
      sim.options().noise ? out.add_image_shape("NOISELESS", item_shape(N), h) : -1;
  const int stamps = blends ? out.add_image_shape("STAMPS", {l.galaxies, B, S, S}, h) : -1;
  const auto write_items = [&](int hdu, int64_t first, const at::Tensor& rows) {
    if (single)
      out.write_rows(hdu, 0, rows[0]); // the bands are the rows of a (B, H, W) HDU
    else
      out.write_rows(hdu, first, rows);
  };
  StampStats stats;
  for (int64_t first = 0; first < N; first += w.chunk) {
    const int64_t n = std::min(w.chunk, N - first);
    const Chunk c = kind.render(first, n);
    write_items(images, first, c.images);
    if (noiseless >= 0) write_items(noiseless, first, c.noiseless);
    if (stamps >= 0) out.write_rows(stamps, c.first_galaxy, c.stamps);
    stats.add(c.stamps, survey);
    if (w.progress) w.progress(first + n, N);
  }
  out.add_image("PSF", sim.psf_images(), h);
  const int hlr_band = survey.band_index(sim.options().population.limit_band);
  const Table truth = truth_table(survey, sim.galaxies(), kind.placement, stats, hlr_band);
  out.add_table("TRUTH", truth);
  // The CSV first: if it fails, the FITS temporary is dropped too.
  if (!w.csv_path.empty()) write_table(w.csv_path, truth, "TRUTH"); // CSV, ECSV or FITS by name
  out.commit();
}

} // namespace

void write_isolated_dataset(const std::string& path, const IsolatedSimulator& sim,
                            const DatasetWriteOptions& w) {
  const int64_t N = sim.size(), S = sim.options().stamp_size;
  FitsHeader keywords;
  keywords.set("MAXOFFS", sim.options().max_offset, "max sub-pixel offset of the centres, pixels");
  const KindParts kind{.layout = {.kind = Kind::Isolated,
                                  .items = N,
                                  .galaxies = N,
                                  .bands = sim.survey().n_bands(),
                                  .side = S,
                                  .stamp_size = S},
                       .keywords = keywords,
                       .placement = {.blend_id = at::arange(N, at::kLong),
                                     .galaxy_id = at::zeros({N}, at::kLong),
                                     .stamp_origin = at::zeros({N, 2}, at::kLong),
                                     .n_blend = at::ones({N}, at::kLong),
                                     .density = at::zeros({N}, at::kDouble)},
                       .render = [&sim](int64_t first, int64_t count) {
                         const IsolatedChunk c = sim.render(first, count);
                         // An isolated galaxy's stamp is its noiseless image.
                         return Chunk{.images = c.images,
                                      .noiseless = c.noiseless,
                                      .stamps = c.noiseless,
                                      .first_galaxy = first};
                       }};
  write_dataset(path, sim, kind, w);
}

void write_blend_dataset(const std::string& path, const BlendSimulator& sim,
                         const DatasetWriteOptions& w) {
  const BlendOptions& o = sim.options();
  const int64_t N = sim.size(), G = sim.galaxy_count();
  const at::Tensor& blend = sim.blend_index();                                      // (G)
  const at::Tensor n_of = sim.offsets().slice(0, 1) - sim.offsets().slice(0, 0, N); // (N)
  const double arcmin2_per_px2 = std::pow(sim.survey().pixel_scale_arcsec / 60.0, 2);
  const at::Tensor density = n_of.to(at::kDouble) / (sim.region_side().square() * arcmin2_per_px2);
  FitsHeader keywords;
  keywords.set("FIELDSZ", static_cast<long long>(o.field_size), "blend image side, pixels");
  keywords.set("MINGAL", static_cast<long long>(o.min_galaxies), "fewest galaxies per blend");
  keywords.set("MAXGAL", static_cast<long long>(o.max_galaxies), "most galaxies per blend");
  keywords.set("DENSITY", o.density, "requested galaxies per arcmin^2 (0: whole square)");
  const KindParts kind{
      .layout = {.kind = Kind::Blends,
                 .items = N,
                 .galaxies = G,
                 .bands = sim.survey().n_bands(),
                 .side = o.field_size,
                 .stamp_size = o.stamp_size},
      .keywords = keywords,
      .placement = {.blend_id = blend,
                    .galaxy_id = at::arange(G, at::kLong) - sim.offsets().index_select(0, blend),
                    .stamp_origin = sim.stamp_origins(),
                    .n_blend = n_of.index_select(0, blend),
                    .density = density.index_select(0, blend)},
      .render = [&sim](int64_t first, int64_t count) {
        const BlendChunk c = sim.render(first, count);
        return Chunk{.images = c.images,
                     .noiseless = c.noiseless,
                     .stamps = c.stamps,
                     .first_galaxy = c.first_galaxy};
      }};
  write_dataset(path, sim, kind, w);
}

// ---- Reading ------------------------------------------------------------------------------------

std::vector<std::string> read_band_names(const FitsHeader& header, int64_t bands) {
  std::vector<std::string> names;
  for (int64_t b = 1; b <= bands; ++b) {
    const auto name = header.value("BAND" + std::to_string(b));
    if (!name) return {};
    names.push_back(*name);
  }
  return names;
}

std::vector<double> read_noise_sigmas(const FitsHeader& header, int64_t bands,
                                      const std::string& file) {
  std::vector<double> sigmas;
  std::string missing; // the first SIGMAi absent
  for (int64_t b = 1; b <= bands; ++b) {
    const std::string key = "SIGMA" + std::to_string(b);
    std::optional<double> sigma;
    try {
      sigma = header.number(key);
    } catch (const ValueError&) {
      throw FormatError("'" + file + "': keyword " + key + " = " + header.value(key).value_or("") +
                        " is not a number (the noise sigma of band " + std::to_string(b) +
                        ", e-/pixel)");
    }
    if (!sigma) {
      if (missing.empty()) missing = key;
      continue;
    }
    if (!(*sigma > 0) || !std::isfinite(*sigma))
      throw FormatError("'" + file + "': keyword " + key + " = " + std::to_string(*sigma) +
                        " is not a positive noise level (e-/pixel)");
    sigmas.push_back(*sigma);
  }
  if (!sigmas.empty() && !missing.empty())
    throw FormatError("'" + file + "' has " + std::to_string(sigmas.size()) +
                      " of the keywords SIGMA1..SIGMA" + std::to_string(bands) + " but not " +
                      missing + ": a noise level is needed for each of its " +
                      std::to_string(bands) + " bands, or none");
  return sigmas;
}

namespace {

/// A keyword's value as written (a number beyond long long, NaN, would not convert).
std::string header_text(const FitsHeader& header, const std::string& key) {
  return header.value(key).value_or("");
}

/// `t` with the leading axes of length 1 that FITS dropped put back (N = 1 or G = 1, and B = 1)
/// when `may_lack_batch`; ShapeError naming the file and HDU unless it then has 4 axes.
at::Tensor as_batch(at::Tensor t, bool may_lack_batch, const std::string& path,
                    const std::string& hdu, const char* axes) {
  while (may_lack_batch && t.dim() < 4) t = t.unsqueeze(0);
  if (t.dim() != 4 || t.size(0) < 1)
    throw ShapeError("'" + path + "': " + hdu + " must be " + axes + ", got " + sizes_text(t));
  return t;
}

SimulatedDataset read(const std::string& path, bool complete) {
  const auto hdus = list_fits_hdus(path);
  const auto has = [&](const std::string& name) {
    return std::any_of(hdus.begin(), hdus.end(),
                       [&](const FitsHduInfo& h) { return h.name == name; });
  };
  const bool single = !hdus.empty() && hdus[0].kind == "image" && !hdus[0].naxes.empty();
  const std::string image_hdu = single ? "0" : has("BLENDS") ? "BLENDS" : "STAMPS";
  if (!single && !has(image_hdu))
    throw FormatError("'" + path +
                      "' holds no images: neither a STAMPS or BLENDS extension nor an " +
                      "image in HDU 0 (the layout `demix simulate` writes: sim/dataset.hpp)");
  if (complete && (!has("TRUTH") || !has("PSF")))
    throw FormatError("'" + path + "' is not a dataset written by demix simulate (it lacks the " +
                      std::string(has("TRUTH") ? "PSF" : "TRUTH") + " extension)");
  SimulatedDataset d;
  FitsImage images = read_fits(path + "[" + image_hdu + "]");
  d.header = images.header;
  d.kind = d.header.value("DATASET").value_or("");
  // Without DATASET, only stamps from elsewhere are accepted (read_dataset_images): a STAMPS
  // extension.
  const bool foreign_stamps = !complete && d.kind.empty() && image_hdu == "STAMPS";
  if (!foreign_stamps && d.kind != "isolated" && d.kind != "blends")
    throw FormatError("'" + path + "': keyword DATASET is " +
                      (d.kind.empty() ? std::string("missing") : "'" + d.kind + "'") +
                      ", expected 'isolated' or 'blends' (a dataset written by demix simulate" +
                      (complete ? ")" : ", or stamps in a STAMPS extension)"));
  const std::string image_name = single ? "HDU 0" : image_hdu;
  d.images = as_batch(images.data, single, path, image_name, "(N, B, H, W)");
  if (has("NOISELESS")) {
    d.noiseless =
        as_batch(read_fits(path + "[NOISELESS]").data, single, path, "NOISELESS", "(N, B, H, W)");
    if (d.noiseless.sizes() != d.images.sizes())
      throw ShapeError("'" + path + "': NOISELESS has shape " + sizes_text(d.noiseless) + ", " +
                       image_name + " " + sizes_text(d.images));
  }
  const int64_t B = d.images.size(1);
  if (d.kind == "blends") {
    // A 3-D STAMPS extension is one galaxy whose leading axis FITS dropped.
    d.stamps = as_batch(read_fits(path + "[STAMPS]").data, true, path, "STAMPS", "(G, B, S, S)");
    if (d.stamps.size(1) != B)
      throw ShapeError("'" + path + "': STAMPS has " + std::to_string(d.stamps.size(1)) +
                       " bands, " + image_name + " " + std::to_string(B));
  }
  d.bands = read_band_names(d.header, B);
  const std::vector<double> sigmas = read_noise_sigmas(d.header, B, path);
  if (!sigmas.empty()) d.sigma = at::tensor(sigmas, at::kDouble);
  if (complete) {
    const auto nb = d.header.number("NBANDS");
    if (!nb || *nb != static_cast<double>(B))
      throw FormatError("'" + path + "': keyword NBANDS is " +
                        (nb ? header_text(d.header, "NBANDS") : "missing") + ", the images have " +
                        std::to_string(B) + " bands");
    if (sigmas.empty()) throw FormatError("'" + path + "': keyword SIGMA1 is missing");
    if (d.bands.empty())
      throw FormatError("'" + path + "': keywords BAND1..BAND" + std::to_string(B) +
                        " (the band names) are missing");
    d.psf = read_fits(path + "[PSF]").data;
    if (d.psf.dim() == 2) d.psf = d.psf.unsqueeze(0); // one band
    d.truth = read_fits_table(path + "[TRUTH]");
  }
  return d;
}

} // namespace

SimulatedDataset read_dataset(const std::string& path) { return read(path, true); }

SimulatedDataset read_dataset_images(const std::string& path) { return read(path, false); }

} // namespace demix

// Isolated and blended galaxy datasets (layout in simulate.hpp).

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/sim/simulate.hpp>

#include "sim/detail/random.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace demix {

namespace {

// Salts separating the random streams drawn from one seed.
constexpr uint64_t kPlacementSalt = 0x9A1E5;
constexpr uint64_t kPopulationSalt = 0x7095;
constexpr uint64_t kNoiseSalt = 0x2015E;

uint64_t stream_seed(uint64_t seed, uint64_t salt) {
  return detail::mix64(seed ^ detail::mix64(salt));
}

std::string psf_name(PsfModel m) {
  switch (m) {
  case PsfModel::Moffat:
    return "moffat";
  case PsfModel::Kolmogorov:
    return "kolmogorov";
  case PsfModel::None:
    return "none";
  }
  return "?";
}

void check_stamp_size(int64_t s) {
  if (s < 5 || s % 2 == 0)
    throw ValueError("stamp size must be odd and >= 5, got " + std::to_string(s));
}

/// Noise sigma per band as (1, B, 1, 1) on `options`.
at::Tensor sigma_view(const Survey& survey, const c10::TensorOptions& options) {
  return survey.noise_sigmas(options).view({1, survey.n_bands(), 1, 1});
}

/// noiseless + noise for items [first, first + n): sky sigma, plus sqrt(I) when source_noise.
at::Tensor add_noise(const at::Tensor& noiseless, const Survey& survey, uint64_t seed,
                     int64_t first, bool source_noise) {
  const std::vector<int64_t> shape(noiseless.sizes().begin(), noiseless.sizes().end());
  const at::Tensor z =
      detail::normal_noise(shape, stream_seed(seed, kNoiseSalt), first).to(noiseless.options());
  at::Tensor sigma = sigma_view(survey, noiseless.options());
  if (source_noise) sigma = (sigma.square() + noiseless.clamp_min(0)).sqrt();
  return noiseless + sigma * z;
}

/// The common keywords of a dataset's HDUs.
FitsHeader dataset_header(const Survey& survey, const std::string& kind, uint64_t seed,
                          PsfModel psf, bool noise, bool source_noise, int64_t items,
                          int64_t galaxies, int64_t stamp_size, const PopulationOptions& pop) {
  FitsHeader h;
  h.set("DATASET", kind, "demix simulate: isolated stamps or blends");
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
  h.set("PSFMODEL", psf_name(psf), "PSF profile");
  h.set("MOFFBETA", survey.psf_moffat_beta, "Moffat beta (PSFMODEL = moffat)");
  // FITS integers are signed: a seed beyond 2^63 - 1 is written as text.
  if (seed <= static_cast<uint64_t>(std::numeric_limits<long long>::max()))
    h.set("SEED", static_cast<long long>(seed), "random seed of the simulation");
  else
    h.set("SEED", std::to_string(seed), "random seed of the simulation");
  h.set("NOISE", noise, "T: images are noisy (sky Gaussian noise)");
  h.set("SRCNOISE", source_noise, "T: the galaxies' Poisson noise is included");
  h.set("NITEMS", static_cast<long long>(items), "number of stamps or blends");
  h.set("NGAL", static_cast<long long>(galaxies), "number of galaxies");
  h.set("STAMPSZ", static_cast<long long>(stamp_size), "side of the galaxy stamps, pixels");
  h.set("MAGBAND", pop.limit_band, "band of the magnitude limit");
  h.set("MAGLIM", pop.mag_limit, "faintest galaxy magnitude");
  h.set("MAGBRT", pop.mag_bright, "brightest galaxy magnitude");
  h.set("CREATOR", std::string("demix ") + build_info().demix, "software");
  return h;
}

/// Per-galaxy measurements taken on the noiseless stamps while writing.
struct StampStats {
  std::vector<at::Tensor> flux, snr; // chunks of (g, B) float64
  void add(const at::Tensor& stamps /* (g, B, S, S) */, const Survey& survey) {
    const at::Tensor s = stamps.to(at::kDouble);
    flux.push_back(s.sum({2, 3}).cpu());
    const at::Tensor sigma = survey.noise_sigmas(s.options()).view({1, -1});
    snr.push_back((s.square().sum({2, 3}).sqrt() / sigma).cpu());
  }
};

Table truth_table(const Survey& survey, const Galaxies& g, const at::Tensor& blend_id,
                  const at::Tensor& galaxy_id, const at::Tensor& stamp_x0,
                  const at::Tensor& stamp_y0, const at::Tensor& n_blend, const at::Tensor& density,
                  const at::Tensor& stamp_flux, const at::Tensor& snr, int hlr_band) {
  Table t;
  t.add("blend_id", blend_id, "", "blend (isolated: stamp) index");
  t.add("galaxy_id", galaxy_id, "", "galaxy index within its blend");
  t.add("x", g.x, "pixel", "centre column (0-based)");
  t.add("y", g.y, "pixel", "centre row (0-based)");
  t.add("stamp_x0", stamp_x0, "pixel", "column of the stamp's first pixel in the blend");
  t.add("stamp_y0", stamp_y0, "pixel", "row of the stamp's first pixel in the blend");
  t.add("n_blend", n_blend, "", "galaxies in this blend");
  t.add("density", density, "arcmin-2", "galaxies per arcmin^2 of the blend's centre square");
  const int B = survey.n_bands();
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

at::Tensor cat_or_empty(const std::vector<at::Tensor>& parts, int64_t cols) {
  return parts.empty() ? at::zeros({0, cols}, at::kDouble) : at::cat(parts);
}

} // namespace

// ---- Isolated stamps ----------------------------------------------------------------------------

struct IsolatedSimulator::State {
  Survey survey;
  IsolatedOptions options;
  Context context;
  GalaxyRenderer renderer;
  Galaxies galaxies;
};

IsolatedSimulator::IsolatedSimulator(const Survey& survey, const IsolatedOptions& o,
                                     const Context& context) {
  if (o.count < 1)
    throw ValueError("number of stamps must be >= 1, got " + std::to_string(o.count));
  check_stamp_size(o.stamp_size);
  if (!(o.max_offset >= 0 && o.max_offset < 0.5))
    throw ValueError("max offset must be in [0, 0.5) pixels, got " + std::to_string(o.max_offset));
  GalaxyRenderer renderer(
      survey, {.stamp_size = o.stamp_size, .psf = o.psf, .batch_size = o.render_batch}, context);
  Galaxies g = sample_galaxies(survey, o.count, stream_seed(o.seed, kPopulationSalt), o.population);
  detail::Rng rng(stream_seed(o.seed, kPlacementSalt));
  const double c = static_cast<double>(o.stamp_size / 2);
  auto* x = g.x.data_ptr<double>();
  auto* y = g.y.data_ptr<double>();
  for (int64_t i = 0; i < o.count; ++i) {
    x[i] = c + (o.max_offset > 0 ? rng.uniform(-o.max_offset, o.max_offset) : 0.0);
    y[i] = c + (o.max_offset > 0 ? rng.uniform(-o.max_offset, o.max_offset) : 0.0);
  }
  state_ = std::make_unique<State>(State{survey, o, context, std::move(renderer), std::move(g)});
}

IsolatedSimulator::~IsolatedSimulator() = default;
int64_t IsolatedSimulator::size() const { return state_->options.count; }
const Galaxies& IsolatedSimulator::galaxies() const { return state_->galaxies; }
at::Tensor IsolatedSimulator::psf_images() const { return state_->renderer.psf_images(); }
const Survey& IsolatedSimulator::survey() const { return state_->survey; }
const IsolatedOptions& IsolatedSimulator::options() const { return state_->options; }

IsolatedChunk IsolatedSimulator::render(int64_t first, int64_t count) const {
  const auto& s = *state_;
  if (first < 0 || count < 0 || first + count > size())
    throw ValueError("stamps " + std::to_string(first) + " to " + std::to_string(first + count) +
                     " requested from a set of " + std::to_string(size()));
  IsolatedChunk out;
  const at::Tensor index = at::arange(first, first + count, at::kLong);
  out.noiseless = s.renderer.render(s.galaxies.select(index));
  out.images = s.options.noise ? add_noise(out.noiseless, s.survey, s.options.seed, first,
                                           s.options.source_noise)
                               : out.noiseless;
  return out;
}

void write_isolated_dataset(const std::string& path, const IsolatedSimulator& sim,
                            const DatasetWriteOptions& w) {
  if (w.chunk < 1) throw ValueError("chunk size must be >= 1, got " + std::to_string(w.chunk));
  const auto& o = sim.options();
  const Survey& survey = sim.survey();
  const int64_t N = sim.size(), B = survey.n_bands(), S = o.stamp_size;
  FitsHeader h = dataset_header(survey, "isolated", o.seed, o.psf, o.noise, o.source_noise, N, N, S,
                                o.population);
  h.set("MAXOFFS", o.max_offset, "max sub-pixel offset of the centres, pixels");
  FitsWriter out(path);
  StampStats stats;
  if (N == 1) {
    const IsolatedChunk c = sim.render(0, 1);
    out.add_image("", c.images[0], h);
    if (o.noise) out.add_image("NOISELESS", c.noiseless[0], h);
    stats.add(c.noiseless, survey);
    if (w.progress) w.progress(1, 1);
  } else {
    out.add_empty_primary(h);
    const int images = out.add_image_shape("STAMPS", {N, B, S, S}, h);
    const int noiseless = o.noise ? out.add_image_shape("NOISELESS", {N, B, S, S}, h) : -1;
    for (int64_t first = 0; first < N; first += w.chunk) {
      const int64_t n = std::min(w.chunk, N - first);
      const IsolatedChunk c = sim.render(first, n);
      out.write_rows(images, first, c.images);
      if (noiseless >= 0) out.write_rows(noiseless, first, c.noiseless);
      stats.add(c.noiseless, survey);
      if (w.progress) w.progress(first + n, N);
    }
  }
  out.add_image("PSF", sim.psf_images(), h);
  const at::Tensor ids = at::arange(N, at::kLong);
  const at::Tensor zeros = at::zeros({N}, at::kLong);
  const Table truth =
      truth_table(survey, sim.galaxies(), ids, zeros, zeros, zeros, at::ones({N}, at::kLong),
                  at::zeros({N}, at::kDouble), cat_or_empty(stats.flux, B),
                  cat_or_empty(stats.snr, B), survey.band_index(o.population.limit_band));
  out.add_table("TRUTH", truth);
  // The CSV first: if it fails, the FITS temporary is dropped too.
  if (!w.csv_path.empty()) write_csv(w.csv_path, truth);
  out.commit();
}

// ---- Blends -------------------------------------------------------------------------------------

struct BlendSimulator::State {
  Survey survey;
  BlendOptions options;
  Context context;
  GalaxyRenderer renderer;
  Galaxies galaxies;
  at::Tensor blend_index, offsets, region_side, galaxy_id;
};

BlendSimulator::BlendSimulator(const Survey& survey, const BlendOptions& o,
                               const Context& context) {
  if (o.count < 1)
    throw ValueError("number of blends must be >= 1, got " + std::to_string(o.count));
  check_stamp_size(o.stamp_size);
  if (o.min_galaxies < 1 || o.max_galaxies < o.min_galaxies)
    throw ValueError("galaxies per blend: need 1 <= min <= max, got min " +
                     std::to_string(o.min_galaxies) + ", max " + std::to_string(o.max_galaxies));
  if (o.field_size < o.stamp_size)
    throw ValueError("blend field of " + std::to_string(o.field_size) +
                     " pixels is smaller than the galaxy stamps (" + std::to_string(o.stamp_size) +
                     " pixels)");
  if (!(o.density >= 0) || !std::isfinite(o.density))
    throw ValueError("density must be >= 0 galaxies/arcmin^2, got " + std::to_string(o.density));
  const double max_side = static_cast<double>(o.field_size - o.stamp_size + 1);
  const double pixels_per_arcmin = 60.0 / survey.pixel_scale_arcsec;
  if (o.density > 0) {
    const double needed = std::sqrt(o.max_galaxies / o.density) * pixels_per_arcmin;
    if (needed > max_side)
      throw ValueError(std::to_string(o.max_galaxies) + " galaxies at " +
                       std::to_string(o.density) + " per arcmin^2 need centres spread over " +
                       std::to_string(static_cast<int64_t>(std::ceil(needed))) +
                       " pixels, but a field of " + std::to_string(o.field_size) +
                       " pixels allows " + std::to_string(static_cast<int64_t>(max_side)) +
                       " (field - stamp + 1); use a field of at least " +
                       std::to_string(static_cast<int64_t>(std::ceil(needed)) + o.stamp_size - 1) +
                       " pixels or a higher density");
  }
  GalaxyRenderer renderer(
      survey, {.stamp_size = o.stamp_size, .psf = o.psf, .batch_size = o.render_batch}, context);

  // Blend sizes and centre squares, then positions.
  detail::Rng rng(stream_seed(o.seed, kPlacementSalt));
  std::vector<int64_t> n_of(o.count);
  std::vector<double> side(o.count);
  int64_t total = 0;
  for (int64_t k = 0; k < o.count; ++k) {
    n_of[k] = rng.integer(o.min_galaxies, o.max_galaxies);
    side[k] = o.density > 0 ? std::sqrt(n_of[k] / o.density) * pixels_per_arcmin : max_side;
    total += n_of[k];
  }
  Galaxies g = sample_galaxies(survey, total, stream_seed(o.seed, kPopulationSalt), o.population);
  at::Tensor blend = at::empty({total}, at::kLong), gid = at::empty({total}, at::kLong);
  at::Tensor offsets = at::empty({o.count + 1}, at::kLong);
  const double centre = 0.5 * static_cast<double>(o.field_size - 1);
  auto* x = g.x.data_ptr<double>();
  auto* y = g.y.data_ptr<double>();
  int64_t i = 0;
  for (int64_t k = 0; k < o.count; ++k) {
    offsets.data_ptr<int64_t>()[k] = i;
    for (int64_t j = 0; j < n_of[k]; ++j, ++i) {
      // Centres uniform over the square; its half side <= (field - S + 1) / 2 keeps the stamp
      // (nearest pixel +- S / 2) inside the field.
      x[i] = centre + rng.uniform(-0.5, 0.5) * side[k];
      y[i] = centre + rng.uniform(-0.5, 0.5) * side[k];
      blend.data_ptr<int64_t>()[i] = k;
      gid.data_ptr<int64_t>()[i] = j;
    }
  }
  offsets.data_ptr<int64_t>()[o.count] = total;
  state_ = std::make_unique<State>(State{survey, o, context, std::move(renderer), std::move(g),
                                         blend, offsets,
                                         at::tensor(at::ArrayRef<double>(side), at::kDouble), gid});
}

BlendSimulator::~BlendSimulator() = default;
int64_t BlendSimulator::size() const { return state_->options.count; }
int64_t BlendSimulator::galaxy_count() const { return state_->galaxies.size(); }
const Galaxies& BlendSimulator::galaxies() const { return state_->galaxies; }
const at::Tensor& BlendSimulator::blend_index() const { return state_->blend_index; }
const at::Tensor& BlendSimulator::offsets() const { return state_->offsets; }
const at::Tensor& BlendSimulator::region_side() const { return state_->region_side; }
at::Tensor BlendSimulator::psf_images() const { return state_->renderer.psf_images(); }
const Survey& BlendSimulator::survey() const { return state_->survey; }
const BlendOptions& BlendSimulator::options() const { return state_->options; }

BlendChunk BlendSimulator::render(int64_t first, int64_t count) const {
  const auto& s = *state_;
  if (first < 0 || count < 0 || first + count > size())
    throw ValueError("blends " + std::to_string(first) + " to " + std::to_string(first + count) +
                     " requested from a set of " + std::to_string(size()));
  const int64_t B = s.survey.n_bands(), S = s.options.stamp_size, H = s.options.field_size;
  const int64_t g0 = s.offsets.data_ptr<int64_t>()[first];
  const int64_t g1 = s.offsets.data_ptr<int64_t>()[first + count];
  BlendChunk out;
  out.first_galaxy = g0;
  const at::Tensor index = at::arange(g0, g1, at::kLong);
  const Galaxies g = s.galaxies.select(index);
  out.stamps = s.renderer.render(g); // (m, B, S, S)
  const auto opts = out.stamps.options();
  out.noiseless = at::zeros({count, B, H, H}, opts);
  // Each stamp added to its blend in catalogue order: one small slice addition per galaxy, so the
  // sums are the same whatever the chunk (a scattered index_add_ may reorder them).
  const auto* x = g.x.data_ptr<double>();
  const auto* y = g.y.data_ptr<double>();
  const auto* blend = s.blend_index.data_ptr<int64_t>() + g0;
  for (int64_t i = 0; i < g1 - g0; ++i) {
    const auto x0 = static_cast<int64_t>(std::floor(x[i] + 0.5)) - S / 2;
    const auto y0 = static_cast<int64_t>(std::floor(y[i] + 0.5)) - S / 2;
    out.noiseless[blend[i] - first].slice(1, y0, y0 + S).slice(2, x0, x0 + S).add_(out.stamps[i]);
  }
  out.images = s.options.noise ? add_noise(out.noiseless, s.survey, s.options.seed, first,
                                           s.options.source_noise)
                               : out.noiseless;
  return out;
}

void write_blend_dataset(const std::string& path, const BlendSimulator& sim,
                         const DatasetWriteOptions& w) {
  if (w.chunk < 1) throw ValueError("chunk size must be >= 1, got " + std::to_string(w.chunk));
  const auto& o = sim.options();
  const Survey& survey = sim.survey();
  const int64_t N = sim.size(), G = sim.galaxy_count(), B = survey.n_bands();
  const int64_t S = o.stamp_size, H = o.field_size;
  FitsHeader h = dataset_header(survey, "blends", o.seed, o.psf, o.noise, o.source_noise, N, G, S,
                                o.population);
  h.set("FIELDSZ", static_cast<long long>(H), "blend image side, pixels");
  h.set("MINGAL", static_cast<long long>(o.min_galaxies), "fewest galaxies per blend");
  h.set("MAXGAL", static_cast<long long>(o.max_galaxies), "most galaxies per blend");
  h.set("DENSITY", o.density, "requested galaxies per arcmin^2 (0: whole square)");
  FitsWriter out(path);
  StampStats stats;
  if (N == 1) {
    const BlendChunk c = sim.render(0, 1);
    out.add_image("", c.images[0], h);
    if (o.noise) out.add_image("NOISELESS", c.noiseless[0], h);
    out.add_image("STAMPS", c.stamps, h);
    stats.add(c.stamps, survey);
    if (w.progress) w.progress(1, 1);
  } else {
    out.add_empty_primary(h);
    const int images = out.add_image_shape("BLENDS", {N, B, H, H}, h);
    const int noiseless = o.noise ? out.add_image_shape("NOISELESS", {N, B, H, H}, h) : -1;
    const int stamps = out.add_image_shape("STAMPS", {G, B, S, S}, h);
    for (int64_t first = 0; first < N; first += w.chunk) {
      const int64_t n = std::min(w.chunk, N - first);
      const BlendChunk c = sim.render(first, n);
      out.write_rows(images, first, c.images);
      if (noiseless >= 0) out.write_rows(noiseless, first, c.noiseless);
      out.write_rows(stamps, c.first_galaxy, c.stamps);
      stats.add(c.stamps, survey);
      if (w.progress) w.progress(first + n, N);
    }
  }
  out.add_image("PSF", sim.psf_images(), h);
  const Galaxies& g = sim.galaxies();
  const at::Tensor x0 = ((g.x + 0.5).floor() - S / 2).to(at::kLong);
  const at::Tensor y0 = ((g.y + 0.5).floor() - S / 2).to(at::kLong);
  const at::Tensor n_of = sim.offsets().slice(0, 1) - sim.offsets().slice(0, 0, N); // (N)
  const at::Tensor n_blend = n_of.index_select(0, sim.blend_index());
  const double arcmin2_per_px2 = std::pow(survey.pixel_scale_arcsec / 60.0, 2);
  const at::Tensor density = (n_of.to(at::kDouble) / (sim.region_side().square() * arcmin2_per_px2))
                                 .index_select(0, sim.blend_index());
  const at::Tensor offsets_of = sim.offsets().index_select(0, sim.blend_index());
  const at::Tensor galaxy_id = at::arange(G, at::kLong) - offsets_of;
  const Table truth = truth_table(survey, g, sim.blend_index(), galaxy_id, x0, y0, n_blend, density,
                                  cat_or_empty(stats.flux, B), cat_or_empty(stats.snr, B),
                                  survey.band_index(o.population.limit_band));
  out.add_table("TRUTH", truth);
  if (!w.csv_path.empty()) write_csv(w.csv_path, truth);
  out.commit();
}

// ---- Reading ------------------------------------------------------------------------------------

SimulatedDataset read_dataset(const std::string& path) {
  const auto hdus = list_fits_hdus(path);
  auto has = [&](const std::string& name) {
    return std::any_of(hdus.begin(), hdus.end(),
                       [&](const FitsHduInfo& h) { return h.name == name; });
  };
  const bool single = !hdus.empty() && hdus[0].kind == "image" && !hdus[0].naxes.empty();
  const std::string image_hdu = single ? "0" : has("BLENDS") ? "BLENDS" : "STAMPS";
  if (!has("TRUTH") || !has("PSF") || (!single && !has(image_hdu)))
    throw FormatError("'" + path + "' is not a dataset written by demix simulate (it lacks the " +
                      "TRUTH, PSF or image extensions)");
  // Images read back with a leading axis of 1 where FITS dropped it (N = 1, B = 1).
  auto read4 = [&](const std::string& hdu, int64_t dims) {
    at::Tensor t = read_fits(path + "[" + hdu + "]").data;
    while (t.dim() < dims) t = t.unsqueeze(0);
    return t;
  };
  SimulatedDataset d;
  FitsImage images = read_fits(path + "[" + image_hdu + "]");
  d.header = images.header;
  d.kind = d.header.value("DATASET").value_or("");
  if (d.kind != "isolated" && d.kind != "blends")
    throw FormatError("'" + path + "': DATASET keyword is '" + d.kind +
                      "', expected 'isolated' or 'blends'");
  d.images = images.data;
  while (d.images.dim() < 4) d.images = d.images.unsqueeze(0);
  if (has("NOISELESS")) d.noiseless = read4("NOISELESS", 4);
  if (d.kind == "blends") d.stamps = read4("STAMPS", 4);
  d.psf = read4("PSF", 3);
  d.truth = read_fits_table(path + "[TRUTH]");
  const auto nb = static_cast<int64_t>(d.header.number("NBANDS").value_or(0));
  d.sigma = at::empty({nb}, at::kDouble);
  for (int64_t b = 0; b < nb; ++b) {
    d.bands.push_back(d.header.value("BAND" + std::to_string(b + 1)).value_or(""));
    d.sigma[b] = d.header.number("SIGMA" + std::to_string(b + 1)).value_or(0.0);
  }
  return d;
}

} // namespace demix

// The deblending pipeline (pipeline.hpp): noise levels, positions, fit, measurement, catalogue.

#include <demix/core/errors.hpp>
#include <demix/deblend/metrics.hpp>
#include <demix/deblend/pipeline.hpp>
#include <demix/deblend/stamps.hpp>
#include <demix/sim/dataset.hpp>
#include <demix/sim/survey.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace demix {

namespace {

using detail::sizes_text;

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

/// The survey table's noise levels, for blends that carry none.
at::Tensor survey_noise_sigmas(int64_t bands, const std::string& name) {
  const Survey survey = Survey::lsst();
  if (bands != survey.n_bands())
    throw ValueError("no noise levels for the " + std::to_string(bands) + " bands of '" + name +
                     "': it has no SIGMA1..SIGMA" + std::to_string(bands) +
                     " keywords and the survey table (" + survey.name + ") has " +
                     std::to_string(survey.n_bands()) +
                     " bands; give the noise levels or estimate them from the image");
  return survey.noise_sigmas(at::TensorOptions().dtype(at::kDouble));
}

/// The catalogue's band names: the header's, else the survey's for as many bands, else b0, b1...
std::vector<std::string> band_names(std::vector<std::string> from_header, int64_t bands) {
  if (!from_header.empty()) return from_header;
  const Survey survey = Survey::lsst();
  std::vector<std::string> names;
  for (int64_t b = 0; b < bands; ++b)
    names.push_back(bands == survey.n_bands() ? survey.bands[b].name
                                              : std::string("b").append(std::to_string(b)));
  return names;
}

/// The line of `path` that holds row `row` (0-based) of read_csv's table, whose header is the
/// first line that is not blank and which skips blank lines.
int64_t csv_line_of_row(const std::string& path, int64_t row) {
  std::ifstream in(path);
  std::string line;
  int64_t line_no = 0, records = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (records++ == row + 1) return line_no;
  }
  return row + 2;
}

/// Column `c` of a positions catalogue as float64; FormatError at its first non-finite value
/// (its line in a CSV file, else its row).
at::Tensor coordinate(const Column& c, const std::string& path, bool csv) {
  const int64_t rows = c.rows();
  std::vector<double> v(rows);
  if (!c.is_text()) {
    const at::Tensor numbers = c.values.to(at::kDouble).contiguous(); // read_csv: (rows)
    v.assign(numbers.data_ptr<double>(), numbers.data_ptr<double>() + rows);
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (c.is_text()) { // a column read_csv could not read as numbers
      char* end = nullptr;
      v[r] = std::strtod(c.text[r].c_str(), &end);
      if (c.text[r].empty() || *end != '\0') v[r] = NAN;
    }
    if (!std::isfinite(v[r]))
      throw FormatError("'" + path + "' " +
                        (csv ? "line " + std::to_string(csv_line_of_row(path, r))
                             : "row " + std::to_string(r + 1)) +
                        ": '" + (c.is_text() ? c.text[r] : number(v[r])) +
                        "' is not a finite number (column " + c.name + ")");
  }
  return at::tensor(v, at::kDouble);
}

} // namespace

DeblendQuality measure_deblend_quality(const at::Tensor& image, const at::Tensor& residual,
                                       const at::Tensor& stamps, const at::Tensor& origins,
                                       const at::Tensor& positions, const at::Tensor& sigmas) {
  const int64_t G = stamps.size(0), B = image.size(0), H = image.size(1), W = image.size(2);
  const int64_t S = stamps.size(-1);
  const at::Tensor img = image.to(at::kDouble), res = residual.to(at::kDouble);
  const at::Tensor st = stamps.to(at::kDouble), pos = positions.to(at::kDouble);
  const at::Tensor org = origins.to(at::kLong);
  const bool noise = sigmas.defined();
  const at::Tensor sig = noise ? sigmas.to(at::kDouble).view({B, 1, 1}) : at::Tensor();
  const double sigma_sum = noise ? sigmas.to(at::kDouble).square().sum().sqrt().item<double>() : 0;
  DeblendQuality q{at::full({G}, NAN, at::kDouble), at::full({G}, NAN, at::kDouble),
                   at::full({G}, NAN, at::kDouble), at::zeros({G}, at::kLong)};
  for (int64_t g = 0; g < G; ++g) {
    // The stamp's window within the image.
    const int64_t x0 = org[g][0].item<int64_t>(), y0 = org[g][1].item<int64_t>();
    const int64_t ax = std::max<int64_t>(x0, 0), bx = std::min<int64_t>(x0 + S, W);
    const int64_t ay = std::max<int64_t>(y0, 0), by = std::min<int64_t>(y0 + S, H);
    if (ax >= bx || ay >= by) continue;
    const at::Tensor model = st[g].slice(1, ay - y0, by - y0).slice(2, ax - x0, bx - x0);
    const at::Tensor blend = img.slice(1, ay, by).slice(2, ax, bx);
    const at::Tensor resid = res.slice(1, ay, by).slice(2, ax, bx);
    const at::Tensor sum = model.sum(0); // (h, w)
    const double peak = sum.max().item<double>();
    const at::Tensor foot = noise ? sum > sigma_sum : sum > 0.05 * peak;
    const int64_t n = foot.sum().item<int64_t>();
    q.footprint[g] = n;
    if (n > 0) {
      if (noise)
        q.chi2[g] = (resid / sig).square().masked_select(foot.unsqueeze(0).expand_as(resid)).mean();
      const at::Tensor all_models = (blend - resid).sum(0), observed = blend.sum(0);
      q.flux_ratio[g] = all_models.masked_select(foot).sum() / observed.masked_select(foot).sum();
    }
    // Pixels nearer another galaxy than this one (squared distances, pixel centres at integers).
    const at::Tensor xs = at::arange(ax, bx, at::kDouble).view({1, -1});
    const at::Tensor ys = at::arange(ay, by, at::kDouble).view({-1, 1});
    const auto d2 = [&](int64_t h) {
      return (xs - pos[h][0]).square() + (ys - pos[h][1]).square();
    };
    const at::Tensor own = d2(g);
    at::Tensor foreign = at::zeros_like(own, at::kBool);
    for (int64_t h = 0; h < G; ++h)
      if (h != g) foreign = foreign | (d2(h) < own);
    const at::Tensor light = sum.clamp_min(0);
    const double total = light.sum().item<double>();
    if (total > 0) q.foreign_share[g] = light.masked_select(foreign).sum().item<double>() / total;
  }
  return q;
}

at::Tensor read_positions(const std::string& path, const PositionColumns& columns) {
  if (columns.origin != 0 && columns.origin != 1)
    throw ValueError("positions catalogue '" + path + "': origin " +
                     std::to_string(columns.origin) + " (0: 0-based pixels, 1: FITS pixels)");
  const Table t = read_table(path);
  const auto lower = [](std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  };
  const Column *x = nullptr, *y = nullptr;
  std::string names;
  for (const Column& c : t.columns) {
    if (lower(c.name) == lower(columns.x) && !x) x = &c;
    if (lower(c.name) == lower(columns.y) && !y) y = &c;
    names += (names.empty() ? "" : ", ") + c.name;
  }
  if (!x || !y)
    throw FormatError("'" + path + "' has no columns named " + columns.x + " and " + columns.y +
                      " (pixel column and row); its columns: " + names);
  const bool csv = path.size() >= 4 && lower(path.substr(path.size() - 4)) == ".csv";
  return at::stack({coordinate(*x, path, csv), coordinate(*y, path, csv)}, 1) -
         columns.origin; // (G, 2), 0-based
}

DeblendPipeline::DeblendPipeline(const DeblendPipelineOptions& o,
                                 std::shared_ptr<const GalaxyPrior> prior, const Context& context)
    : options_(o), prior_(std::move(prior)), context_(context), detector_(o.detection, context) {
  if (o.stamp_size < 1 || o.stamp_size % 2 == 0)
    throw ValueError("stamp size must be odd and >= 1, got " + std::to_string(o.stamp_size));
  if (o.noise == NoiseLevels::Given && o.noise_sigmas.empty())
    throw ValueError("NoiseLevels::Given needs noise_sigmas, one per band; none was given");
  if (o.noise != NoiseLevels::Given && !o.noise_sigmas.empty())
    throw ValueError("noise_sigmas are given but the noise levels are not NoiseLevels::Given");
  if (o.method == DeblendMethod::Madness) {
    if (!prior_)
      throw ValueError("the MADNESS method needs a galaxy prior (a trained model); none was given");
    madness_.emplace(prior_, o.madness, context);
  }
  if (o.method == DeblendMethod::Classical || o.classical_fallback)
    classical_.emplace(o.classical, context);
  if (!(o.neighbour_share_limit > 0 && o.neighbour_share_limit <= 1))
    throw ValueError("neighbour_share_limit " + std::to_string(o.neighbour_share_limit) +
                     ": must be in (0, 1]");
  if (!(o.chi2_limit > 0))
    throw ValueError("chi2_limit " + std::to_string(o.chi2_limit) + ": must be > 0");
}

void DeblendPipeline::check(const PreparedBlend& p) const {
  check_image(p.image, p.name);
  const int64_t B = p.image.size(0);
  check_noise(p.noise_sigmas, B, p.name);
  check_positions(p.positions, p.image.size(1), p.image.size(2), p.name);
  if (static_cast<int64_t>(p.band_names.size()) != B)
    throw ValueError("blend '" + p.name + "': " + std::to_string(p.band_names.size()) +
                     " band names for its " + std::to_string(B) + " bands");
}

void DeblendPipeline::check_image(const at::Tensor& image, const std::string& name) const {
  if (!image.defined() || image.dim() != 3)
    throw ShapeError("blend '" + name + "': the image must be (B, H, W), got " +
                     (image.defined() ? sizes_text(image) : "none"));
  if (image.is_complex())
    throw ValueError("'" + name + "' holds complex pixels; a blend must be real");
  if (madness_ && prior_->n_bands() != image.size(0))
    throw ValueError("the galaxy model has " + std::to_string(prior_->n_bands()) +
                     " bands, the blend '" + name + "' has " + std::to_string(image.size(0)));
}

void DeblendPipeline::check_noise(const at::Tensor& sigmas, int64_t bands,
                                  const std::string& name) const {
  const std::string what = "blend '" + name + "'";
  if (!sigmas.defined()) {
    if (madness_) throw ValueError(what + ": the MADNESS method needs noise levels");
    return;
  }
  if (sigmas.dim() != 1 || sigmas.size(0) != bands)
    throw ValueError(what + ": " + std::to_string(sigmas.numel()) + " noise levels for its " +
                     std::to_string(bands) + " bands");
  for (int64_t b = 0; b < bands; ++b) {
    const double s = sigmas[b].item<double>();
    if (!(s > 0) || !std::isfinite(s))
      throw ValueError(what + ": the noise level of band " + std::to_string(b + 1) +
                       " must be > 0, got " + number(s));
  }
}

void DeblendPipeline::check_positions(const at::Tensor& xy, int64_t height, int64_t width,
                                      const std::string& name) {
  if (!xy.defined() || xy.dim() != 2 || xy.size(1) != 2)
    throw ShapeError("blend '" + name + "': positions must be (G, 2) (x, y), got " +
                     (xy.defined() ? sizes_text(xy) : "none"));
  if (xy.scalar_type() != at::kDouble || !xy.device().is_cpu())
    throw ValueError("blend '" + name + "': positions must be float64 on the CPU");
  const at::Tensor pixel = nearest_pixel(xy); // (G, 2)
  for (int64_t i = 0; i < xy.size(0); ++i) {
    const double x = xy[i][0].item<double>(), y = xy[i][1].item<double>();
    const int64_t px = pixel[i][0].item<int64_t>(), py = pixel[i][1].item<int64_t>();
    if (!std::isfinite(x) || !std::isfinite(y) || px < 0 || px >= width || py < 0 || py >= height)
      throw ValueError("galaxy " + std::to_string(i) + " at (" + number(x) + ", " + number(y) +
                       ") lies outside the " + std::to_string(width) + " x " +
                       std::to_string(height) + " blend '" + name + "'");
  }
}

PreparedBlend DeblendPipeline::prepare(const Image& blend, const at::Tensor& positions) const {
  PreparedBlend p;
  p.name = blend.source;
  const at::Tensor& data = blend.data;
  if (!data.defined() || data.dim() < 2 || data.dim() > 3)
    throw ShapeError("blend '" + p.name + "': the image must be (B, H, W) or (H, W), got " +
                     (data.defined() ? sizes_text(data) : "none"));
  p.image = data.dim() == 2 ? data.unsqueeze(0) : data;
  check_image(p.image, p.name); // before anything is computed from it
  const int64_t B = p.image.size(0);
  p.band_names = band_names(read_band_names(blend.header, B), B);
  p.header = blend.header;
  const bool detect = !positions.defined();

  // 1. Noise levels.
  switch (options_.noise) {
  case NoiseLevels::Given:
    p.noise_sigmas = at::tensor(options_.noise_sigmas, at::kDouble);
    p.noise_source = NoiseSource::Given;
    break;
  case NoiseLevels::Image:
    p.noise_sigmas = estimate_noise_sigmas(p.image);
    p.noise_source = NoiseSource::Image;
    break;
  case NoiseLevels::Auto:
    if (const auto s = read_noise_sigmas(blend.header, B, p.name); !s.empty()) {
      p.noise_sigmas = at::tensor(s, at::kDouble);
      p.noise_source = NoiseSource::Keywords;
    } else if (madness_ || detect) {
      p.noise_sigmas = survey_noise_sigmas(B, p.name);
      p.noise_source = NoiseSource::SurveyTable;
    }
    break;
  }

  check_noise(p.noise_sigmas, B, p.name);

  // 2. Positions.
  if (detect) {
    const Detections d = detector_.detect(p.image, p.noise_sigmas)[0];
    p.positions = d.xy;
    p.significance = d.significance;
  } else {
    if (positions.is_complex())
      throw ValueError("blend '" + p.name + "': positions must be real (x, y)");
    p.positions = positions.detach().to(at::kCPU, at::kDouble);
  }
  check(p);
  return p;
}

DeblendReport DeblendPipeline::deblend(const PreparedBlend& p) const {
  return std::move(deblend(std::vector<PreparedBlend>{p}).front());
}

std::vector<DeblendReport>
DeblendPipeline::deblend(const std::vector<PreparedBlend>& blends) const {
  for (const PreparedBlend& p : blends) check(p);
  std::vector<DeblendReport> reports(blends.size());
  c10::AutoGradMode no_grad(false); // the MADNESS optimiser turns gradients on where it needs them
  if (madness_) {
    // Blends of one shape and noise levels share one batched fit.
    std::vector<bool> done(blends.size(), false);
    for (std::size_t first = 0; first < blends.size(); ++first) {
      if (done[first]) continue;
      const PreparedBlend& a = blends[first];
      std::vector<std::size_t> group;
      for (std::size_t k = first; k < blends.size(); ++k) {
        const PreparedBlend& b = blends[k];
        if (!done[k] && b.image.sizes() == a.image.sizes() &&
            b.image.scalar_type() == a.image.scalar_type() &&
            at::equal(b.noise_sigmas, a.noise_sigmas))
          group.push_back(k), done[k] = true;
      }
      std::vector<at::Tensor> images, positions;
      for (std::size_t k : group)
        images.push_back(context_.to(blends[k].image)), positions.push_back(blends[k].positions);
      const BlendGalaxies galaxies = BlendGalaxies::from_list(positions);
      const MadnessResult m = madness_->deblend(at::stack(images), galaxies, a.noise_sigmas);
      const at::Tensor first_galaxy = galaxies.first(), counts = galaxies.counts();
      const at::Tensor stamps = m.stamps.cpu(), latents = m.latents.cpu();
      for (std::size_t i = 0; i < group.size(); ++i) {
        DeblendReport& r = reports[group[i]];
        const int64_t g0 = first_galaxy[i].item<int64_t>(), G = counts[i].item<int64_t>();
        r.stamp_size = prior_->stamp_size();
        r.stamps = stamps.narrow(0, g0, G).clone();
        r.latents = latents.narrow(0, g0, G).clone();
        r.residual = m.residuals[static_cast<int64_t>(i)].cpu();
        r.converged = m.converged[static_cast<int64_t>(i)].expand({G}).contiguous();
        r.steps = m.steps[static_cast<int64_t>(i)].item<int64_t>();
        r.loss = m.loss[static_cast<int64_t>(i)].item<double>();
      }
    }
  }
  for (std::size_t k = 0; k < blends.size(); ++k) reports[k] = finish(blends[k], reports[k]);
  return reports;
}

DeblendReport DeblendPipeline::finish(const PreparedBlend& p, DeblendReport r) const {
  r.blend = p;
  const int64_t B = p.image.size(0), H = p.image.size(1), W = p.image.size(2);
  const int64_t G = p.positions.size(0);
  const BlendGalaxies galaxies{p.positions, at::zeros({G}, at::kLong), 1};
  const at::Tensor images = p.image.unsqueeze(0); // (1, B, H, W)
  at::Tensor flux;                                // (G, B)
  if (madness_) {
    if (options_.full_frame)
      r.children = StampPlacer(galaxies, B, H, W, r.stamp_size, at::kCPU).render_each(r.stamps);
    flux = r.stamps.sum({2, 3}); // the whole model, also beyond the image's edges
  } else {
    const ClassicalResult c = classical_->deblend(images, galaxies, p.noise_sigmas);
    r.stamp_size = options_.stamp_size;
    r.children = c.children.cpu();
    r.stamps = c.stamps(r.stamp_size).cpu();
    r.residual = (context_.to(p.image) - c.children.sum(0)).cpu();
    r.converged = at::ones({G}, at::kBool);
    flux = r.children.sum({2, 3}); // the galaxy's share of the image
  }
  r.stamp_origins = nearest_pixel(p.positions) - r.stamp_size / 2;

  // Quality: each model against the blend and its neighbours.
  const DeblendQuality quality = measure_deblend_quality(
      p.image.to(at::kCPU), r.residual, r.stamps, r.stamp_origins, p.positions, p.noise_sigmas);
  const at::Tensor origin = r.stamp_origins;
  const at::Tensor off_edge = (origin.select(1, 0) < 0) | (origin.select(1, 1) < 0) |
                              (origin.select(1, 0) + r.stamp_size > W) |
                              (origin.select(1, 1) + r.stamp_size > H);
  const at::Tensor takes = quality.foreign_share > options_.neighbour_share_limit;
  const at::Tensor poor = quality.chi2 > options_.chi2_limit; // (NaN: false)
  at::Tensor flags = at::logical_not(r.converged).to(at::kLong) * kFlagNotConverged +
                     off_edge.to(at::kLong) * kFlagStampOffEdge +
                     takes.to(at::kLong) * kFlagTakesNeighbourLight +
                     poor.to(at::kLong) * kFlagPoorResidual;
  // The documented fallback: the classical deblender's measurements where MADNESS failed.
  const at::Tensor failed = at::logical_not(r.converged) | takes | poor;
  if (madness_ && options_.classical_fallback && G > 0 && failed.any().item<bool>()) {
    const ClassicalResult c = classical_->deblend(images, galaxies, p.noise_sigmas);
    const at::Tensor children = c.children.cpu();
    const at::Tensor classical_stamps = c.stamps(r.stamp_size).cpu().to(r.stamps.scalar_type());
    const at::Tensor rows = failed.nonzero().flatten();
    flux.index_copy_(0, rows, children.sum({2, 3}).index_select(0, rows).to(flux.scalar_type()));
    r.stamps.index_copy_(0, rows, classical_stamps.index_select(0, rows));
    flags = flags + failed.to(at::kLong) * kFlagClassicalFallback;
  }

  // Measurement and catalogue.
  // The moments give the distortion chi = (a^2 - b^2) / (a^2 + b^2); the catalogue reports the
  // shear convention g = (a - b) / (a + b) = chi / (1 + sqrt(1 - |chi|^2)), the simulator's e1, e2.
  const at::Tensor chi = G > 0 ? measure_shapes(r.stamps.sum(1)).ellipticity.to(at::kDouble)
                               : at::zeros({0, 2}, at::kDouble); // (G, 2)
  const at::Tensor e = chi / (1 + (1 - chi.square().sum(1, true)).clamp_min(0).sqrt());
  Table& t = r.catalogue;
  const std::string flux_unit = p.header.value("BUNIT").value_or("");
  t.add("id", at::arange(G, at::kLong), "", "galaxy index (order of the positions)");
  t.add("x", p.positions.select(1, 0), "pix", "column in the blend, 0-based (FITS pixel: x + 1)");
  t.add("y", p.positions.select(1, 1), "pix", "row in the blend, 0-based (FITS pixel: y + 1)");
  if (const auto sky = pixel_to_sky(p.header, p.positions)) {
    t.add("ra", sky->select(1, 0), "deg", "right ascension, from the blend's WCS");
    t.add("dec", sky->select(1, 1), "deg", "declination, from the blend's WCS");
  }
  const at::Tensor fluxes = flux.to(at::kCPU, at::kDouble);
  flags = flags + (fluxes <= 0).any(1).to(at::kLong) * kFlagNonPositiveFlux;
  for (int64_t b = 0; b < B; ++b)
    t.add("flux_" + p.band_names[b], fluxes.select(1, b), flux_unit,
          "the model's flux in band " + p.band_names[b] +
              (flux_unit.empty() ? ", in the image's units" : ""));
  // AB magnitudes where the header calibrates the band (as demix simulate writes: electrons =
  // EXPTIME * 10^(-0.4 (mag - ZP))); NaN for a flux <= 0.
  for (int64_t b = 0; b < B; ++b) {
    const auto zp = p.header.number("ZP" + std::to_string(b + 1));
    const auto t_exp = p.header.number("EXPTIME" + std::to_string(b + 1));
    if (!zp || !t_exp || !(*t_exp > 0)) continue;
    const at::Tensor f = fluxes.select(1, b);
    t.add("mag_" + p.band_names[b],
          at::where(f > 0, *zp - 2.5 * at::log10(f.clamp_min(1e-300) / *t_exp),
                    at::full({}, NAN, at::kDouble)),
          "mag(AB)", "AB magnitude in band " + p.band_names[b] + " (ZP and EXPTIME keywords)");
  }
  t.add("e1", e.select(1, 0), "",
        "ellipticity of the model's band sum, shear convention (a - b) / (a + b)");
  t.add("e2", e.select(1, 1), "",
        "ellipticity of the model's band sum, shear convention (a - b) / (a + b)");
  t.add("converged", r.converged.to(at::kLong), "", "1: the fit converged");
  t.add("chi2", quality.chi2, "",
        "residual chi^2 per pixel and band in the galaxy's footprint (model above the noise)");
  t.add("flux_ratio", quality.flux_ratio, "",
        "all models' flux / the blend's flux in the galaxy's footprint (band sums)");
  t.add("foreign_share", quality.foreign_share, "",
        "share of the model's light nearer another galaxy's position than its own");
  t.add("flags", flags, "",
        "bits: 1 fit not converged, 2 stamp reaches beyond the image, 4 flux <= 0 in a band, "
        "8 takes a neighbour's light, 16 poor residual (chi2), 32 classical fallback");
  t.meta = {{"ORIGIN", "demix deblend"},
            {"PIXORIG", "0 (x, y 0-based; FITS pixel = x + 1)"},
            {"BLEND", p.name}};
  return r;
}

DeblendReport DeblendPipeline::run(const Image& blend, const at::Tensor& positions) const {
  return deblend(prepare(blend, positions));
}

} // namespace demix

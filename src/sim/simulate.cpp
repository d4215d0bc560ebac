// Isolated and blended galaxy datasets: the simulation (their files: dataset.cpp).

#include <demix/core/errors.hpp>
#include <demix/deblend/stamps.hpp>
#include <demix/sim/simulate.hpp>

#include "sim/detail/random.hpp"

#include <ATen/ATen.h>

#include <cmath>

namespace demix {

namespace {

// Salts separating the random streams drawn from one seed.
constexpr uint64_t kPlacementSalt = 0x9A1E5;
constexpr uint64_t kPopulationSalt = 0x7095;
constexpr uint64_t kNoiseSalt = 0x2015E;

uint64_t stream_seed(uint64_t seed, uint64_t salt) {
  return detail::mix64(seed ^ detail::mix64(salt));
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

// ---- Blends -------------------------------------------------------------------------------------

struct BlendSimulator::State {
  Survey survey;
  BlendOptions options;
  Context context;
  GalaxyRenderer renderer;
  Galaxies galaxies;
  at::Tensor blend_index, offsets, region_side, stamp_origins;
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
  at::Tensor blend = at::empty({total}, at::kLong);
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
    }
  }
  offsets.data_ptr<int64_t>()[o.count] = total;
  const at::Tensor origins = nearest_pixel(at::stack({g.x, g.y}, 1)) - o.stamp_size / 2; // (G, 2)
  state_ = std::make_unique<State>(
      State{survey, o, context, std::move(renderer), std::move(g), blend, offsets,
            at::tensor(at::ArrayRef<double>(side), at::kDouble), origins.contiguous()});
}

BlendSimulator::~BlendSimulator() = default;
int64_t BlendSimulator::size() const { return state_->options.count; }
int64_t BlendSimulator::galaxy_count() const { return state_->galaxies.size(); }
const Galaxies& BlendSimulator::galaxies() const { return state_->galaxies; }
const at::Tensor& BlendSimulator::blend_index() const { return state_->blend_index; }
const at::Tensor& BlendSimulator::offsets() const { return state_->offsets; }
const at::Tensor& BlendSimulator::region_side() const { return state_->region_side; }
const at::Tensor& BlendSimulator::stamp_origins() const { return state_->stamp_origins; }
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
  const auto* origin = s.stamp_origins.data_ptr<int64_t>() + 2 * g0; // (x0, y0) per galaxy
  const auto* blend = s.blend_index.data_ptr<int64_t>() + g0;
  for (int64_t i = 0; i < g1 - g0; ++i) {
    const int64_t x0 = origin[2 * i], y0 = origin[2 * i + 1];
    out.noiseless[blend[i] - first].slice(1, y0, y0 + S).slice(2, x0, x0 + S).add_(out.stamps[i]);
  }
  out.images = s.options.noise ? add_noise(out.noiseless, s.survey, s.options.seed, first,
                                           s.options.source_noise)
                               : out.noiseless;
  return out;
}

} // namespace demix

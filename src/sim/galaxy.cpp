// Bulge + disk galaxies rendered in Fourier space (see galaxy.hpp for the method and its limits).

#include <demix/core/errors.hpp>
#include <demix/deblend/stamps.hpp>
#include <demix/sim/galaxy.hpp>

#include "sim/detail/fourier_grid.hpp"
#include "sim/detail/radial_table.hpp"
#include "sim/detail/special.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <numbers>

namespace demix {

// ---- Sersic profiles ----------------------------------------------------------------------------

double sersic_b(double n) {
  if (!(n >= 0.3 && n <= 10))
    throw ValueError("Sersic index " + std::to_string(n) + " outside [0.3, 10]");
  // Ciotti & Bertin (1999), eq. 18: asymptotic expansion, already ~1e-6 accurate at n = 1.
  double b = 2 * n - 1.0 / 3 + 4 / (405 * n) + 46 / (25515 * n * n) + 131 / (1148175 * n * n * n);
  b = std::max(b, 1e-3);
  // Newton on P(2n, b) - 1/2, whose derivative is b^(2n-1) e^-b / Gamma(2n).
  const double a = 2 * n;
  for (int i = 0; i < 50; ++i) {
    const double f = detail::regularized_gamma_p(a, b) - 0.5;
    const double df = std::exp((a - 1) * std::log(b) - b - std::lgamma(a));
    const double step = f / df;
    b = std::max(b - step, 0.5 * b);
    if (std::abs(step) < 1e-15 * b) break;
  }
  return b;
}

double sersic_enclosed_fraction(double n, double r_over_re) {
  if (!(r_over_re >= 0))
    throw ValueError("enclosed fraction at radius " + std::to_string(r_over_re));
  if (std::isinf(r_over_re)) return 1.0;
  return detail::regularized_gamma_p(2 * n, sersic_b(n) * std::pow(r_over_re, 1 / n));
}

double sersic_transform(double n, double kappa) {
  // exp(-b (r / r_e)^(1/n)) = exp(-(r / r_s)^(1/n)) with r_s = r_e / b^n.
  return detail::sersic_unit_transform(n, kappa / std::pow(sersic_b(n), n));
}

namespace {

/// The de Vaucouleurs transform in cycles per r_e, tabulated once per process (~0.2 s), from
/// kappa = 1e-6 (where it differs from 1 by 2e-10: the flux, k = 0, is exact) to 1e4.
const detail::RadialTable& de_vaucouleurs_table() {
  static const detail::RadialTable table([](double kappa) { return sersic_transform(4, kappa); },
                                         1e-6, 1e4, 48);
  return table;
}

} // namespace

// ---- Galaxies -----------------------------------------------------------------------------------

Galaxies Galaxies::select(const at::Tensor& index) const {
  const at::Tensor i = index.to(at::kCPU, at::kLong);
  return {x.index_select(0, i),        y.index_select(0, i),
          flux.index_select(0, i),     bulge_fraction.index_select(0, i),
          disk_hlr.index_select(0, i), bulge_hlr.index_select(0, i),
          e1.index_select(0, i),       e2.index_select(0, i)};
}

Galaxies Galaxies::concat(const Galaxies& a, const Galaxies& b) {
  if (a.size() == 0) return b;
  if (b.size() == 0) return a;
  return {at::cat({a.x, b.x}),
          at::cat({a.y, b.y}),
          at::cat({a.flux, b.flux}),
          at::cat({a.bulge_fraction, b.bulge_fraction}),
          at::cat({a.disk_hlr, b.disk_hlr}),
          at::cat({a.bulge_hlr, b.bulge_hlr}),
          at::cat({a.e1, b.e1}),
          at::cat({a.e2, b.e2})};
}

void Galaxies::check(int n_bands) const {
  const at::Tensor* fields[] = {&x, &y, &flux, &bulge_fraction, &disk_hlr, &bulge_hlr, &e1, &e2};
  const char* names[] = {"x", "y", "flux", "bulge_fraction", "disk_hlr", "bulge_hlr", "e1", "e2"};
  for (int i = 0; i < 8; ++i)
    if (!fields[i]->defined())
      throw ValueError(std::string("Galaxies: field '") + names[i] + "' is undefined");
  const int64_t n = x.size(0);
  for (int i = 0; i < 8; ++i) {
    const at::Tensor& t = *fields[i];
    const bool per_band = i == 2 || i == 3;
    if (t.dim() != (per_band ? 2 : 1) || t.size(0) != n || (per_band && t.size(1) != n_bands))
      throw ShapeError(std::string("Galaxies: field '") + names[i] + "' must be (" +
                       std::to_string(n) + (per_band ? ", " + std::to_string(n_bands) : "") + ")");
    if (n > 0 && !at::isfinite(t).all().item<bool>())
      throw ValueError(std::string("Galaxies: field '") + names[i] + "' has non-finite values");
  }
  if (n == 0) return;
  if ((flux < 0).any().item<bool>()) throw ValueError("Galaxies: negative flux");
  if ((bulge_fraction < 0).logical_or(bulge_fraction > 1).any().item<bool>())
    throw ValueError("Galaxies: bulge_fraction outside [0, 1]");
  if ((disk_hlr <= 0).logical_or(bulge_hlr <= 0).any().item<bool>())
    throw ValueError("Galaxies: half-light radii must be > 0");
  if ((e1.square() + e2.square() >= 1).any().item<bool>())
    throw ValueError("Galaxies: ellipticity |e| must be < 1");
}

at::Tensor half_light_radius(const Galaxies& g, int band) {
  const int64_t n = g.size();
  if (band < 0 || band >= g.flux.size(1))
    throw ValueError("half_light_radius: band " + std::to_string(band) + " out of range");
  const at::Tensor f = g.bulge_fraction.select(1, band).to(at::kDouble).contiguous();
  const at::Tensor rb = g.bulge_hlr.to(at::kDouble).contiguous();
  const at::Tensor rd = g.disk_hlr.to(at::kDouble).contiguous();
  at::Tensor out = at::empty({n}, at::kDouble);
  const double b1 = sersic_b(1), b4 = sersic_b(4);
  const double *pf = f.data_ptr<double>(), *pb = rb.data_ptr<double>(), *pd = rd.data_ptr<double>();
  double* po = out.data_ptr<double>();
  at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      auto enclosed = [&](double r) {
        return pf[i] * detail::regularized_gamma_p(8, b4 * std::pow(r / pb[i], 0.25)) +
               (1 - pf[i]) * detail::regularized_gamma_p(2, b1 * r / pd[i]);
      };
      // Each component's r_e encloses half its light: the answer lies between them.
      double lo = std::min(pb[i], pd[i]), hi = std::max(pb[i], pd[i]);
      for (int it = 0; it < 60 && hi - lo > 1e-12 * hi; ++it) {
        const double mid = 0.5 * (lo + hi);
        (enclosed(mid) < 0.5 ? lo : hi) = mid;
      }
      po[i] = 0.5 * (lo + hi);
    }
  });
  return out;
}

// ---- Rendering ----------------------------------------------------------------------------------

struct GalaxyRenderer::State {
  Survey survey;
  RenderOptions options;
  Context context;
  detail::RfftGrid grid;
  at::Tensor kx2, kxy, ky2; // (L, L / 2 + 1): kx^2, 2 kx ky, ky^2 in cycles^2 / pixel^2
  at::Tensor kernel;        // (B, L, L / 2 + 1): PSF OTF x pixel sinc per band
  double b1 = 0;
};

GalaxyRenderer::GalaxyRenderer(const Survey& survey, const RenderOptions& options,
                               const Context& context)
    : state_(std::make_unique<State>(State{survey, options, context, {}, {}, {}, {}, {}, 0})) {
  const int64_t S = options.stamp_size;
  if (S < 5 || S % 2 == 0)
    throw ValueError("stamp size must be odd and >= 5, got " + std::to_string(S));
  if (options.batch_size < 1)
    throw ValueError("render batch size must be >= 1, got " + std::to_string(options.batch_size));
  if (survey.n_bands() < 1) throw ValueError("survey '" + survey.name + "' has no bands");
  if (!(survey.pixel_scale_arcsec > 0))
    throw ValueError("survey pixel scale must be > 0, got " +
                     std::to_string(survey.pixel_scale_arcsec));
  auto& s = *state_;
  s.grid = detail::rfft_grid(detail::odd_fft_size(2 * S + 1), context.options());
  std::vector<at::Tensor> kernels;
  for (int b = 0; b < survey.n_bands(); ++b)
    kernels.push_back(detail::psf_pixel_kernel(band_psf(survey, b, options.psf),
                                               survey.pixel_scale_arcsec, s.grid));
  s.kernel = at::stack(kernels);
  s.kx2 = s.grid.kx.square().expand({s.grid.size, -1}).contiguous();
  s.ky2 = s.grid.ky.square().expand({-1, s.grid.kx.size(1)}).contiguous();
  s.kxy = (2 * s.grid.kx * s.grid.ky).contiguous();
  s.b1 = sersic_b(1);
  (void)de_vaucouleurs_table(); // build it now rather than inside the first render
}

GalaxyRenderer::~GalaxyRenderer() = default;
GalaxyRenderer::GalaxyRenderer(GalaxyRenderer&&) noexcept = default;
GalaxyRenderer& GalaxyRenderer::operator=(GalaxyRenderer&&) noexcept = default;

const Survey& GalaxyRenderer::survey() const { return state_->survey; }
const RenderOptions& GalaxyRenderer::options() const { return state_->options; }

at::Tensor GalaxyRenderer::psf_images() const {
  const auto& s = *state_;
  return survey_psf_images(s.survey, s.options.psf, s.options.stamp_size, s.context.options());
}

at::Tensor GalaxyRenderer::render(const Galaxies& galaxies) const {
  const auto& s = *state_;
  const int B = s.survey.n_bands();
  galaxies.check(B);
  const int64_t S = s.options.stamp_size, L = s.grid.size, n = galaxies.size();
  const auto opts = s.context.options();
  if (n == 0) return at::zeros({0, B, S, S}, opts);
  const double pixel = s.survey.pixel_scale_arcsec;
  const auto& table = de_vaucouleurs_table();
  std::vector<at::Tensor> out;
  for (int64_t i0 = 0; i0 < n; i0 += s.options.batch_size) {
    const int64_t i1 = std::min(n, i0 + s.options.batch_size), m = i1 - i0;
    auto get = [&](const at::Tensor& t) { return t.slice(0, i0, i1).to(opts); };
    const at::Tensor flux = get(galaxies.flux).view({m, B, 1, 1});
    const at::Tensor fb = get(galaxies.bulge_fraction).view({m, B, 1, 1});
    const at::Tensor rd = get(galaxies.disk_hlr).view({m, 1, 1}) / pixel;
    const at::Tensor rb = get(galaxies.bulge_hlr).view({m, 1, 1}) / pixel;
    const at::Tensor e1 = get(galaxies.e1).view({m, 1, 1}), e2 = get(galaxies.e2).view({m, 1, 1});
    // Profile transforms at |A k|, A the area-preserving shear matrix (symmetric), from
    // |A k|^2 = k^T A^2 k with A^2 = [[(1 + e1)^2 + e2^2, 2 e2], [2 e2, (1 - e1)^2 + e2^2]] / (1 -
    // |e|^2).
    const at::Tensor inv = 1 / (1 - e1.square() - e2.square());
    const at::Tensor c11 = ((1 + e1).square() + e2.square()) * inv;
    const at::Tensor c22 = ((1 - e1).square() + e2.square()) * inv;
    const at::Tensor c12 = 2 * e2 * inv;
    const at::Tensor q2 = c11 * s.kx2 + c12 * s.kxy + c22 * s.ky2; // (m, L, L/2+1) cycles^2/px^2
    // Exponential disk: (1 + (2 pi k r_s)^2)^-3/2 with scale length r_s = r_e / b_1.
    const at::Tensor disk = (1 + (2 * std::numbers::pi / s.b1 * rd).square() * q2).pow(-1.5);
    // de Vaucouleurs bulge: the table at log(r_e |A k|).
    const at::Tensor bulge = table.from_log_kappa(0.5 * q2.clamp_min(1e-30).log() + rb.log());
    // Centre: the galaxy's offset from its nearest pixel, about the stamp's centre pixel. The
    // offset is taken in float64, as the stamp is placed: rounded first to a float32 context,
    // a position just below a half-integer could round onto it and pick the next pixel.
    const double c = static_cast<double>(S / 2);
    auto centre = [&](const at::Tensor& v) {
      const at::Tensor part = v.slice(0, i0, i1);
      return (part - nearest_pixel(part)).to(opts) + c;
    };
    const at::Tensor cx = centre(galaxies.x), cy = centre(galaxies.y);
    const at::Tensor phase = detail::shift_phase(s.grid, cx, cy);       // (m, L, L/2+1) complex
    const at::Tensor gb = at::view_as_real(phase * bulge).unsqueeze(1); // (m, 1, L, L/2+1, 2)
    const at::Tensor gd = at::view_as_real(phase * disk).unsqueeze(1);
    const at::Tensor k = s.kernel.unsqueeze(0);
    const at::Tensor spectrum = at::view_as_complex(
        ((flux * fb * k).unsqueeze(-1) * gb + (flux * (1 - fb) * k).unsqueeze(-1) * gd)
            .contiguous());
    const at::Tensor image = at::fft_irfft2(spectrum, c10::IntArrayRef{L, L});
    out.push_back(image.slice(2, 0, S).slice(3, 0, S).contiguous());
  }
  return out.size() == 1 ? out[0] : at::cat(out);
}

} // namespace demix

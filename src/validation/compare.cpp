#include <demix/core/errors.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/validation/compare.hpp>
#include <demix/viz/chart.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace demix {

using detail::sizes_text;

const MeasureCurve& ValidationReport::curve(const std::string& name) const {
  std::string names;
  for (const MeasureCurve& c : curves) {
    if (c.name == name) return c;
    names += (names.empty() ? "" : ", ") + c.name;
  }
  throw ValueError("validation report: no curve '" + name + "' (it has " + names + ")");
}

namespace {

void check(const ValidationOptions& o) {
  const auto require = [](bool ok, const char* field, double v, const char* allowed) {
    if (!ok)
      throw ValueError(std::string("ValidationOptions.") + field + " = " + std::to_string(v) +
                       ": must be " + allowed);
  };
  require(o.spectrum_bins >= 2, "spectrum_bins", o.spectrum_bins, ">= 2");
  require(o.pdf_bins >= 4, "pdf_bins", o.pdf_bins, ">= 4");
  require(o.thresholds >= 2, "thresholds", o.thresholds, ">= 2");
  require(o.threshold_max > o.threshold_min, "threshold_max", o.threshold_max, "> threshold_min");
  require(o.bispectrum_bins >= 2, "bispectrum_bins", o.bispectrum_bins, ">= 2");
  require(o.peak_bins >= 1, "peak_bins", o.peak_bins, ">= 1");
  require(o.peak_max > o.peak_min, "peak_max", o.peak_max, "> peak_min");
}

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

/// A curve from per-map values (T, n) and (S, n); `relative`: deviations over |target mean| at
/// each compared point, else over the largest |target mean| of the curve.
MeasureCurve make_curve(std::string name, std::string x_label, std::string y_label,
                        const at::Tensor& x, const at::Tensor& t, const at::Tensor& s,
                        bool relative, const at::Tensor& compared = {}) {
  MeasureCurve c;
  c.name = std::move(name), c.x_label = std::move(x_label), c.y_label = std::move(y_label);
  c.x = to_vector(x);
  const auto spread = [](const at::Tensor& v) {
    return v.size(0) > 1 ? v.std(0) : at::zeros({v.size(1)}, v.options());
  };
  const at::Tensor tm = t.mean(0), sm = s.mean(0);
  c.target_mean = to_vector(tm), c.sample_mean = to_vector(sm);
  c.target_std = to_vector(spread(t)), c.sample_std = to_vector(spread(s));
  const at::Tensor use = compared.defined() ? compared : at::ones({tm.size(0)}, at::kBool);
  for (int64_t i = 0; i < use.size(0); ++i) c.compared.push_back(use[i].item<bool>());
  const at::Tensor scale = relative ? tm.abs() : tm.abs().max().expand_as(tm);
  const at::Tensor dev = ((sm - tm).abs() / scale.clamp_min(1e-300)).masked_select(use);
  c.max_deviation = dev.numel() ? dev.max().item<double>() : 0.0;
  return c;
}

/// Minkowski functionals of {u >= nu} per map: (N) each, periodic square lattice.
std::tuple<at::Tensor, at::Tensor, at::Tensor> minkowski(const at::Tensor& u, double nu) {
  const at::Tensor m = u >= nu; // (N, H, W)
  const at::Tensor mx = m.roll(-1, 2), my = m.roll(-1, 1), mxy = mx.roll(-1, 1);
  const double pixels = static_cast<double>(u.size(1) * u.size(2));
  const auto count = [&](const at::Tensor& b) { return b.sum({1, 2}).to(at::kDouble); };
  const at::Tensor faces = count(m);
  const at::Tensor boundary = count(m != mx) + count(m != my);
  const at::Tensor edges = count(m | mx) + count(m | my);
  const at::Tensor vertices = count(m | mx | my | mxy);
  return {faces / pixels, boundary / pixels, (vertices - edges + faces) / pixels};
}

/// Skewness and excess kurtosis of each map: (N) each.
std::pair<at::Tensor, at::Tensor> shape_moments(const at::Tensor& u /* (N, P) */) {
  const at::Tensor z = (u - u.mean(1, true)) / u.std(1, false, true);
  return {z.pow(3).mean(1), z.pow(4).mean(1) - 3};
}

double ks_distance(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor sa = std::get<0>(a.flatten().sort()), sb = std::get<0>(b.flatten().sort());
  const at::Tensor v = at::cat({sa, sb});
  const at::Tensor fa = at::searchsorted(sa, v, false, true).to(at::kDouble) / sa.numel();
  const at::Tensor fb = at::searchsorted(sb, v, false, true).to(at::kDouble) / sb.numel();
  return (fa - fb).abs().max().item<double>();
}

/// Reduced binned bispectra by FFT shells (compare.hpp): the shells and their triangle counts are
/// built once; each set of maps is filtered into the shells once for all configurations.
class Bispectrum {
public:
  using Configs = std::vector<std::array<int, 3>>; // shell indices (b1, b2, b3)

  Bispectrum(int64_t H, int64_t W, double dk, int shells) : pixels_(static_cast<double>(H * W)) {
    const at::Tensor ky = at::fft_fftfreq(H, 1.0, at::kDouble).view({-1, 1});
    const at::Tensor kx = at::fft_fftfreq(W, 1.0, at::kDouble).view({1, -1});
    const at::Tensor kmod = (ky.square() + kx.square()).sqrt();
    for (int b = 0; b < shells; ++b) {
      shells_.push_back(((kmod >= (b + 0.5) * dk) & (kmod < (b + 1.5) * dk)).to(at::kDouble));
      J_.push_back(at::real(at::fft_ifft2(shells_.back().to(at::kComplexDouble)))); // (H, W)
    }
  }

  /// Per map (N, n_i) reduced bispectra Q for each list of configurations, of maps u (N, H, W).
  std::vector<at::Tensor> operator()(const at::Tensor& u, const std::vector<Configs>& lists) const {
    const at::Tensor xh = at::fft_fft2(u - u.mean({1, 2}, true));
    const at::Tensor power = xh.abs().square() / pixels_; // (N, H, W)
    std::vector<at::Tensor> I, P; // per shell: (N, H, W) field, (N) mean power
    for (const at::Tensor& shell : shells_) {
      I.push_back(at::real(at::fft_ifft2(xh * shell)));
      P.push_back((power * shell).sum({1, 2}) / shell.sum());
    }
    std::vector<at::Tensor> out;
    for (const Configs& configs : lists) {
      std::vector<at::Tensor> columns;
      for (const auto& [a, b, c] : configs) {
        const at::Tensor B =
            (I[a] * I[b] * I[c]).sum({1, 2}) / (J_[a] * J_[b] * J_[c]).sum() / pixels_;
        columns.push_back(B / (P[a] * P[b] + P[b] * P[c] + P[c] * P[a]));
      }
      out.push_back(at::stack(columns, 1));
    }
    return out;
  }

private:
  std::vector<at::Tensor> shells_, J_; // (H, W) each
  double pixels_;
};

} // namespace

ValidationReport validate_maps(const at::Tensor& targets_in, const at::Tensor& samples_in,
                               const ValidationOptions& o) {
  check(o);
  for (const auto* t : {&targets_in, &samples_in})
    if (!t->defined() || t->dim() != 3 || t->size(1) < 16 || t->size(2) < 16 || t->is_complex())
      throw ShapeError("validation: maps must be real (N, H, W) with H, W >= 16, got " +
                       (t->defined() ? sizes_text(*t) : std::string("nothing")));
  if (targets_in.sizes().slice(1) != samples_in.sizes().slice(1))
    throw ShapeError("validation: targets " + sizes_text(targets_in) + " and samples " +
                     sizes_text(samples_in) + " differ in size");
  const at::Tensor t = targets_in.detach().to(at::kCPU, at::kDouble);
  const at::Tensor s = samples_in.detach().to(at::kCPU, at::kDouble);
  for (const auto& [what, m] : {std::pair{"targets", t}, std::pair{"samples", s}})
    if (!at::isfinite(m).all().item<bool>())
      throw ValueError(std::string("validation: the ") + what + " hold NaN or infinite pixels");

  ValidationReport r;
  r.target_maps = t.size(0), r.sample_maps = s.size(0), r.height = t.size(1), r.width = t.size(2);
  r.mu = t.mean().item<double>();
  r.sigma = t.std(false).item<double>();
  if (!(r.sigma > 0)) throw ValueError("validation: the targets are constant");
  const at::Tensor ut = (t - r.mu) / r.sigma, us = (s - r.mu) / r.sigma;
  const int64_t H = r.height, W = r.width;

  // Power spectrum of the maps themselves.
  const Context cpu({.device = DeviceKind::Cpu, .precision = Precision::Float64});
  // Log bins; fewer than asked where small maps leave the lowest bins without a mode.
  std::unique_ptr<PowerSpectrumOperator> ps_op;
  for (int bins = o.spectrum_bins; !ps_op; --bins) {
    try {
      ps_op = std::make_unique<PowerSpectrumOperator>(
          PowerSpectrumOptions{.bins = bins, .binning = PsBinning::Log}, Grid2d{H, W}, cpu);
    } catch (const ValueError&) {
      if (bins <= 2) throw;
    }
  }
  const PowerSpectrumOperator& ps = *ps_op;
  r.curves.push_back(make_curve("power_spectrum", "k (cycles / pixel)", "P(k)", ps.bin_centres(),
                                ps.forward(t).values, ps.forward(s).values, true,
                                ps.counts() >= 100)); // well sampled
  r.curves.back().log_x = r.curves.back().log_y = true;

  // One-point PDF and moments of u.
  const double lo = ut.min().item<double>(), hi = ut.max().item<double>();
  const double width = (hi - lo) / o.pdf_bins;
  const auto histogram = [&](const at::Tensor& u) {
    std::vector<at::Tensor> h;
    for (int64_t i = 0; i < u.size(0); ++i)
      h.push_back(at::histc(u[i], o.pdf_bins, lo, hi) / (static_cast<double>(H * W) * width));
    return at::stack(h);
  };
  const at::Tensor centres = lo + (at::arange(o.pdf_bins, at::kDouble) + 0.5) * width;
  r.curves.push_back(make_curve("pdf", "u = (x - mu_T) / sigma_T", "density", centres,
                                histogram(ut), histogram(us), false));
  r.curves.back().log_y = true;
  const auto summary = [](const at::Tensor& a, const at::Tensor& b) {
    const auto sd = [](const at::Tensor& v) {
      return v.numel() > 1 ? v.std().item<double>() : 0.0;
    };
    return MomentSummary{a.mean().item<double>(), sd(a), b.mean().item<double>(), sd(b)};
  };
  const at::Tensor ft = ut.flatten(1), fs = us.flatten(1);
  r.mean = summary(ft.mean(1), fs.mean(1));
  r.std = summary(ft.std(1, false), fs.std(1, false));
  const auto [skt, kut] = shape_moments(ft);
  const auto [sks, kus] = shape_moments(fs);
  r.skewness = summary(skt, sks), r.kurtosis = summary(kut, kus);
  r.ks_distance = ks_distance(ut, us);

  // Minkowski functionals.
  const at::Tensor nu = at::linspace(o.threshold_min, o.threshold_max, o.thresholds, at::kDouble);
  std::vector<at::Tensor> v[2][3];
  for (int64_t i = 0; i < nu.numel(); ++i) {
    const double n = nu[i].item<double>();
    const auto [a0, a1, a2] = minkowski(ut, n);
    const auto [b0, b1, b2] = minkowski(us, n);
    v[0][0].push_back(a0), v[0][1].push_back(a1), v[0][2].push_back(a2);
    v[1][0].push_back(b0), v[1][1].push_back(b1), v[1][2].push_back(b2);
  }
  const char* names[3] = {"minkowski_v0", "minkowski_v1", "minkowski_v2"};
  const char* labels[3] = {"area fraction V0", "boundary per pixel V1",
                           "Euler characteristic per pixel V2"};
  for (int f = 0; f < 3; ++f)
    r.curves.push_back(make_curve(names[f], "threshold nu (sigma_T)", labels[f], nu,
                                  at::stack(v[0][f], 1), at::stack(v[1][f], 1), false));

  // Bispectrum: shells of width dk centred on (b + 1) dk, dk = 1 / (4 bins).
  const double dk = 0.25 / o.bispectrum_bins;
  const int shells = static_cast<int>(std::floor(0.5 / dk)) - 1;
  Bispectrum::Configs equilateral, folded;
  std::vector<double> k_eq, k_fold;
  for (int b = 0; b < o.bispectrum_bins; ++b) {
    equilateral.push_back({b, b, b}), k_eq.push_back((b + 1) * dk);
    if (2 * b + 1 < shells) folded.push_back({b, b, 2 * b + 1}), k_fold.push_back((b + 1) * dk);
  }
  const Bispectrum bispectrum(H, W, dk, shells);
  const std::vector<at::Tensor> bt = bispectrum(ut, {equilateral, folded});
  const std::vector<at::Tensor> bs = bispectrum(us, {equilateral, folded});
  const auto k_tensor = [](const std::vector<double>& k) { return at::tensor(k, at::kDouble); };
  r.curves.push_back(make_curve("bispectrum_equilateral", "k1 = k2 = k3 (cycles / pixel)",
                                "Q(k, k, k), reduced", k_tensor(k_eq), bt[0], bs[0], false));
  r.curves.push_back(make_curve("bispectrum_folded", "k1 = k2 = k3 / 2 (cycles / pixel)",
                                "Q(k, k, 2k), reduced", k_tensor(k_fold), bt[1], bs[1], false));

  // Peak counts.
  const auto peaks = [&](const at::Tensor& u) {
    at::Tensor is_peak = at::ones_like(u, at::kBool);
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx)
        if (dy || dx) is_peak = is_peak & (u > u.roll({dy, dx}, {1, 2}));
    std::vector<at::Tensor> h;
    for (int64_t i = 0; i < u.size(0); ++i)
      h.push_back(at::histc(u[i].masked_select(is_peak[i]), o.peak_bins, o.peak_min, o.peak_max));
    return at::stack(h);
  };
  const double pw = (o.peak_max - o.peak_min) / o.peak_bins;
  r.curves.push_back(make_curve("peak_counts", "peak height (sigma_T)", "peaks per map",
                                o.peak_min + (at::arange(o.peak_bins, at::kDouble) + 0.5) * pw,
                                peaks(ut), peaks(us), false));
  return r;
}

namespace {

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string numbers(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + number(v[i]);
  return s + "]";
}

std::string moments(const MomentSummary& m) {
  return "{\"target_mean\": " + number(m.target_mean) +
         ", \"target_std\": " + number(m.target_std) +
         ", \"sample_mean\": " + number(m.sample_mean) +
         ", \"sample_std\": " + number(m.sample_std) + "}";
}

} // namespace

std::string validation_json(const ValidationReport& r) {
  std::ostringstream s;
  s << "{\n  \"target_maps\": " << r.target_maps << ", \"sample_maps\": " << r.sample_maps
    << ", \"height\": " << r.height << ", \"width\": " << r.width
    << ",\n  \"mu_T\": " << number(r.mu) << ", \"sigma_T\": " << number(r.sigma)
    << ",\n  \"mean\": " << moments(r.mean) << ",\n  \"std\": " << moments(r.std)
    << ",\n  \"skewness\": " << moments(r.skewness)
    << ",\n  \"excess_kurtosis\": " << moments(r.kurtosis)
    << ",\n  \"ks_distance\": " << number(r.ks_distance) << ",\n  \"curves\": {";
  for (std::size_t i = 0; i < r.curves.size(); ++i) {
    const MeasureCurve& c = r.curves[i];
    std::string compared = "[";
    for (std::size_t k = 0; k < c.compared.size(); ++k)
      compared += std::string(k ? ", " : "") + (c.compared[k] ? "true" : "false");
    s << (i ? "," : "") << "\n    \"" << c.name
      << "\": {\"max_deviation\": " << number(c.max_deviation) << ", \"x_label\": \"" << c.x_label
      << "\", \"x\": " << numbers(c.x) << ",\n      \"target_mean\": " << numbers(c.target_mean)
      << ",\n      \"target_std\": " << numbers(c.target_std)
      << ",\n      \"sample_mean\": " << numbers(c.sample_mean)
      << ",\n      \"sample_std\": " << numbers(c.sample_std)
      << ",\n      \"compared\": " << compared << "]}";
  }
  s << "\n  }\n}\n";
  return s.str();
}

void write_validation_figure(const std::string& path, const ValidationReport& r,
                             const std::string& title) {
  const Rgb blue{31, 119, 180}, orange{255, 127, 14};
  std::vector<ChartPanel> panels;
  for (const MeasureCurve& c : r.curves) {
    ChartPanel p;
    p.title = c.name + " (max dev " + number(c.max_deviation).substr(0, 6) + ")";
    p.x_label = c.x_label, p.y_label = c.y_label, p.log_x = c.log_x, p.log_y = c.log_y;
    const auto band = [](const std::vector<double>& m, const std::vector<double>& sd, int sign) {
      std::vector<double> out(m.size());
      for (std::size_t i = 0; i < m.size(); ++i) out[i] = m[i] + sign * sd[i];
      return out;
    };
    p.series.push_back(
        {"targets (" + std::to_string(r.target_maps) + ")", c.x, c.target_mean,
         r.target_maps > 1 ? band(c.target_mean, c.target_std, -1) : std::vector<double>{},
         r.target_maps > 1 ? band(c.target_mean, c.target_std, 1) : std::vector<double>{}, blue,
         false, true});
    p.series.push_back({"samples (" + std::to_string(r.sample_maps) + ", mean +- std)", c.x,
                        c.sample_mean, band(c.sample_mean, c.sample_std, -1),
                        band(c.sample_mean, c.sample_std, 1), orange, true, false});
    if (!c.log_y) p.reference_y = 0;
    panels.push_back(std::move(p));
  }
  write_chart_png(path, panels,
                  {.columns = 4, .panel_width = 440, .panel_height = 330, .title = title});
}

} // namespace demix

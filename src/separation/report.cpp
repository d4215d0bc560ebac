#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/separation/report.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/viz/chart.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace demix {

namespace {

std::vector<double> values(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

} // namespace

void write_separation_figure(const std::string& path, const SeparationFigureMaps& maps,
                             const std::string& title, int bins) {
  const at::Tensor& d = maps.observation;
  if (!d.defined() || d.dim() != 2)
    throw ShapeError("separation figure: the observation must be (H, W), got " +
                     (d.defined() ? detail::sizes_text(d) : std::string("nothing")));
  const auto check = [&](const at::Tensor& t, const char* what, bool cube) {
    if (!t.defined()) return;
    if ((cube ? t.dim() != 3 || t.sizes().slice(1) != d.sizes() : t.sizes() != d.sizes()))
      throw ShapeError(std::string("separation figure: the ") + what + " is " +
                       detail::sizes_text(t) + ", the observation " + detail::sizes_text(d));
  };
  check(maps.estimate, "estimate", false);
  check(maps.wiener, "Wiener map", false);
  check(maps.realizations, "realizations", true);
  check(maps.truth, "truth", false);
  const Context cpu({.device = DeviceKind::Cpu, .precision = Precision::Float64});
  // Small maps have too few low-k modes for many log bins: fewer bins until none is empty.
  std::unique_ptr<PowerSpectrumOperator> op;
  for (int b = bins; !op; --b) {
    try {
      op = std::make_unique<PowerSpectrumOperator>(
          PowerSpectrumOptions{.bins = b, .binning = PsBinning::Log}, Grid2d{d.size(0), d.size(1)},
          cpu);
    } catch (const ValueError&) {
      if (b <= 2) throw;
    }
  }
  const PowerSpectrumOperator& ps = *op;
  const auto spectrum = [&](const at::Tensor& x) { // (H, W) or (M, H, W): mean over maps
    const at::Tensor m = x.to(at::kCPU, at::kDouble);
    return ps.forward(m.dim() == 2 ? m.unsqueeze(0) : m).values.mean(0);
  };
  const std::vector<double> k = values(ps.bin_centres());
  const auto series = [&](const std::string& label, const at::Tensor& y, Rgb colour,
                          bool dashed = false) {
    return ChartSeries{label, k, values(y), {}, {}, colour, dashed, true};
  };
  const Rgb blue{31, 119, 180}, orange{255, 127, 14}, green{44, 160, 44}, grey{127, 127, 127},
      black{0, 0, 0}, red{214, 39, 40};
  // Each map's spectrum once: both panels use them.
  const auto spectrum_of = [&](const at::Tensor& x) {
    return x.defined() ? spectrum(x) : at::Tensor();
  };
  const at::Tensor Pc = spectrum_of(maps.realizations), Pe = spectrum_of(maps.estimate),
                   Pw = spectrum_of(maps.wiener), Ps = spectrum_of(maps.truth);
  ChartPanel spectra{
      "Power spectra", "|k| (cycles per pixel)", "P(k) (map units^2)", true, true, {}};
  spectra.series.push_back(series("observation d", spectrum(d), grey));
  if (Pc.defined()) spectra.series.push_back(series("contamination (realizations)", Pc, red, true));
  if (Pe.defined()) {
    spectra.series.push_back(series("separated s~", Pe, blue));
    spectra.series.push_back(series("residual d - s~", spectrum(d - maps.estimate), orange, true));
  }
  if (Pw.defined()) spectra.series.push_back(series("Wiener", Pw, green));
  if (Ps.defined()) spectra.series.push_back(series("truth s", Ps, black));
  std::vector<ChartPanel> panels{spectra};
  if (Ps.defined()) {
    const at::Tensor s = maps.truth.to(at::kCPU, at::kDouble).unsqueeze(0);
    const auto r = [&](const at::Tensor& x, const at::Tensor& Px) { // x's r(k) with the truth
      const at::Tensor m = x.to(at::kCPU, at::kDouble).unsqueeze(0);
      return ps.forward_cross(m, s).values[0] / (Px * Ps).sqrt();
    };
    ChartPanel corr{
        "Correlation with the truth", "|k| (cycles per pixel)", "r(k)", true, false, {}};
    if (Pe.defined()) corr.series.push_back(series("separated s~", r(maps.estimate, Pe), blue));
    if (Pw.defined()) corr.series.push_back(series("Wiener", r(maps.wiener, Pw), green));
    if (Pc.defined())
      corr.series.push_back(
          series("linear bound sqrt(P_s / (P_s + P_c))", (Ps / (Ps + Pc)).sqrt(), black, true));
    corr.reference_y = 1;
    panels.push_back(corr);
  }
  write_chart_png(path, panels, {.columns = static_cast<int>(panels.size()), .title = title});
}

} // namespace demix

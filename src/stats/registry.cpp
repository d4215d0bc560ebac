#include <demix/core/errors.hpp>
#include <demix/stats/registry.hpp>

#include <algorithm>
#include <string>

namespace demix {

namespace {

template <class... F> struct Overloaded : F... { using F::operator()...; };
template <class... F> Overloaded(F...) -> Overloaded<F...>;

/// floor(log2(n)) for n >= 1.
int floor_log2(int64_t n) {
  int j = 0;
  while ((int64_t{2} << j) <= n) ++j;
  return j;
}

} // namespace

const std::vector<StatisticInfo>& statistic_registry() {
  // kind, name, description, scales, shifts, norm, cross, complex, nonperiodic, max default J,
  // default L, 2^J < min(H, W)
  static const std::vector<StatisticInfo> table{
      {StatisticKind::Wph, "wph", "wavelet phase harmonics (pywph's default model)", true, true,
       true, true, true, true, 7, 4, true},
      {StatisticKind::Wst, "wst", "wavelet scattering transform, spatial means (kymatio)", true,
       false, false, false, false, true, 5, 8, false},
      {StatisticKind::ScatteringCov, "scov", "scattering covariance (Cheng et al.)", true, false,
       true, false, false, false, 7, 4, false},
      {StatisticKind::PowerSpectrum, "ps", "isotropic power spectrum", false, false, false, true,
       true, false, 0, 0, false},
  };
  return table;
}

const StatisticInfo& statistic_info(StatisticKind kind) {
  return statistic_registry().at(static_cast<std::size_t>(kind));
}

const StatisticInfo& statistic_info(std::string_view name) {
  std::string names;
  for (const StatisticInfo& info : statistic_registry()) {
    if (info.name == name) return info;
    names += (names.empty() ? "" : ", ") + std::string(info.name);
  }
  throw ValueError("no statistic named '" + std::string(name) + "'; statistics: " + names);
}

StatisticKind kind_of(const StatisticSpec& spec) {
  return std::visit(
      Overloaded{[](const WphOptions&) { return StatisticKind::Wph; },
                 [](const WstOptions&) { return StatisticKind::Wst; },
                 [](const ScatteringCovOptions&) { return StatisticKind::ScatteringCov; },
                 [](const PowerSpectrumOptions&) { return StatisticKind::PowerSpectrum; }},
      spec);
}

std::unique_ptr<Statistic> make_statistic(const StatisticSpec& spec, const Grid& grid,
                                          const Context& context) {
  const Grid2d& plane = std::get<Grid2d>(grid); // a HEALPix grid will need its own operators
  return std::visit(
      [&](const auto& options) -> std::unique_ptr<Statistic> {
        using O = std::decay_t<decltype(options)>;
        if constexpr (std::is_same_v<O, WphOptions>)
          return std::make_unique<WphOperator>(options, plane, context);
        else if constexpr (std::is_same_v<O, WstOptions>)
          return std::make_unique<WstOperator>(options, plane, context);
        else if constexpr (std::is_same_v<O, ScatteringCovOptions>)
          return std::make_unique<ScatteringCovOperator>(options, plane, context);
        else
          return std::make_unique<PowerSpectrumOperator>(options, plane, context);
      },
      spec);
}

int default_J(StatisticKind kind, const Grid2d& grid) {
  const StatisticInfo& info = statistic_info(kind);
  if (!info.takes_scales) return 0;
  const int64_t side = std::min(grid.height, grid.width);
  return std::max(1, std::min(info.max_default_J, floor_log2(side) - 2));
}

int largest_J(StatisticKind kind, const Grid2d& grid) {
  const StatisticInfo& info = statistic_info(kind);
  if (!info.takes_scales) return 0;
  const int64_t side = std::min(grid.height, grid.width);
  return info.J_below_side ? floor_log2(side - 1) : floor_log2(side);
}

StatisticSpec resolve(const CommonOptions& o, const Grid2d& grid) {
  const StatisticInfo& info = statistic_info(o.kind);
  const std::string who = std::string("statistic '") + info.name + "': ";
  if (!info.takes_scales && (o.J || o.L))
    throw ValueError(who + "J and L do not apply (it has no scales)");
  if (!info.takes_shifts && o.dn) throw ValueError(who + "dn applies to wph only");
  if (!info.takes_norm && o.norm != CommonNorm::Default)
    throw ValueError(who + "takes no normalisation");
  if (!info.supports_nonperiodic && grid.boundary != Boundary::Periodic)
    throw ValueError(who + "supports only periodic boundaries");
  if (!info.supports_complex && o.complex_data) throw ValueError(who + "takes real maps only");
  const int J = o.J.value_or(default_J(o.kind, grid));
  const int L = o.L.value_or(info.default_L);
  if (info.takes_scales && (J < 1 || J > largest_J(o.kind, grid)))
    throw ValueError(who + "J = " + std::to_string(J) + " is out of range for a " +
                     to_string(grid) + " map: J >= 1 and 2^J " + (info.J_below_side ? "<" : "<=") +
                     " min(H, W), so J <= " + std::to_string(largest_J(o.kind, grid)));
  if (info.takes_scales && L < 1)
    throw ValueError(who + "L = " + std::to_string(L) + ": must be >= 1");
  const bool automatic = o.norm == CommonNorm::Auto ||
                         (o.norm == CommonNorm::Default && o.kind == StatisticKind::ScatteringCov);
  switch (o.kind) {
  case StatisticKind::Wph: {
    WphOptions w{.J = J, .L = L, .dn = o.dn.value_or(2)};
    if (w.dn < 0) throw ValueError(who + "dn = " + std::to_string(w.dn) + ": must be >= 0");
    w.complex_data = o.complex_data;
    w.norm = automatic ? WphNorm::Auto : WphNorm::None;
    return w;
  }
  case StatisticKind::Wst: return WstOptions{.J = J, .L = L};
  case StatisticKind::ScatteringCov: {
    ScatteringCovOptions s{.J = J, .L = L};
    s.normalization = automatic ? ScovNormalization::P00 : ScovNormalization::None;
    return s;
  }
  case StatisticKind::PowerSpectrum: return PowerSpectrumOptions{};
  }
  throw ValueError(who + "unknown kind");
}

} // namespace demix

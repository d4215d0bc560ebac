#pragma once
// Every statistic demix has, in one table: build one from its options and a grid, look one up by
// name, and resolve the common options of the command line and the Python package (-J, -L, --dn,
// --norm) with each statistic's defaults. The CLI, synthesis, separation and the bindings all go
// through here. Adding a statistic: its options struct in StatisticSpec, one row of the table and
// one case of make_statistic (src/stats/registry.cpp).

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/stats/scattering_cov.hpp>
#include <demix/stats/statistic.hpp>
#include <demix/stats/wph.hpp>
#include <demix/stats/wst.hpp>

#include <memory>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

enum class StatisticKind {
  Wph,           ///< wavelet phase harmonics (stats/wph.hpp, pywph)
  Wst,           ///< wavelet scattering transform, spatial means (stats/wst.hpp, kymatio)
  ScatteringCov, ///< scattering covariance (stats/scattering_cov.hpp, Cheng et al.)
  PowerSpectrum, ///< isotropic power spectrum (stats/power_spectrum.hpp)
};

/// Everything that defines a statistic but its grid: which one, and its options.
using StatisticSpec =
    std::variant<WphOptions, WstOptions, ScatteringCovOptions, PowerSpectrumOptions>;

/// What the table knows of each statistic.
struct StatisticInfo {
  StatisticKind kind;
  const char* name;          ///< "wph", "wst", "scov", "ps": --kind, FITS keyword STAT
  const char* description;   ///< one line, for help texts
  bool takes_scales;         ///< J and L apply
  bool takes_shifts;         ///< dn applies
  bool takes_norm;           ///< a normalisation (none or auto) applies
  bool supports_cross;       ///< forward_cross is implemented (periodic maps)
  bool supports_complex;     ///< complex maps (Q + iU) are accepted
  bool supports_nonperiodic; ///< Boundary::NonPeriodic is accepted
  int max_default_J;         ///< default J = min(this, floor(log2(min(H, W))) - 2), at least 1
  int default_L;             ///< default number of angles
  bool J_below_side;         ///< needs 2^J < min(H, W) (else 2^J <= min(H, W))
};

/// The table, in the order of StatisticKind.
const std::vector<StatisticInfo>& statistic_registry();
const StatisticInfo& statistic_info(StatisticKind kind);
/// By name ("wph"...), case-sensitive; ValueError listing the names otherwise.
const StatisticInfo& statistic_info(std::string_view name);
StatisticKind kind_of(const StatisticSpec& spec);

/// The statistic of `spec` on `grid`, its filters and tables built on `context`'s device. The
/// operators' own errors (ValueError for options out of range or an unsupported boundary).
std::unique_ptr<Statistic> make_statistic(const StatisticSpec& spec, const Grid& grid,
                                          const Context& context);

/// The normalisations the common options name.
enum class CommonNorm {
  Default, ///< the statistic's own default: none for WPH, auto (P00) for the scattering covariance
  None,    ///< no normalisation (WPH: WphNorm::None; scov: ScovNormalization::None)
  Auto,    ///< WPH: WphNorm::Auto; scov: Cheng's P00 (ScovNormalization::P00)
};

/// The common options of the command line and the Python package.
struct CommonOptions {
  StatisticKind kind = StatisticKind::Wph;
  std::optional<int> J;  ///< >= 1; default: see StatisticInfo::max_default_J
  std::optional<int> L;  ///< >= 1; default: StatisticInfo::default_L
  std::optional<int> dn; ///< WPH only, >= 0; default 2 (as pywph's examples; WphOptions has 0)
  CommonNorm norm = CommonNorm::Default;
  bool complex_data = false; ///< WPH: complex maps (Q + iU)
};

/// The default J of `kind` for maps of `grid`'s size (0 for statistics without scales).
int default_J(StatisticKind kind, const Grid2d& grid);
/// The largest J that `kind` accepts on `grid` (0 for statistics without scales).
int largest_J(StatisticKind kind, const Grid2d& grid);
/// The statistic's options with the defaults filled in. ValueError for an option that does not
/// apply to the statistic, a J beyond largest_J (naming it) or a boundary or complex maps it does
/// not support.
StatisticSpec resolve(const CommonOptions& options, const Grid2d& grid);

} // namespace demix
#pragma GCC visibility pop

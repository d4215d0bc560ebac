#pragma once
// The pixel grid that statistics are built for. Planar maps today (Grid2d); the sphere (HEALPix)
// will be a second alternative of Grid, so that code which passes a Grid along (the statistics
// registry, synthesis, separation) does not change when it comes.

#include <cstdint>
#include <string>
#include <variant>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// How a planar map continues beyond its borders.
enum class Boundary {
  /// Periodic maps (simulation boxes): circular convolutions and shifts (pywph pbc=True).
  Periodic,
  /// Observed patches. Each statistic has its own border treatment: WPH cuts 2^J cut_param pixels
  /// per side and zero-pads for shifts (pywph pbc=False); WST pads by reflection as kymatio does.
  /// The scattering covariance and the power spectrum take periodic maps only (ValueError).
  NonPeriodic,
};

/// A regular planar grid: maps (..., height, width), row-major, row 0 first.
struct Grid2d {
  int64_t height = 0;                     ///< pixels along y (rows, axis -2); >= 1
  int64_t width = 0;                      ///< pixels along x (columns, axis -1); >= 1
  Boundary boundary = Boundary::Periodic; ///< see Boundary

  int64_t pixels() const { return height * width; }
  bool operator==(const Grid2d&) const = default;
};

/// Any grid a statistic may be built on (a HEALPix grid will join Grid2d).
using Grid = std::variant<Grid2d>;

/// "periodic" or "nonperiodic": the names of the command line and of the FITS keyword BOUNDARY.
const char* boundary_name(Boundary b);
/// "256 x 256, periodic".
std::string to_string(const Grid2d& grid);

} // namespace demix
#pragma GCC visibility pop

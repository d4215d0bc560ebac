#include <demix/core/grid.hpp>

namespace demix {

const char* boundary_name(Boundary b) {
  return b == Boundary::Periodic ? "periodic" : "nonperiodic";
}

std::string to_string(const Grid2d& grid) {
  return std::to_string(grid.height) + " x " + std::to_string(grid.width) + ", " +
         boundary_name(grid.boundary);
}

} // namespace demix

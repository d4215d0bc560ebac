#include "stats/detail/map_batch.hpp"

#include <demix/core/errors.hpp>

namespace demix::detail {

at::Tensor map_batch(const at::Tensor& x, int64_t height, int64_t width, const std::string& what) {
  if (!x.defined()) throw ValueError(what + ": the input tensor is undefined");
  if (x.dim() != 2 && x.dim() != 3)
    throw ShapeError(what + ": expected an input (B, H, W) or (H, W), got " +
                     std::to_string(x.dim()) + " dimensions");
  if (x.size(-2) != height || x.size(-1) != width)
    throw ShapeError(what + ": this operator was built for " + std::to_string(height) + " x " +
                     std::to_string(width) + " maps, got " + std::to_string(x.size(-2)) + " x " +
                     std::to_string(x.size(-1)));
  return x.dim() == 2 ? x.unsqueeze(0) : x;
}

} // namespace demix::detail

#pragma once
// The input check every statistics operator shares: a defined (H, W) map or (B, H, W) batch of the
// size the operator was built for, returned as (B, H, W). Type checks and casts stay with each
// operator (they accept different types).

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <string>

namespace demix::detail {

/// Throws ValueError (undefined) or ShapeError (rank, size) with messages prefixed by `what`.
at::Tensor map_batch(const at::Tensor& x /* (H, W) or (B, H, W) */, int64_t height, int64_t width,
                     const std::string& what); // -> (B, H, W), a view of x

} // namespace demix::detail

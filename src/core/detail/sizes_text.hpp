#pragma once
// A tensor's shape as the error messages write it: "(N, B, H, W)".

#include <ATen/core/TensorBody.h>

#include <string>

namespace demix::detail {

inline std::string sizes_text(const at::Tensor& t) {
  std::string s = "(";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + ")";
}

} // namespace demix::detail

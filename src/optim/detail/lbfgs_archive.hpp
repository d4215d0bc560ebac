#pragma once
// An L-BFGS state (optim/lbfgs.hpp) in a TensorArchive and back: what checkpoints of the
// optimisers' users (synthesis, separation) hold, so that a resumed run continues exactly.

#include <demix/core/context.hpp>
#include <demix/optim/lbfgs.hpp>

#include "io/detail/tensor_archive.hpp"

#include <ATen/ATen.h>

#include <sstream>
#include <string>

namespace demix::detail {

/// The options that decide an L-BFGS run's iterates, as text (for checkpoint fingerprints).
inline std::string lbfgs_options_text(const LbfgsOptions& o) {
  std::ostringstream s;
  s << o.history << " " << o.max_backtracks << " " << o.rtol << " " << o.first_step_length << " "
    << static_cast<int>(o.line_search) << " " << o.sufficient_decrease << " " << o.curvature;
  return s.str();
}

inline void put_lbfgs_state(TensorArchive& a, const LbfgsState& st) {
  a.put_int("iteration", st.iteration);
  a.put_int("evaluations", st.evaluations);
  a.put_int("pairs", st.pairs);
  a.put("x", st.x), a.put("value", st.value), a.put("grad", st.grad);
  a.put("done", st.done.to(at::kLong)), a.put("no_step", st.no_step.to(at::kLong));
  a.put("iterations", st.iterations);
  a.put("s", st.s), a.put("y", st.y), a.put("sy", st.sy), a.put("yy", st.yy), a.put("rho", st.rho);
}

/// The state on `context`'s device (the Gram products and rho stay on the host, as L-BFGS keeps
/// them).
inline LbfgsState get_lbfgs_state(const TensorArchive& a, const Context& context) {
  const auto dev = [&](const std::string& name) { return a.tensor(name).to(context.device()); };
  LbfgsState st;
  st.x = dev("x"), st.value = dev("value"), st.grad = dev("grad");
  st.done = dev("done").to(at::kBool), st.no_step = dev("no_step").to(at::kBool);
  st.iterations = dev("iterations");
  st.s = dev("s"), st.y = dev("y");
  st.sy = a.tensor("sy"), st.yy = a.tensor("yy"), st.rho = a.tensor("rho");
  st.pairs = static_cast<int>(a.integer("pairs"));
  st.iteration = static_cast<int>(a.integer("iteration"));
  st.evaluations = a.integer("evaluations");
  return st;
}

} // namespace demix::detail

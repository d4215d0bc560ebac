#pragma once
// The ValueError of an option out of range, as the optimisers' messages write it:
// "LbfgsOptions.rtol = -0.001: must be >= 0".

#include <demix/core/errors.hpp>

#include <sstream>
#include <string>

namespace demix::detail {

/// A number as people write it (1e-05, 0.5, 12).
inline std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// Checks the fields of one options struct: require(ok, field, value, allowed) throws
/// ValueError "<options>.<field> = <value>: must be <allowed>" unless `ok`.
struct OptionCheck {
  const char* options; ///< the struct's name, e.g. "AdamOptions"
  void operator()(bool ok, const char* field, double value, const std::string& allowed) const {
    if (!ok)
      throw ValueError(std::string(options) + "." + field + " = " + number_text(value) +
                       ": must be " + allowed);
  }
};

} // namespace demix::detail

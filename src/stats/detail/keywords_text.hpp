#pragma once
// A statistic's options as one line of text, "J=7,L=4,DN=2,...,": what checkpoint fingerprints
// record of each statistic (synthesis, separation).

#include <demix/stats/statistic.hpp>

#include <sstream>
#include <string>
#include <variant>

namespace demix::detail {

inline std::string keywords_text(const Statistic& statistic) {
  std::ostringstream s;
  for (const StatisticKeyword& k : statistic.keywords()) {
    s << k.fits << "=";
    std::visit([&](const auto& v) { s << v; }, k.value);
    s << ",";
  }
  return s.str();
}

} // namespace demix::detail

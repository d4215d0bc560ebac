#include "statistic_options.hpp"

#include <demix/core/errors.hpp>

#include "common.hpp"

#include <map>
#include <sstream>

namespace demix::cli {

void add_statistic_options(CLI::App& cmd, StatisticChoice& c, const std::string& norm_help) {
  std::map<std::string, std::string> names;
  for (const StatisticInfo& info : statistic_registry()) names.emplace(info.name, info.name);
  cmd.add_option("--stats", c.stats,
                 "Statistics to match, comma-separated: wph, scov, wst, ps (default wph)")
      ->delimiter(',')
      ->check(CLI::IsMember(names));
  cmd.add_option("--weights", c.weights, "Weight of each statistic of --stats (default 1)")
      ->delimiter(',')
      ->check(at_least(0));
  cmd.add_option("-J", c.J, "Number of dyadic scales (default: each statistic's)")
      ->check(positive());
  cmd.add_option("-L", c.L,
                 "Number of orientations, 1 to 64 (default: each statistic's: 4 for wph and "
                 "scov, 8 for wst; pywph's WPHOp defaults to 8)")
      ->check(in_range(1, 64));
  cmd.add_option("--dn", c.dn,
                 "wph: radial steps of the shift grid, 0 to 16 (pywph's WPHOp defaults to 0)")
      ->check(in_range(0, 16))
      ->capture_default_str();
  const std::map<std::string, CommonNorm> norms{{"none", CommonNorm::None},
                                                {"auto", CommonNorm::Auto}};
  cmd.add_option("--norm", c.norm, norm_help)->transform(choice(norms))->default_str("auto");
}

std::vector<StatisticTerm> statistic_terms(const StatisticChoice& c, const Grid2d& grid,
                                           bool complex_data) {
  if (!c.weights.empty() && c.weights.size() != c.stats.size())
    throw ValueError("--weights gives " + std::to_string(c.weights.size()) + " weight(s) for " +
                     std::to_string(c.stats.size()) + " statistic(s) in --stats");
  std::vector<StatisticTerm> terms;
  for (std::size_t i = 0; i < c.stats.size(); ++i) {
    const StatisticInfo& info = statistic_info(c.stats[i]);
    CommonOptions common;
    common.kind = info.kind;
    common.complex_data = complex_data;
    if (info.takes_norm) common.norm = c.norm;
    if (info.takes_scales && c.J > 0) {
      if (c.J > largest_J(info.kind, grid))
        throw ValueError("-J " + std::to_string(c.J) + " is too large for " + to_string(grid) +
                         " maps: " + info.name +
                         " takes J <= " + std::to_string(largest_J(info.kind, grid)));
      common.J = c.J;
    }
    if (info.takes_scales && c.L > 0) common.L = c.L;
    if (info.takes_shifts) common.dn = c.dn;
    terms.push_back({resolve(common, grid), c.weights.empty() ? 1.0 : c.weights[i]});
  }
  return terms;
}

std::string statistic_json(const StatisticChoice& c) {
  std::ostringstream s;
  s << "\"stats\": [";
  for (std::size_t i = 0; i < c.stats.size(); ++i) s << (i ? ", " : "") << json_string(c.stats[i]);
  s << "], \"weights\": [";
  for (std::size_t i = 0; i < c.stats.size(); ++i)
    s << (i ? ", " : "") << json_number(c.weights.empty() ? 1.0 : c.weights[i]);
  s << "], \"J\": " << c.J << ", \"L\": " << c.L << ", \"dn\": " << c.dn;
  return s.str();
}

std::string statistic_names(const StatisticChoice& c) {
  std::string names;
  for (const std::string& s : c.stats) names += (names.empty() ? "" : ",") + s;
  return names;
}

} // namespace demix::cli

#pragma once
// The statistics a command matches (synth, separate): --stats, --weights, -J, -L, --dn, --norm,
// and the loss terms they name for maps of a grid.

#include <demix/core/grid.hpp>
#include <demix/stats/registry.hpp>
#include <demix/synthesis/objective.hpp>

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace demix::cli {

struct StatisticChoice {
  std::vector<std::string> stats{"wph"};
  std::vector<double> weights; ///< one per statistic; default 1
  int J = 0, L = 0, dn = 2;    ///< 0: the statistic's default
  CommonNorm norm = CommonNorm::Auto;
};

/// Adds --stats, --weights, -J, -L, --dn, --norm to `cmd`; `norm_help` says whose statistics
/// normalise (the targets', the observation's).
void add_statistic_options(CLI::App& cmd, StatisticChoice& c, const std::string& norm_help);

/// The statistics chosen, with their weights, for maps of `grid`. ValueError for --weights of
/// another count than --stats, or a J too large for the grid.
std::vector<StatisticTerm> statistic_terms(const StatisticChoice& c, const Grid2d& grid,
                                           bool complex_data);

/// The choice as JSON members: "stats": [...], "weights": [...], "J": .., "L": .., "dn": ...
std::string statistic_json(const StatisticChoice& c);

/// "wph,ps".
std::string statistic_names(const StatisticChoice& c);

} // namespace demix::cli

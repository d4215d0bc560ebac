#pragma once
// What every subcommand shares: the global options and the string <-> enum tables.

#include <demix/core/context.hpp>
#include <demix/io/image.hpp>
#include <demix/io/output_files.hpp>
#include <demix/models/galaxy_prior.hpp>

#include <CLI/CLI.hpp>

#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace demix::cli {

/// Options valid before or after any subcommand.
struct Globals {
  ContextOptions context; ///< --device, --dtype, --threads
  bool quiet = false;     ///< --quiet: print only errors
};

void add_global_options(CLI::App& app, Globals& globals);

/// The context named by the global options (throws DeviceError / ValueError).
Context make_context(const Globals& globals);

/// CLI11 checks whose messages name the bound and the value received (CLI11's own number checks
/// print the double range's 309-digit limits): a number >= lo; > 0; finite; in [lo, hi].
CLI::Validator at_least(double lo);
CLI::Validator positive();
CLI::Validator finite();
CLI::Validator in_range(double lo, double hi);

/// A transform for an option that takes one of `names` (a map from name to enum value), case
/// insensitive: help and errors list the names ("must be one of bias, realizations, got 'x'"), not
/// CLI11's name->code table, and the numeric codes themselves are not accepted.
template <class Names> CLI::Validator choice(const Names& names) {
  const auto lower = [](std::string t) {
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return t;
  };
  std::string list;
  for (const auto& entry : names) list += (list.empty() ? "" : ", ") + std::string(entry.first);
  return CLI::Validator(
      [names, list, lower](std::string& value) -> std::string {
        for (const auto& [name, code] : names)
          if (lower(value) == lower(std::string(name))) {
            value = std::to_string(static_cast<long long>(code));
            return {};
          }
        return "must be one of " + list + ", got '" + value + "'";
      },
      "{" + list + "}");
}

/// Adds `--nan reject|keep|zero|mean` to a subcommand; its default is `policy`'s value (keep for
/// convert and preview, where blanked pixels are routine; reject where they would spoil a
/// computation).
CLI::Option* add_nan_option(CLI::App& cmd, NonFinitePolicy& policy);

// One function per subcommand, each defined in cli/cmd_<name>.cpp.
void add_version_command(CLI::App& app, const Globals& globals);
void add_info_command(CLI::App& app, const Globals& globals);
void add_convert_command(CLI::App& app, const Globals& globals);
void add_preview_command(CLI::App& app, const Globals& globals);
void add_stats_command(CLI::App& app, const Globals& globals);
void add_synth_command(CLI::App& app, const Globals& globals);
void add_separate_command(CLI::App& app, const Globals& globals);
void add_validate_command(CLI::App& app, const Globals& globals);
/// `simulate observation`, under `simulate`.
void add_simulate_observation_command(CLI::App& simulate, const Globals& globals);
void add_deblend_command(CLI::App& app, const Globals& globals);

/// The trained MADNESS model (VAE + flow) at `path`, on ctx's device, its decoder set up for
/// fitting (DecoderCompute::for_fitting) unless float32_decoder (cli/deblend_model.cpp).
std::shared_ptr<const GalaxyPrior> load_prior(const std::string& path, const Context& ctx,
                                              bool float32_decoder = false);
void add_simulate_command(CLI::App& app, const Globals& globals);
void add_train_vae_command(CLI::App& app, const Globals& globals);
void add_train_flow_command(CLI::App& app, const Globals& globals);

/// "512 x 512" from a tensor's sizes.
std::string shape_text(const at::Tensor& t);
/// "float32", "complex128", ... as NumPy names them.
std::string dtype_name(c10::ScalarType t);

/// IoError unless the folder that will hold `path` exists, so that long work does not start
/// for an output it cannot write; `what` names the output ("the model").
void require_output_folder(const std::string& path, const std::string& what);
/// Makes the folder `path` of a report unless it exists (IoError naming it, e.g. when its parent
/// is missing), and checks that files can be written into it.
void make_report_folder(const std::string& path);
/// `path` without its extension: "out/madness.dmx" -> "out/madness".
std::string path_stem(const std::string& path);

/// A progress line on stderr for long runs: on a terminal rewritten in place at most every 0.2 s,
/// elsewhere (logs) one line every 10 s; the last report is always shown.
class ProgressLine {
public:
  explicit ProgressLine(bool quiet);
  /// Shows `text` (no newline) if due; `last`: the run's final report.
  void show(const std::string& text, bool last);
  /// Seconds since construction.
  double seconds() const;

private:
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_;
  double shown_ = -1e9;
};

/// A JSON string literal (quotes, escapes) and a JSON number (null when not finite, 17 digits).
std::string json_string(const std::string& s);
std::string json_number(double v);

} // namespace demix::cli

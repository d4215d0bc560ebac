// demix command line: the only place that catches errors, prints them and chooses the exit code.
// Exit codes: 0 success, 1 runtime failure (bad file, bad data, missing device), 2 usage error.

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/output_files.hpp>

#include "common.hpp"

#include <c10/util/Exception.h>

#include <iostream>

int main(int argc, char** argv) {
  // Ctrl-C or a kill during a write leaves no temporary file behind (io/output_files.hpp).
  demix::remove_temporary_files_on_signals();
  CLI::App app{"demix: scattering statistics, generative models and component separation for "
               "astrophysical images"};
  app.name("demix");
  // `demix --version` prints the version line (the `version` command also lists the libraries and
  // devices); CLI11 exits through its Success error, code 0.
  app.set_version_flag("--version", "demix " + demix::build_info().demix);
  demix::cli::Globals globals;
  demix::cli::add_global_options(app, globals);
  app.require_subcommand(1);
  app.fallthrough(); // global options are accepted after the subcommand too
  demix::cli::add_version_command(app, globals);
  demix::cli::add_info_command(app, globals);
  demix::cli::add_convert_command(app, globals);
  demix::cli::add_preview_command(app, globals);
  demix::cli::add_stats_command(app, globals);
  demix::cli::add_synth_command(app, globals);
  demix::cli::add_separate_command(app, globals);
  demix::cli::add_validate_command(app, globals);
  demix::cli::add_deblend_command(app, globals);
  demix::cli::add_simulate_command(app, globals);
  demix::cli::add_train_vae_command(app, globals);
  demix::cli::add_train_flow_command(app, globals);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2; // --help prints and succeeds; anything else is usage
  } catch (const demix::Error& e) {
    std::cerr << "demix: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "demix: error (LibTorch): " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "demix: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

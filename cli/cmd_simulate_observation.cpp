// demix simulate observation SIGNAL -o d.fits --contamination ...: a simulated observation
// d = s + c of a given signal, with c drawn from a contamination model, and optionally further
// realizations of the same model for `demix separate` (simulations, where the truth is known).

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>
#include <demix/separation/contamination.hpp>

#include "common.hpp"
#include "contamination_options.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

namespace demix::cli {

namespace {

struct ObservationCliOptions {
  std::string signal, output, contamination, realizations_output;
  double snr = 0;       ///< > 0: white noise of deviation std(s) / snr per channel
  int realizations = 0; ///< further realizations written to realizations_output
  std::uint64_t seed = 0;
};

void run_observation(const ObservationCliOptions& o, const Globals& globals) {
  if (format_for_output(o.output) != FileFormat::Fits)
    throw ValueError("simulate observation writes FITS files; output '" + o.output +
                     "' does not end in .fits");
  if (o.contamination.empty() == !(o.snr > 0))
    throw ValueError("simulate observation: give either --contamination or --snr");
  if (o.realizations > 0 && o.realizations_output.empty())
    throw ValueError("-M " + std::to_string(o.realizations) + " needs --realizations-output");
  if (!o.realizations_output.empty()) {
    if (o.realizations < 2) throw ValueError("--realizations-output needs -M >= 2 realizations");
    if (format_for_output(o.realizations_output) != FileFormat::Fits)
      throw ValueError("--realizations-output '" + o.realizations_output +
                       "' does not end in .fits");
  }
  OutputFiles outputs;
  outputs.input(o.signal);
  if (o.contamination.find(':') != std::string::npos) // a model naming a file after ':' or '='
    outputs.input(o.contamination.substr(o.contamination.find_last_of(":=") + 1));
  outputs.add(o.output, "the observation (-o)");
  if (!o.realizations_output.empty()) outputs.add(o.realizations_output, "--realizations-output");
  const Image signal = read_image(o.signal);
  const at::Tensor s = (signal.data.dim() == 2 ? signal.data.unsqueeze(0) : signal.data)
                           .to(at::kDouble); // (C, H, W)
  ContaminationModel model;
  std::string described;
  if (o.snr > 0) {
    // One deviation per channel: std(s_c) / snr; a PixelNoise map holds it per channel.
    const at::Tensor sigma = s.flatten(1).std(1) / o.snr; // (C)
    model = PixelNoise{sigma.view({-1, 1, 1}).expand(s.sizes()).contiguous()};
    char buf[96];
    std::snprintf(buf, sizeof buf, "white noise, deviation %.6g (SNR %g)", sigma[0].item<double>(),
                  o.snr);
    described = buf;
  } else {
    const std::optional<ContaminationModel> m = contamination_model(o.contamination, s);
    if (!m)
      throw ValueError("--contamination '" + o.contamination +
                       "': simulate observation draws gaussian:sigma=X, gaussian:sigma-map=F or "
                       "spectrum:F");
    model = *m;
    described = o.contamination;
  }
  // The observation's noise from `seed`; the further realizations from seed + 1, independent.
  const at::Tensor c = draw_contamination(model, 1, s.sizes(), o.seed)[0];
  const auto pixels =
      signal.data.scalar_type() == at::kDouble ? FitsPixelType::Float64 : FitsPixelType::Float32;
  FitsHeader header = signal.header;
  header.set("SIMNOISE", std::string_view(described.substr(0, 68)), "contamination added");
  header.set("SIMSEED", static_cast<long long>(o.seed), "seed of the contamination");
  if (o.snr > 0) header.set("SIMSNR", o.snr, "std(signal) / std(contamination)");
  header.add_history("demix " + build_info().demix + " simulate observation: " + o.signal + " + " +
                     described);
  at::Tensor realizations;
  if (o.realizations > 0)
    realizations = draw_contamination(model, o.realizations, s.sizes(), o.seed + 1);
  FitsWriter out(outputs.staged(o.output));
  out.add_image("", (s + c).reshape(signal.data.sizes()), header, pixels);
  std::unique_ptr<FitsWriter> more;
  if (realizations.defined()) {
    FitsHeader rh;
    rh.set("SIMNOISE", std::string_view(described.substr(0, 68)), "contamination model");
    rh.set("SIMSEED", static_cast<long long>(o.seed + 1), "seed of these realizations");
    rh.add_history("demix simulate observation: realizations of the contamination of " + o.output);
    more = std::make_unique<FitsWriter>(outputs.staged(o.realizations_output));
    // One-channel maps: a cube (M, H, W), as `separate --contamination` reads it.
    more->add_image("", s.size(0) == 1 ? realizations.select(1, 0) : realizations.flatten(0, 1), rh,
                    pixels);
  }
  out.commit();
  if (more) more->commit();
  outputs.commit();
  if (!globals.quiet)
    std::cerr << "demix simulate observation: wrote " << o.output << " (" << described << ")"
              << (more ? " and " + std::to_string(o.realizations) + " realizations to " +
                             o.realizations_output
                       : std::string())
              << "\n";
}

} // namespace

void add_simulate_observation_command(CLI::App& simulate, const Globals& globals) {
  auto o = std::make_shared<ObservationCliOptions>();
  auto* cmd = simulate.add_subcommand(
      "observation", "A simulated observation d = s + c of a signal map, for separations");
  cmd->add_option("signal", o->signal, "The signal s (FITS or npy), (H, W) or (C, H, W)")
      ->required();
  cmd->add_option("-o,--output", o->output, "The observation d (FITS, the signal's header)")
      ->required();
  cmd->add_option("--contamination", o->contamination,
                  "gaussian:sigma=X, gaussian:sigma-map=F or spectrum:F (as for separate)");
  cmd->add_option("--snr", o->snr,
                  "White noise of deviation std(s) / SNR per channel, instead of --contamination")
      ->check(positive());
  cmd->add_option("-M,--realizations", o->realizations,
                  "Further independent realizations of the contamination to write")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--realizations-output", o->realizations_output,
                  "FITS file for them: a cube (M, H, W) for one channel, (M C, H, W) otherwise");
  cmd->add_option("--seed", o->seed,
                  "Seed of the observation's contamination (the further "
                  "realizations: seed + 1)")
      ->capture_default_str();
  cmd->callback([o, &globals] { run_observation(*o, globals); });
}

} // namespace demix::cli

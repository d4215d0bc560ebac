// demix train-vae STAMPS -o MODEL: trains MADNESS's galaxy VAE on isolated-galaxy stamps and
// writes a model file (no flow yet: `demix train-flow` adds it), the loss history (CSV) and the
// loss curve (PNG) beside it, and a checkpoint after every epoch (--resume continues from it).

#include <demix/core/errors.hpp>
#include <demix/io/npy.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/models/training.hpp>

#include "common.hpp"
#include "train_common.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <type_traits>

namespace demix::cli {

namespace {

/// What the decoder is trained to reproduce.
enum class TargetChoice {
  Auto,      ///< the noiseless stamps when the file has them, else the noisy ones
  Noisy,     ///< the noisy stamps (the VAE then also learns that noise is unpredictable)
  Noiseless, ///< the noiseless stamps (NOISELESS extension or --noiseless); error if absent
};

struct TrainVaeCliOptions {
  std::string input;
  std::string output;
  std::string checkpoint; ///< default: <output stem>_vae.ckpt
  std::string noiseless;  ///< .npy with the noiseless stamps (for .npy inputs)
  TargetChoice target = TargetChoice::Auto;
  std::vector<double> sigmas;
  std::vector<std::string> bands;
  VaeOptions architecture; ///< bands, stamp_size and band_scales come from the data
  VaeTrainingOptions training;
};

const char* target_name(TargetChoice t) {
  switch (t) {
  case TargetChoice::Auto: return "auto";
  case TargetChoice::Noisy: return "noisy";
  case TargetChoice::Noiseless: return "noiseless";
  }
  return "?";
}

template <typename T> std::string list_text(const std::vector<T>& v) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += ',';
    if constexpr (std::is_arithmetic_v<T>) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.10g", static_cast<double>(x));
      s += buf;
    } else {
      s += x;
    }
  }
  return s;
}

/// The command that reproduces this run, every option spelled out (stored in the model).
std::string command_text(const TrainVaeCliOptions& o, bool resumed) {
  const VaeTrainingOptions& t = o.training;
  const VaeOptions& a = o.architecture;
  std::string c =
      "demix train-vae " + shell_word(o.input) + " -o " + shell_word(o.output) +
      optimiser_words(t) + " --beta " + number_text(t.beta) + " --model-error " +
      number_text(t.model_error) + " --ae-epochs " + std::to_string(t.autoencoder_epochs) +
      stopping_words(t) + " --latent-dim " + std::to_string(a.latent_dim) + " --encoder-channels " +
      list_text(a.encoder_channels) + " --decoder-channels " + list_text(a.decoder_channels) +
      " --dense-units " + std::to_string(a.dense_units) + " --target " + target_name(o.target);
  if (!o.sigmas.empty()) c += " --sigmas " + list_text(o.sigmas);
  if (!o.bands.empty()) c += " --bands " + shell_word(list_text(o.bands));
  if (!o.noiseless.empty()) c += " --noiseless " + shell_word(o.noiseless);
  if (resumed) c += " --resume " + shell_word(o.training.resume_from);
  return c;
}

void run_train_vae(TrainVaeCliOptions o, const Globals& globals, const CLI::App& cmd) {
  const bool resuming = !o.training.resume_from.empty();
  if (resuming)
    for (const char* flag : {"--latent-dim", "--encoder-channels", "--decoder-channels",
                             "--dense-units", "--sigmas", "--bands"})
      if (cmd.count(flag))
        throw CLI::ValidationError(flag, "comes from the checkpoint when resuming (--resume)");
  if (o.checkpoint.empty()) o.checkpoint = path_stem(o.output) + "_vae.ckpt";
  OutputFiles outputs;
  outputs.input(o.input);
  outputs.add(o.output, "the model (-o)");
  const std::vector<std::string> files = add_history_files(outputs, path_stem(o.output) + "_vae");
  outputs.add_unstaged(o.checkpoint, "the checkpoint"); // written after every epoch
  o.training.checkpoint_path = o.checkpoint;

  TrainingStamps data = read_training_stamps(o.input, o.sigmas, o.bands);
  if (!o.noiseless.empty()) {
    if (data.set.noiseless.defined())
      throw ValueError("--noiseless: '" + o.input + "' already has a NOISELESS extension");
    data.set.noiseless = read_npy(o.noiseless).to(at::kFloat);
    if (data.set.noiseless.sizes() != data.set.stamps.sizes())
      throw ShapeError("--noiseless '" + o.noiseless + "' has shape " +
                       shape_text(data.set.noiseless) + ", the stamps " +
                       shape_text(data.set.stamps));
  }
  at::Tensor targets;
  if (o.target == TargetChoice::Noiseless && !data.set.noiseless.defined())
    throw ValueError("--target noiseless: '" + o.input +
                     "' has no NOISELESS extension (give --noiseless FILE.npy)");
  if (o.target != TargetChoice::Noisy) targets = data.set.noiseless;

  const Context ctx = make_context(globals);
  const int64_t N = data.set.stamps.size(0), B = data.set.stamps.size(1),
                S = data.set.stamps.size(2);
  std::optional<MadnessModel> model;
  if (resuming) {
    model.emplace(MadnessModel::load(o.training.resume_from, ctx.device()));
    o.architecture = model->vae().options();
  } else {
    o.architecture.bands = B;
    o.architecture.stamp_size = S;
    o.architecture.band_scales = data.sigmas;
    model.emplace(
        GalaxyVae(o.architecture, o.training.seed),
        ModelMetadata{.band_names = data.bands, .noise_sigmas = data.sigmas, .provenance = {}});
  }
  model->to(ctx.device(), ctx.real_dtype());

  if (!globals.quiet) {
    std::cerr << N << " stamps of " << B << " bands x " << S << " x " << S << " ("
              << data.set.description
              << "), targets: " << (targets.defined() ? "noiseless" : "noisy") << "\n"
              << "noise sigmas (" << (resuming ? "from the checkpoint" : data.sigma_source)
              << "): " << list_text(model->metadata().noise_sigmas) << " e-\n"
              << "VAE: latent dim " << model->latent_dim() << ", " << model->vae().parameter_count()
              << " parameters, on " << ctx.describe() << "\n"
              << (resuming ? "resuming from " + o.training.resume_from + "\n" : "");
  }

  const TrainingHistory history =
      train_vae(*model, data.set.stamps, targets, o.training, [&](const TrainingHistory& h) {
        if (!globals.quiet) print_epoch(h, o.training.epochs);
      });

  const EpochRecord& best = history.epochs.at(static_cast<std::size_t>(history.best_epoch - 1));
  const std::vector<double>& scores = best.val.empty() ? best.train : best.val;
  char summary[256];
  std::snprintf(summary, sizeof(summary),
                "train-vae: %lld stamps, %zu epochs, best epoch %d, %s loss %.6g, chi2/pixel %.4g",
                static_cast<long long>(N), history.epochs.size(), history.best_epoch,
                best.val.empty() ? "train" : "val", scores[0], scores[1]);
  model->metadata().provenance.push_back(provenance_line(command_text(o, resuming), ctx, summary));
  model->save(outputs.staged(o.output));
  write_history_files(history, outputs, files);
  outputs.commit();
  if (!globals.quiet)
    std::cout << "wrote " << o.output << " (" << summary << ")\n"
              << "history " << files[0] << ", loss curve " << files[1]
              << " (blue: train, orange: validation)\n"
              << "checkpoint " << o.checkpoint << (history.stopped_early ? " (stopped early)" : "")
              << "\nnext: demix train-flow " << shell_word(o.input) << " --model "
              << shell_word(o.output) << " -o " << shell_word(o.output) << "\n";
}

} // namespace

void add_train_vae_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<TrainVaeCliOptions>();
  auto* cmd = app.add_subcommand(
      "train-vae",
      "Train the galaxy VAE of the MADNESS deblender on isolated-galaxy stamps (N, B, S, S):\n"
      "writes MODEL (no flow yet: run train-flow next), <stem>_vae_history.csv,\n"
      "<stem>_vae_loss.png and a checkpoint after every epoch");
  cmd->add_option("stamps", o->input,
                  "FITS with a STAMPS extension (N, B, S, S) [+ NOISELESS, BANDi/SIGMAi keywords], "
                  "or .npy (N, B, S, S)")
      ->required();
  cmd->add_option("-o,--output", o->output, "Model file to write (e.g. madness.dmx)")->required();
  auto& t = o->training;
  auto& a = o->architecture;
  add_optimiser_options(*cmd, t, "Stamps per optimiser step");
  cmd->add_option("--beta", t.beta, "Weight of the KL term")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--model-error", t.model_error,
                  "Fractional model error eps: per-pixel variance sigma^2 + (eps xhat)^2 "
                  "(0: plain chi^2)")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--ae-epochs", t.autoencoder_epochs,
                  "First epochs as a deterministic autoencoder (z = mean, no KL)")
      ->check(at_least(0))
      ->capture_default_str();
  add_stopping_options(*cmd, t, "Share of stamps held out for validation",
                       "Seed of the weights, the split, shuffling and sampling");
  cmd->add_option("--latent-dim", a.latent_dim, "Latent dimension")
      ->check(CLI::Range(2, 1024))
      ->capture_default_str();
  cmd->add_option("--encoder-channels", a.encoder_channels,
                  "Channels per encoder level (each halves the stamp)")
      ->delimiter(',')
      ->default_str("16,32,64");
  cmd->add_option("--decoder-channels", a.decoder_channels,
                  "Decoder channels: after the dense layers, then after each 2x upsampling")
      ->delimiter(',')
      ->default_str("64,32,16,8");
  cmd->add_option("--dense-units", a.dense_units, "Width of the dense layers")
      ->check(positive())
      ->capture_default_str();
  const std::map<std::string, TargetChoice> targets{{"auto", TargetChoice::Auto},
                                                    {"noisy", TargetChoice::Noisy},
                                                    {"noiseless", TargetChoice::Noiseless}};
  cmd->add_option("--target", o->target,
                  "What the decoder reproduces: auto (noiseless when available), noisy, noiseless")
      ->transform(choice(targets))
      ->default_str("auto");
  cmd->add_option("--noiseless", o->noiseless, ".npy with the noiseless stamps (for .npy input)");
  cmd->add_option("--sigmas", o->sigmas,
                  "Per-band noise sigmas in the stamps' units (default: SIGMAi keywords, else "
                  "estimated from the stamp borders)")
      ->delimiter(',');
  cmd->add_option("--bands", o->bands, "Band names (default: BANDi keywords, else band1...)")
      ->delimiter(',');
  cmd->add_option("--checkpoint", o->checkpoint,
                  "Checkpoint written after every epoch (default: <output stem>_vae.ckpt)");
  cmd->add_option(
      "--resume", t.resume_from,
      "Continue a run from its checkpoint (same data and --seed; --epochs is the total)");
  cmd->callback([o, &globals, cmd] { run_train_vae(*o, globals, *cmd); });
}

} // namespace demix::cli

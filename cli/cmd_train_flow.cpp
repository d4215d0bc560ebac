// demix train-flow STAMPS --model MODEL -o OUT: trains the latent flow (MADNESS's prior log p(z))
// on the encoder means of the training stamps and writes the model with its flow, the loss history
// (CSV), the loss curve (PNG) and a checkpoint after every epoch.

#include <demix/core/errors.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/models/training.hpp>

#include "common.hpp"
#include "train_common.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

namespace demix::cli {

namespace {

struct TrainFlowCliOptions {
  std::string input;
  std::string model;
  std::string output;
  std::string checkpoint;   ///< default: <output stem>_flow.ckpt
  FlowOptions architecture; ///< dim comes from the model
  FlowTrainingOptions training;
};

std::string command_text(const TrainFlowCliOptions& o, bool resumed) {
  const FlowTrainingOptions& t = o.training;
  std::string hidden;
  for (auto h : o.architecture.hidden) {
    if (!hidden.empty()) hidden += ',';
    hidden += std::to_string(h);
  }
  std::string c = "demix train-flow " + shell_word(o.input) +
                  (resumed ? std::string() : " --model " + shell_word(o.model)) + " -o " +
                  shell_word(o.output) + optimiser_words(t) + stopping_words(t) + " --blocks " +
                  std::to_string(o.architecture.blocks) + " --hidden " + hidden +
                  " --max-log-scale " + number_text(o.architecture.max_log_scale);
  if (resumed) c += " --resume " + shell_word(t.resume_from);
  return c;
}

void run_train_flow(TrainFlowCliOptions o, const Globals& globals, const CLI::App& cmd) {
  const bool resuming = !o.training.resume_from.empty();
  if (resuming == !o.model.empty())
    throw CLI::ValidationError("--model/--resume",
                               "give exactly one: --model (a trained VAE) or --resume (a flow "
                               "training checkpoint)");
  if (resuming)
    for (const char* flag : {"--blocks", "--hidden", "--max-log-scale"})
      if (cmd.count(flag))
        throw CLI::ValidationError(flag, "comes from the checkpoint when resuming (--resume)");
  if (o.checkpoint.empty()) o.checkpoint = path_stem(o.output) + "_flow.ckpt";
  OutputFiles outputs;
  outputs.input(o.input);
  outputs.add(o.output, "the model (-o)");
  const std::vector<std::string> files = add_history_files(outputs, path_stem(o.output) + "_flow");
  outputs.add_unstaged(o.checkpoint, "the checkpoint"); // written after every epoch
  o.training.checkpoint_path = o.checkpoint;

  const Context ctx = make_context(globals);
  MadnessModel model =
      MadnessModel::load(resuming ? o.training.resume_from : o.model, ctx.device());
  model.to(ctx.device(), ctx.real_dtype());
  const GalaxyStampSet set = read_galaxy_stamps(o.input);
  if (resuming) {
    o.architecture = model.flow().options();
  } else {
    if (model.has_flow() && !globals.quiet)
      std::cerr << "note: replacing the flow already in " << o.model << "\n";
    o.architecture.dim = model.latent_dim();
    model.set_flow(LatentFlow(o.architecture, o.training.seed));
  }
  const at::Tensor latents = encode_means(model, set.stamps);
  if (!globals.quiet)
    std::cerr << set.stamps.size(0) << " stamps (" << set.description << ") encoded to "
              << latents.size(1) << "-dimensional latent means; flow: " << o.architecture.blocks
              << " MADE blocks, " << model.flow().parameter_count() << " parameters, on "
              << ctx.describe() << "\n"
              << (resuming ? "resuming from " + o.training.resume_from + "\n" : "");

  const TrainingHistory history =
      train_flow(model, latents, o.training, [&](const TrainingHistory& h) {
        if (!globals.quiet) print_epoch(h, o.training.epochs);
      });

  const EpochRecord& best = history.epochs.at(static_cast<std::size_t>(history.best_epoch - 1));
  char summary[256];
  std::snprintf(summary, sizeof(summary),
                "train-flow: %lld latent vectors, %zu epochs, best epoch %d, %s nll %.6g",
                static_cast<long long>(latents.size(0)), history.epochs.size(), history.best_epoch,
                best.val.empty() ? "train" : "val", best.val.empty() ? best.train[0] : best.val[0]);
  model.metadata().provenance.push_back(provenance_line(command_text(o, resuming), ctx, summary));
  model.save(outputs.staged(o.output));
  write_history_files(history, outputs, files);
  outputs.commit();
  if (!globals.quiet)
    std::cout << "wrote " << o.output << " (" << summary << ")\n"
              << "history " << files[0] << ", loss curve " << files[1]
              << " (blue: train, orange: validation)\n"
              << "checkpoint " << o.checkpoint << (history.stopped_early ? " (stopped early)" : "")
              << "\n";
}

} // namespace

void add_train_flow_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<TrainFlowCliOptions>();
  auto* cmd = app.add_subcommand(
      "train-flow",
      "Train the latent flow (the prior log p(z) of the MADNESS deblender) on the encoder means\n"
      "of the training stamps: writes OUT (the model with its flow), <stem>_flow_history.csv,\n"
      "<stem>_flow_loss.png and a checkpoint after every epoch");
  cmd->add_option("stamps", o->input,
                  "The VAE's training stamps: FITS (STAMPS) or .npy (N, B, S, S)")
      ->required();
  cmd->add_option("--model", o->model, "Model written by train-vae");
  cmd->add_option("-o,--output", o->output, "Model file to write (may be the --model file)")
      ->required();
  auto& t = o->training;
  auto& a = o->architecture;
  add_optimiser_options(*cmd, t, "Latent vectors per optimiser step");
  add_stopping_options(*cmd, t, "Share of vectors held out for validation",
                       "Seed of the weights, the split and shuffling");
  cmd->add_option("--blocks", a.blocks, "Number of MADE blocks")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--hidden", a.hidden, "Hidden widths of each MADE (each >= latent dim - 1)")
      ->delimiter(',')
      ->default_str("128,128");
  cmd->add_option("--max-log-scale", a.max_log_scale, "Bound on each block's log scale")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--checkpoint", o->checkpoint,
                  "Checkpoint written after every epoch (default: <output stem>_flow.ckpt)");
  cmd->add_option(
      "--resume", t.resume_from,
      "Continue a run from its checkpoint (instead of --model; same stamps and --seed)");
  cmd->callback([o, &globals, cmd] { run_train_flow(*o, globals, *cmd); });
}

} // namespace demix::cli

#pragma once
// What `demix train-vae` and `demix train-flow` share: reading the stamps with their noise sigmas
// and band names, output-path checks made before hours of training, per-epoch progress lines, the
// history CSV and loss-curve PNG written beside the model, the schedule options both commands
// take, and the provenance line stored in the model.

#include <demix/models/training.hpp>

#include "common.hpp"

#include <string>
#include <vector>

namespace demix::cli {

/// The stamps of a training set plus what the model records about them.
struct TrainingStamps {
  GalaxyStampSet set;
  std::vector<double> sigmas;     ///< per band, e-
  std::string sigma_source;       ///< "--sigmas", "SIGMAn keywords", "estimated from borders"
  std::vector<std::string> bands; ///< per band
};

/// Reads `path` (FITS with a STAMPS extension, or .npy (N, B, S, S)); sigmas from `sigmas` when
/// given, else the file's SIGMAn keywords, else estimated from the stamp borders; band names from
/// `bands`, else BANDn, else "band1".. . ValueError when a list has the wrong length.
TrainingStamps read_training_stamps(const std::string& path, const std::vector<double>& sigmas,
                                    const std::vector<std::string>& bands);

/// "epoch 3/60  loss 1.2e+03 (val 1.3e+03)  chi2_per_pixel 2.1 (val 2.3) ...  12.3 s" on stderr.
void print_epoch(const TrainingHistory& history, int total_epochs);

/// Registers `stem + "_history.csv"` and `stem + "_loss.png"` (before the training), returns
/// their names; write_history_files writes them (staged, see OutputFiles).
std::vector<std::string> add_history_files(OutputFiles& outputs, const std::string& stem);
void write_history_files(const TrainingHistory& history, OutputFiles& outputs,
                         const std::vector<std::string>& files);

/// "<command> | demix 0.1.0, LibTorch 1.13.1, cpu float32 (2 threads), 2026-12-01T10:00:00Z, ..."
std::string provenance_line(const std::string& command, const Context& ctx,
                            const std::string& summary);

/// A shell-safe rendering of one argument (quoted when it holds spaces or shell characters).
std::string shell_word(const std::string& word);

/// `v` with up to 10 significant digits, as the command stored in a model spells numbers.
std::string number_text(double v);

// The schedule options of VaeTrainingOptions and FlowTrainingOptions (fields of the same names),
// in two groups because train-vae puts its loss options between them. Defaults shown in --help
// are the values `t` holds when the option is added; help words that name what is trained on
// differ between the commands and are passed in.

/// Adds --epochs, --batch-size, --lr and --lr-decay-epochs bound to `t`.
template <typename Schedule>
void add_optimiser_options(CLI::App& cmd, Schedule& t, const std::string& batch_size_help) {
  cmd.add_option("--epochs", t.epochs, "Total number of epochs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--batch-size", t.batch_size, batch_size_help)
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--lr", t.learning_rate, "Adam learning rate at epoch 0")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--lr-decay-epochs", t.lr_decay_epochs,
                 "The learning rate falls by e every this many epochs (0: constant)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

/// Adds --val-fraction, --patience, --clip and --seed bound to `t`.
template <typename Schedule>
void add_stopping_options(CLI::App& cmd, Schedule& t, const std::string& val_fraction_help,
                          const std::string& seed_help) {
  cmd.add_option("--val-fraction", t.val_fraction, val_fraction_help)
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  cmd.add_option("--patience", t.patience,
                 "Stop after this many epochs without a better validation loss (0: never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--clip", t.max_grad_norm, "Clip the gradient norm to this (0: no clipping)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--seed", t.seed, seed_help)->capture_default_str();
}

/// " --epochs 60 --batch-size 128 --lr 0.001 --lr-decay-epochs 30": add_optimiser_options' words.
template <typename Schedule> std::string optimiser_words(const Schedule& t) {
  return " --epochs " + std::to_string(t.epochs) + " --batch-size " + std::to_string(t.batch_size) +
         " --lr " + number_text(t.learning_rate) + " --lr-decay-epochs " +
         number_text(t.lr_decay_epochs);
}

/// " --val-fraction 0.1 --patience 0 --clip 0 --seed 0": add_stopping_options' words.
template <typename Schedule> std::string stopping_words(const Schedule& t) {
  return " --val-fraction " + number_text(t.val_fraction) + " --patience " +
         std::to_string(t.patience) + " --clip " + number_text(t.max_grad_norm) + " --seed " +
         std::to_string(t.seed);
}

} // namespace demix::cli

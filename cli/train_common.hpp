#pragma once
// What `demix train-vae` and `demix train-flow` share: reading the stamps with their noise sigmas
// and band names, output-path checks made before hours of training, per-epoch progress lines, the
// history CSV and loss-curve PNG written beside the model, and the provenance line stored in it.

#include "common.hpp"

#include <demix/training.hpp>

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
TrainingStamps read_training_stamps(const std::string &path, const std::vector<double> &sigmas,
                                    const std::vector<std::string> &bands);

/// IoError unless the folder that will hold `path` exists (checked before training starts).
void require_output_folder(const std::string &path, const std::string &what);

/// `path` without its extension: "out/madness.dmx" -> "out/madness".
std::string path_stem(const std::string &path);

/// "epoch 3/60  loss 1.2e+03 (val 1.3e+03)  chi2_per_pixel 2.1 (val 2.3) ...  12.3 s" on stderr.
void print_epoch(const TrainingHistory &history, int total_epochs);

/// Writes `stem + "_history.csv"` and `stem + "_loss.png"`; returns their names for messages.
std::vector<std::string> write_history_files(const TrainingHistory &history,
                                             const std::string &stem);

/// "<command> | demix 0.1.0, LibTorch 1.13.1, cpu float32 (2 threads), 2026-12-01T10:00:00Z, ..."
std::string provenance_line(const std::string &command, const Context &ctx,
                            const std::string &summary);

/// A shell-safe rendering of one argument (quoted when it holds spaces or shell characters).
std::string shell_word(const std::string &word);

} // namespace demix::cli

#pragma once
// The epoch loop shared by train_vae and train_flow: validation split, shuffling, Adam, learning
// rate schedule, best-weights tracking, early stopping, checkpoints and exact resumption.

#include <demix/models/named_tensors.hpp>
#include <demix/models/training.hpp>

#include "io/detail/tensor_archive.hpp"

#include <ATen/core/Generator.h>
#include <ATen/core/TensorBody.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace demix::detail {

struct TrainerSpec {
  std::string kind;               ///< "vae" or "flow": a checkpoint of one cannot resume the other
  NamedTensors* params = nullptr; ///< trained in place
  std::string archive_prefix;     ///< where model_archive() stores params ("vae." / "flow.")
  std::int64_t n_samples = 0;
  std::vector<std::string> metric_names; ///< the first is the objective

  int epochs = 1;
  std::int64_t batch_size = 1;
  double learning_rate = 1e-3;
  double lr_decay_epochs = 0;
  double val_fraction = 0;
  int patience = 0;
  double max_grad_norm = 0;
  std::uint64_t seed = 0;
  std::string checkpoint_path;
  std::string resume_from;

  /// A training batch: the mean objective (scalar, differentiable in params) and the sums of the
  /// metrics over the batch (M). `index` (CPU int64) selects samples; noise comes from `gen`.
  std::function<std::pair<at::Tensor, at::Tensor>(const at::Tensor& index, int epoch,
                                                  at::Generator& gen)>
      train_batch;
  /// Sums of the metrics (M) over a validation batch, without autograd.
  std::function<at::Tensor(const at::Tensor& index)> eval_batch;
  /// The model as archive entries (weights in their training dtype), for checkpoints.
  std::function<TensorArchive()> model_archive;
  /// Called once before the first epoch of a fresh (not resumed) run with the training indices.
  std::function<void(const at::Tensor& train_index)> on_fresh_start;
};

TrainingHistory run_training(const TrainerSpec& spec, const EpochCallback& progress);

} // namespace demix::detail

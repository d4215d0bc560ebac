#pragma once
// Adam (Kingma & Ba 2015) over a list of tensors, for network training (models/training.hpp) and
// for the MADNESS deblender's latents (deblend/madness.hpp).
//
// Update of each parameter p with gradient g at step t = 1, 2, ... (torch::optim::Adam without
// weight decay or amsgrad, Keras's Adam with epsilon applied to the bias-corrected moment):
//
//   m <- beta1 m + (1 - beta1) g            c1 = 1 - beta1^t
//   v <- beta2 v + (1 - beta2) g^2          c2 = 1 - beta2^t
//   p <- p - lr_t (m / c1) / (sqrt(v / c2) + epsilon)
//
// computed as p -= (lr_t sqrt(c2) / c1) m / (sqrt(v) + epsilon sqrt(c2)). The step count lives in
// a device tensor and the step size lr_t is either the caller's host number or MADNESS's staircase
// schedule evaluated on the device, lr_t = learning_rate lr_decay^floor((t - 1) / lr_decay_steps).
// With the schedule a step reads no host number and makes no host synchronisation, so it may be
// recorded as a CUDA graph (StepGraph) and replayed: moments and count are updated in place.
// Optimised rows may leave (keep_rows), e.g. blends that have converged.

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct AdamOptions {
  double learning_rate = 1e-3; ///< step size of the first steps, in parameter units; > 0, finite
  double lr_decay = 1.0;       ///< staircase decay factor of the step size; in (0, 1] (1: constant)
  int lr_decay_steps = 1;      ///< steps between two decays; >= 1
  double beta1 = 0.9;          ///< decay of the first-moment average; in [0, 1)
  double beta2 = 0.999;        ///< decay of the second-moment average; in [0, 1)
  double epsilon = 1e-8;       ///< added to sqrt(bias-corrected second moment); > 0
};

/// What Adam carries from step to step (e.g. into a training checkpoint).
struct AdamState {
  std::vector<at::Tensor> first_moment;  ///< m, one tensor like each parameter (torch's exp_avg)
  std::vector<at::Tensor> second_moment; ///< v, like each parameter (torch's exp_avg_sq)
  at::Tensor steps; ///< () float64 on the first parameter's device: steps taken (exact to 2^53)
};

class Adam {
public:
  /// State for parameters shaped like `params` (zero moments, no step taken), on their devices
  /// and in their dtypes. ValueError naming the field and value for options out of range.
  explicit Adam(const std::vector<at::Tensor>& params, const AdamOptions& options = {});

  /// One update of each params[i] with gradient grads[i], in place and outside autograd, with the
  /// step size of the schedule in the options. Reads no host number and does not synchronise:
  /// may be recorded as a CUDA graph. ShapeError for lists or shapes that do not match the state.
  void step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads);
  /// The same with step size `lr` (> 0) for this step, in place of the schedule (a host number:
  /// a recording would freeze it).
  void step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads, double lr);

  /// Keeps the state of rows `rows` (dim 0) of every parameter: the moments become
  /// m.index_select(0, rows), the step count is kept. The caller does the same to its parameters.
  /// The state tensors are new ones: a recording of step() made before must be dropped.
  void keep_rows(const at::Tensor& rows /* (R') int64 on the parameters' device */);

  const AdamState& state() const { return state_; }
  /// Replaces the state (e.g. from a checkpoint). ShapeError unless it matches the parameters'
  /// count and shapes; ValueError for a negative or non-integer step count.
  void load_state(AdamState state);
  /// Steps taken (a host synchronisation on a GPU).
  std::int64_t step_count() const;

  const AdamOptions& options() const { return options_; }

private:
  void update(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
              const at::Tensor& lr /* () */);

  AdamOptions options_;
  AdamState state_;
};

/// Scales the gradients (the vector's tensors are replaced) so that their global L2 norm is at
/// most max_norm (no-op for max_norm <= 0). No host synchronisation.
void clip_grad_norm(std::vector<at::Tensor>& grads, double max_norm);

} // namespace demix
#pragma GCC visibility pop

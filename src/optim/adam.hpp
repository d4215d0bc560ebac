#pragma once
// Adam (Kingma & Ba 2015) over a list of tensors, with its state in plain tensors so that training
// checkpoints store it exactly. Same arithmetic as torch::optim::Adam without weight decay or
// amsgrad (tests/unit/models/test_training.cpp checks the two agree).

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <vector>

namespace demix::detail {

struct AdamSettings {
  double beta1 = 0.9;   ///< decay of the first-moment average
  double beta2 = 0.999; ///< decay of the second-moment average
  double eps = 1e-8;    ///< added to sqrt(second moment)
};

class Adam {
public:
  /// State (zeros) shaped like `params`, on their devices and dtypes.
  Adam(const std::vector<at::Tensor>& params, AdamSettings settings = {});

  /// One update of each params[i] (in place, outside autograd) with gradient grads[i].
  void step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads, double lr);

  std::int64_t step_count = 0;
  std::vector<at::Tensor> first_moment;  // exp_avg
  std::vector<at::Tensor> second_moment; // exp_avg_sq

private:
  AdamSettings settings_;
};

/// Scales `grads` in place so that their global L2 norm is at most max_norm (no-op for
/// max_norm <= 0). No host synchronisation.
void clip_grad_norm(std::vector<at::Tensor>& grads, double max_norm);

} // namespace demix::detail

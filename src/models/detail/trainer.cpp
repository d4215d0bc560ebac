#include "models/detail/trainer.hpp"

#include <demix/core/errors.hpp>
#include <demix/optim/adam.hpp>

#include "models/detail/nn.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

namespace demix::detail {

namespace {

constexpr std::uint64_t kSplitStream = 0xa5a5a5a5ull; // seeds the split apart from the epochs

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += v[i];
  }
  return s;
}

void check_spec(const TrainerSpec& s) {
  const auto bad = [&](const std::string& what) { throw ValueError("training options: " + what); };
  if (s.epochs < 1) bad("epochs must be >= 1, got " + std::to_string(s.epochs));
  if (s.batch_size < 1) bad("batch size must be >= 1, got " + std::to_string(s.batch_size));
  if (!(s.learning_rate > 0) || !std::isfinite(s.learning_rate))
    bad("learning rate must be positive, got " + std::to_string(s.learning_rate));
  if (!(s.lr_decay_epochs >= 0))
    bad("lr_decay_epochs must be >= 0, got " + std::to_string(s.lr_decay_epochs));
  if (!(s.val_fraction >= 0 && s.val_fraction <= 0.5))
    bad("val_fraction must be in [0, 0.5], got " + std::to_string(s.val_fraction));
  if (s.patience < 0) bad("patience must be >= 0, got " + std::to_string(s.patience));
  if (!(s.max_grad_norm >= 0))
    bad("max_grad_norm must be >= 0, got " + std::to_string(s.max_grad_norm));
  if (s.n_samples < 1) bad("no training samples");
}

std::vector<at::Tensor> tensors_of(const NamedTensors& params) {
  std::vector<at::Tensor> out;
  for (const auto& p : params) out.push_back(p.tensor);
  return out;
}

NamedTensors clone_of(const NamedTensors& params) {
  NamedTensors out;
  for (const auto& p : params) out.push_back({p.name, p.tensor.detach().clone()});
  return out;
}

void copy_into(NamedTensors& params, const NamedTensors& values) {
  c10::AutoGradMode no_grad(false);
  for (std::size_t i = 0; i < params.size(); ++i) params[i].tensor.copy_(values[i].tensor);
}

/// Sums of eval_batch over `index` in batches, divided by its length: per-sample means.
std::vector<double> evaluate(const TrainerSpec& spec, const at::Tensor& index) {
  c10::AutoGradMode no_grad(false);
  at::Tensor sums;
  for (int64_t start = 0; start < index.size(0); start += spec.batch_size) {
    const at::Tensor part =
        spec.eval_batch(index.narrow(0, start, std::min(spec.batch_size, index.size(0) - start)));
    sums = sums.defined() ? sums + part.to(at::kDouble) : part.to(at::kDouble);
  }
  const at::Tensor mean = (sums / static_cast<double>(index.size(0))).cpu();
  return {mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel()};
}

/// The history as a (E, 3 + 2M) float64 table: epoch, lr, seconds, train metrics, val metrics
/// (NaN without validation).
at::Tensor history_table(const TrainingHistory& h) {
  const int64_t M = static_cast<int64_t>(h.metric_names.size());
  at::Tensor t = at::full({static_cast<int64_t>(h.epochs.size()), 3 + 2 * M},
                          std::numeric_limits<double>::quiet_NaN(), at::kDouble);
  auto a = t.accessor<double, 2>();
  for (std::size_t e = 0; e < h.epochs.size(); ++e) {
    const auto& r = h.epochs[e];
    a[e][0] = r.epoch;
    a[e][1] = r.learning_rate;
    a[e][2] = r.seconds;
    for (int64_t m = 0; m < M; ++m) {
      a[e][3 + m] = r.train[m];
      if (!r.val.empty()) a[e][3 + M + m] = r.val[m];
    }
  }
  return t;
}

std::vector<EpochRecord> records_of(const at::Tensor& table, int64_t M, bool has_val) {
  std::vector<EpochRecord> out;
  const at::Tensor t = table.to(at::kDouble).contiguous();
  auto a = t.accessor<double, 2>();
  for (int64_t e = 0; e < t.size(0); ++e) {
    EpochRecord r;
    r.epoch = static_cast<int>(a[e][0]);
    r.learning_rate = a[e][1];
    r.seconds = a[e][2];
    for (int64_t m = 0; m < M; ++m) r.train.push_back(a[e][3 + m]);
    if (has_val)
      for (int64_t m = 0; m < M; ++m) r.val.push_back(a[e][3 + M + m]);
    out.push_back(r);
  }
  return out;
}

} // namespace

TrainingHistory run_training(const TrainerSpec& spec, const EpochCallback& progress) {
  check_spec(spec);
  NamedTensors& params = *spec.params;
  const c10::Device device = device_of(params);
  const int64_t N = spec.n_samples;
  const int64_t M = static_cast<int64_t>(spec.metric_names.size());

  // Validation split, fixed by the seed alone.
  int64_t n_val = 0;
  if (spec.val_fraction > 0 && N >= 2)
    n_val = std::clamp<int64_t>(std::llround(spec.val_fraction * static_cast<double>(N)), 1, N - 1);
  at::Generator split_gen = make_cpu_generator(mix_seed(spec.seed, kSplitStream));
  const at::Tensor perm = at::randperm(N, split_gen, at::kLong);
  const at::Tensor val_index = perm.narrow(0, 0, n_val);
  const at::Tensor train_index = perm.narrow(0, n_val, N - n_val);
  const int64_t n_train = train_index.size(0);

  TrainingHistory history;
  history.metric_names = spec.metric_names;
  Adam adam(tensors_of(params));
  NamedTensors best = clone_of(params); // replaced below: restored, or the starting weights
  double best_val = std::numeric_limits<double>::infinity();

  if (!spec.resume_from.empty()) {
    const TensorArchive a = TensorArchive::load(spec.resume_from);
    const std::string what = "checkpoint '" + spec.resume_from + "'";
    if (!a.has("train.kind"))
      throw FormatError(what + " is not a training checkpoint (no training state)");
    if (a.text("train.kind") != spec.kind)
      throw ValueError(what + " was written by " + a.text("train.kind") + " training, not " +
                       spec.kind);
    if (a.integer("train.n_samples") != N)
      throw ValueError(what + " was made with " + std::to_string(a.integer("train.n_samples")) +
                       " samples, these data have " + std::to_string(N));
    if (static_cast<std::uint64_t>(a.integer("train.seed")) != spec.seed)
      throw ValueError(what + " was made with seed " + std::to_string(a.integer("train.seed")) +
                       ", this run has " + std::to_string(spec.seed) + " (the split would differ)");
    if (a.text("train.metrics") != join(spec.metric_names))
      throw FormatError(what + ": unexpected metrics '" + a.text("train.metrics") + "'");
    restore(params, a, spec.archive_prefix);
    restore(best, a, "train.best." + spec.archive_prefix);
    NamedTensors m1 = clone_of(params), m2 = clone_of(params);
    restore(m1, a, "train.adam_m." + spec.archive_prefix);
    restore(m2, a, "train.adam_v." + spec.archive_prefix);
    adam.load_state(
        {tensors_of(m1), tensors_of(m2),
         at::scalar_tensor(static_cast<double>(a.integer("train.adam_step")), at::kDouble)});
    history.epochs = records_of(a.tensor("train.history"), M, a.integer("train.has_val") != 0);
    history.best_epoch = static_cast<int>(a.integer("train.best_epoch"));
    history.stopped_early = a.integer("train.stopped_early") != 0;
    best_val = a.real("train.best_val");
  } else {
    if (spec.on_fresh_start) spec.on_fresh_start(train_index);
    best = clone_of(params);
  }

  set_requires_grad(params, true);
  struct GradOff { // the model leaves training without requires_grad, even after an error
    NamedTensors& p;
    ~GradOff() { set_requires_grad(p, false); }
  } grad_off{params};

  const auto save_checkpoint = [&]() {
    if (spec.checkpoint_path.empty()) return;
    TensorArchive a = spec.model_archive();
    a.put_text("train.kind", spec.kind);
    a.put_int("train.n_samples", N);
    a.put_int("train.seed", static_cast<std::int64_t>(spec.seed));
    a.put_text("train.metrics", join(spec.metric_names));
    a.put_int("train.adam_step", adam.step_count());
    NamedTensors m1 = clone_of(params), m2 = clone_of(params);
    for (std::size_t i = 0; i < params.size(); ++i) {
      m1[i].tensor = adam.state().first_moment[i];
      m2[i].tensor = adam.state().second_moment[i];
    }
    store(m1, a, "train.adam_m." + spec.archive_prefix, true);
    store(m2, a, "train.adam_v." + spec.archive_prefix, true);
    store(best, a, "train.best." + spec.archive_prefix, true);
    a.put("train.history", history_table(history));
    a.put_int("train.has_val", n_val > 0 ? 1 : 0);
    a.put_int("train.best_epoch", history.best_epoch);
    a.put_int("train.stopped_early", history.stopped_early ? 1 : 0);
    a.put_double("train.best_val", best_val);
    a.save(spec.checkpoint_path);
  };

  const std::vector<at::Tensor> leaves = tensors_of(params);
  for (int epoch = static_cast<int>(history.epochs.size());
       epoch < spec.epochs && !history.stopped_early; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = spec.lr_decay_epochs > 0
                          ? spec.learning_rate * std::exp(-epoch / spec.lr_decay_epochs)
                          : spec.learning_rate;
    at::Generator gen =
        make_cpu_generator(mix_seed(spec.seed, static_cast<std::uint64_t>(epoch) + 1));
    const at::Tensor order = train_index.index_select(0, at::randperm(n_train, gen, at::kLong));
    at::Tensor sums = at::zeros({M}, at::TensorOptions().dtype(at::kDouble).device(device));
    const int64_t n_batches = (n_train + spec.batch_size - 1) / spec.batch_size;
    for (int64_t start = 0; start < n_train; start += spec.batch_size) {
      // Linear warm-up over the first epoch: Adam's first steps, taken before its second-moment
      // estimates settle, would otherwise throw an exponential decoder output far off.
      const double step_lr =
          epoch == 0 ? lr * static_cast<double>(start / spec.batch_size + 1) / n_batches : lr;
      const at::Tensor index = order.narrow(0, start, std::min(spec.batch_size, n_train - start));
      auto [loss, metric_sums] = spec.train_batch(index, epoch, gen);
      std::vector<at::Tensor> grads =
          torch::autograd::grad({loss}, leaves, {}, /*retain_graph=*/false,
                                /*create_graph=*/false, /*allow_unused=*/true);
      for (std::size_t i = 0; i < grads.size(); ++i)
        if (!grads[i].defined()) grads[i] = at::zeros_like(leaves[i]);
      clip_grad_norm(grads, spec.max_grad_norm);
      adam.step(leaves, grads, step_lr);
      sums += metric_sums.detach().to(at::kDouble);
    }
    EpochRecord record;
    record.epoch = epoch + 1;
    record.learning_rate = lr;
    const at::Tensor train_mean = (sums / static_cast<double>(n_train)).cpu();
    record.train.assign(train_mean.data_ptr<double>(), train_mean.data_ptr<double>() + M);
    if (!std::isfinite(record.train[0]))
      throw ValueError(spec.kind + " training diverged in epoch " + std::to_string(epoch + 1) +
                       " (" + spec.metric_names[0] + " = " + std::to_string(record.train[0]) +
                       "); lower the learning rate or clip gradients");
    if (n_val > 0) record.val = evaluate(spec, val_index);
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    history.epochs.push_back(record);

    const double score = n_val > 0 ? record.val[0] : -static_cast<double>(epoch); // last wins
    if (score < best_val || history.best_epoch == 0) {
      best_val = score;
      history.best_epoch = epoch + 1;
      best = clone_of(params);
    }
    if (spec.patience > 0 && n_val > 0 && epoch + 1 - history.best_epoch >= spec.patience)
      history.stopped_early = true;
    save_checkpoint();
    if (progress) progress(history);
  }
  copy_into(params, best);
  return history;
}

} // namespace demix::detail

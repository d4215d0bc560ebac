#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/npy.hpp>
#include <demix/models/training.hpp>
#include <demix/sim/dataset.hpp>
#include <demix/viz/plot.hpp>

#include "models/detail/model_archive.hpp"
#include "models/detail/nn.hpp"
#include "models/detail/trainer.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <cstdio>

namespace demix {

namespace {

void require_finite(const at::Tensor& t, const std::string& what) {
  const int64_t bad = (~at::isfinite(t)).sum().item<int64_t>();
  if (bad > 0) throw ValueError(what + " hold " + std::to_string(bad) + " NaN or infinite values");
}

void check_stamps(const at::Tensor& t, const MadnessModel& model, const std::string& what) {
  const int64_t B = model.n_bands(), S = model.stamp_size();
  if (!t.defined() || t.dim() != 4 || t.size(1) != B || t.size(2) != S || t.size(3) != S)
    throw ShapeError(what + ": expected (N, " + std::to_string(B) + ", " + std::to_string(S) +
                     ", " + std::to_string(S) + ") for this model, got " +
                     (t.defined() ? detail::shape_string(t.sizes()) : "undefined"));
  if (t.size(0) < 1) throw ShapeError(what + ": no stamps");
  if (!c10::isFloatingType(t.scalar_type()))
    throw ValueError(what + ": expected real floating values, got " +
                     std::string(c10::toString(t.scalar_type())));
  require_finite(t, what);
}

std::string format_number(double v) {
  if (std::isnan(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

} // namespace

at::Tensor stretched_chi2(const at::Tensor& prediction, const at::Tensor& target,
                          const at::Tensor& sigmas, double eps) {
  if (!prediction.defined() || !target.defined() || prediction.dim() != 4 ||
      prediction.sizes() != target.sizes() || !sigmas.defined() || sigmas.dim() != 1 ||
      sigmas.size(0) != prediction.size(1))
    throw ShapeError("stretched_chi2: expected prediction and target (N, B, S, S) and sigmas (B)");
  if (!(eps >= 0) || !std::isfinite(eps))
    throw ValueError("stretched_chi2: eps must be >= 0, got " + std::to_string(eps));
  const at::Tensor inv_sigma = (1.0 / sigmas).view({1, -1, 1, 1});
  if (eps == 0) return ((target - prediction) * inv_sigma).square().sum({1, 2, 3});
  // Locally the variance is sigma_b^2 + (eps x)^2; unlike that weighted chi^2, gradients stay
  // bounded for pixels predicted far too bright or far too faint.
  return (at::asinh(eps * target * inv_sigma) - at::asinh(eps * prediction * inv_sigma))
             .square()
             .sum({1, 2, 3}) /
         (eps * eps);
}

namespace {

/// The options both trainings share (their structs name them alike), copied into the trainer.
template <typename Options> void copy_schedule(detail::TrainerSpec& spec, const Options& options) {
  spec.epochs = options.epochs;
  spec.batch_size = options.batch_size;
  spec.learning_rate = options.learning_rate;
  spec.lr_decay_epochs = options.lr_decay_epochs;
  spec.val_fraction = options.val_fraction;
  spec.patience = options.patience;
  spec.max_grad_norm = options.max_grad_norm;
  spec.seed = options.seed;
  spec.checkpoint_path = options.checkpoint_path;
  spec.resume_from = options.resume_from;
}

} // namespace

TrainingHistory train_vae(MadnessModel& model, const at::Tensor& stamps, const at::Tensor& targets,
                          const VaeTrainingOptions& options, const EpochCallback& progress) {
  check_stamps(stamps, model, "training stamps");
  if (targets.defined()) {
    check_stamps(targets, model, "training targets");
    if (targets.size(0) != stamps.size(0))
      throw ShapeError("training targets: " + std::to_string(targets.size(0)) + " stamps for " +
                       std::to_string(stamps.size(0)) + " inputs");
  }
  if (!(options.beta >= 0) || !std::isfinite(options.beta))
    throw ValueError("training options: beta must be >= 0, got " + std::to_string(options.beta));
  if (!(options.model_error >= 0) || !std::isfinite(options.model_error))
    throw ValueError("training options: model_error must be >= 0, got " +
                     std::to_string(options.model_error));
  if (options.autoencoder_epochs < 0)
    throw ValueError("training options: autoencoder_epochs must be >= 0, got " +
                     std::to_string(options.autoencoder_epochs));

  GalaxyVae& vae = model.vae();
  const c10::Device device = vae.device();
  const c10::ScalarType dtype = vae.dtype();
  const at::TensorOptions opts = at::TensorOptions().device(device).dtype(dtype);
  const at::Tensor x = stamps.detach().to(device, dtype);
  const at::Tensor target = targets.defined() ? targets.detach().to(device, dtype) : x;
  const int64_t B = model.n_bands(), S = model.stamp_size(), D = model.latent_dim();
  const at::Tensor sigma = at::tensor(model.metadata().noise_sigmas, at::kDouble).to(opts);
  const at::Tensor inv_sigma = (1.0 / sigma).view({1, B, 1, 1});
  const double pixels = static_cast<double>(B * S * S);
  const double beta = options.beta;
  const double model_error = options.model_error;

  // Per stamp: 0.5 stretched_chi2 + w KL. Metric sums: loss, plain chi^2 per pixel, KL.
  const auto objective = [&](const at::Tensor& index, const VaeEncoding& q, const at::Tensor& z,
                             double kl_weight) {
    const at::Tensor xhat = vae.decode(z);
    const at::Tensor t = target.index_select(0, index);
    const at::Tensor chi2 = ((t - xhat) * inv_sigma).square().sum({1, 2, 3});
    const at::Tensor stretched =
        model_error > 0 ? stretched_chi2(xhat, t, sigma, model_error) : chi2;
    const at::Tensor kl = GalaxyVae::kl_divergence(q);
    const at::Tensor per_stamp = 0.5 * stretched + kl_weight * kl;
    const at::Tensor sums = at::stack({per_stamp.sum(), chi2.sum() / pixels, kl.sum()}).detach();
    return std::make_pair(per_stamp.mean(), sums);
  };

  detail::TrainerSpec spec;
  spec.kind = "vae";
  spec.params = &vae.parameters();
  spec.archive_prefix = detail::kVaePrefix;
  spec.n_samples = stamps.size(0);
  spec.metric_names = {"loss", "chi2_per_pixel", "kl"};
  copy_schedule(spec, options);
  spec.train_batch = [&](const at::Tensor& index_cpu, int epoch, at::Generator& gen) {
    const at::Tensor index = index_cpu.to(device);
    const VaeEncoding q = vae.encode(x.index_select(0, index));
    if (epoch < options.autoencoder_epochs) return objective(index, q, q.mean, 0.0);
    // Reparameterisation; the noise is drawn on the CPU so that runs agree on every device.
    const at::Tensor eps = at::randn({index.size(0), D}, gen, at::kDouble).to(opts);
    return objective(index, q, q.mean + at::exp(0.5 * q.log_var) * eps, beta);
  };
  spec.eval_batch = [&](const at::Tensor& index_cpu) {
    const at::Tensor index = index_cpu.to(device);
    const VaeEncoding q = vae.encode(x.index_select(0, index));
    return objective(index, q, q.mean, beta).second;
  };
  spec.model_archive = [&]() { return detail::model_to_archive(model, /*keep_dtype=*/true); };
  return detail::run_training(spec, progress);
}

TrainingHistory train_flow(MadnessModel& model, const at::Tensor& latents,
                           const FlowTrainingOptions& options, const EpochCallback& progress) {
  LatentFlow& flow = model.flow();
  const int64_t D = model.latent_dim();
  if (!latents.defined() || latents.dim() != 2 || latents.size(1) != D || latents.size(0) < 1)
    throw ShapeError("flow training latents: expected (N, " + std::to_string(D) + "), got " +
                     (latents.defined() ? detail::shape_string(latents.sizes()) : "undefined"));
  require_finite(latents, "flow training latents");
  const c10::Device device = flow.device();
  const at::Tensor z = latents.detach().to(device, flow.dtype());

  detail::TrainerSpec spec;
  spec.kind = "flow";
  spec.params = &flow.parameters();
  spec.archive_prefix = detail::kFlowPrefix;
  spec.n_samples = latents.size(0);
  spec.metric_names = {"nll"};
  copy_schedule(spec, options);
  spec.train_batch = [&](const at::Tensor& index, int, at::Generator&) {
    const at::Tensor nll = -flow.log_prob(z.index_select(0, index.to(device)));
    return std::make_pair(nll.mean(), nll.sum().detach().view({1}));
  };
  spec.eval_batch = [&](const at::Tensor& index) {
    return (-flow.log_prob(z.index_select(0, index.to(device)))).sum().view({1});
  };
  spec.model_archive = [&]() { return detail::model_to_archive(model, /*keep_dtype=*/true); };
  if (options.standardise_from_data)
    spec.on_fresh_start = [&](const at::Tensor& train_index) {
      const at::Tensor zt = z.index_select(0, train_index.to(device));
      if (zt.size(0) >= 2) flow.set_standardisation(zt.mean(0), zt.std(0).clamp_min(1e-6));
    };
  return detail::run_training(spec, progress);
}

at::Tensor encode_means(const MadnessModel& model, const at::Tensor& stamps,
                        std::int64_t batch_size) {
  check_stamps(stamps, model, "stamps to encode");
  if (batch_size < 1) throw ValueError("encode_means: batch size must be >= 1");
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < stamps.size(0); start += batch_size) {
    const at::Tensor part = stamps.narrow(0, start, std::min(batch_size, stamps.size(0) - start));
    parts.push_back(model.encode(part.to(model.device(), model.dtype())));
  }
  return at::cat(parts);
}

std::string history_csv(const TrainingHistory& h) {
  std::string out = "epoch,learning_rate,seconds";
  for (const auto& m : h.metric_names) out += ",train_" + m;
  for (const auto& m : h.metric_names) out += ",val_" + m;
  out += "\n";
  for (const auto& r : h.epochs) {
    out += std::to_string(r.epoch) + "," + format_number(r.learning_rate) + "," +
           format_number(r.seconds);
    for (std::size_t m = 0; m < h.metric_names.size(); ++m)
      out.append(",").append(format_number(m < r.train.size() ? r.train[m] : NAN));
    for (std::size_t m = 0; m < h.metric_names.size(); ++m)
      out.append(",").append(format_number(m < r.val.size() ? r.val[m] : NAN));
    out += "\n";
  }
  return out;
}

at::Tensor plot_history(const TrainingHistory& h, int width, int height) {
  const int64_t E = static_cast<int64_t>(h.epochs.size());
  at::Tensor train = at::full({E}, NAN, at::kDouble), val = at::full({E}, NAN, at::kDouble);
  bool positive = true;
  for (int64_t e = 0; e < E; ++e) {
    const auto& r = h.epochs[e];
    if (!r.train.empty()) train[e] = r.train[0];
    if (!r.val.empty()) val[e] = r.val[0];
    for (double v : {r.train.empty() ? NAN : r.train[0], r.val.empty() ? NAN : r.val[0]})
      if (std::isfinite(v) && v <= 0) positive = false;
  }
  if (positive) {
    train = train.log10();
    val = val.log10();
  }
  return plot_series({train, val}, {kSeriesColours[0], kSeriesColours[1]}, {}, width, height);
}

std::vector<double> estimate_stamp_noise_sigmas(const at::Tensor& stamps) {
  if (!stamps.defined() || stamps.dim() != 4 || stamps.size(0) < 1 || stamps.size(2) < 5 ||
      stamps.size(3) < 5)
    throw ShapeError("estimate_stamp_noise_sigmas: expected (N, B, S, S) with S >= 5, got " +
                     (stamps.defined() ? detail::shape_string(stamps.sizes()) : "undefined"));
  const int64_t H = stamps.size(2), W = stamps.size(3);
  at::Tensor frame = at::ones({H, W}, at::kBool);
  frame.narrow(0, 2, H - 4).narrow(1, 2, W - 4).fill_(false);
  std::vector<double> sigmas;
  for (int64_t b = 0; b < stamps.size(1); ++b) {
    const at::Tensor v = stamps.select(1, b)
                             .detach()
                             .to(at::kCPU, at::kDouble)
                             .index({at::indexing::Slice(), frame});
    const at::Tensor flat = v.flatten();
    const double med = flat.median().item<double>();
    const double mad = (flat - med).abs().median().item<double>();
    const double sigma = 1.4826 * mad;
    if (!(sigma > 0) || !std::isfinite(sigma))
      throw ValueError("cannot estimate the noise of band " + std::to_string(b + 1) +
                       " from the stamp borders (got " + std::to_string(sigma) +
                       "): are the stamps noiseless? give the noise sigmas explicitly");
    sigmas.push_back(sigma);
  }
  return sigmas;
}

GalaxyStampSet read_galaxy_stamps(const std::string& path) {
  GalaxyStampSet set;
  const auto require_4d = [&](const at::Tensor& t, const std::string& what) {
    if (t.dim() != 4 || t.size(0) < 1 || t.size(2) != t.size(3))
      throw ShapeError("'" + path + "': " + what +
                       " must be (N, B, S, S) with square stamps, got " +
                       detail::shape_string(t.sizes()));
    if (!c10::isFloatingType(t.scalar_type()))
      throw FormatError("'" + path + "': " + what + " must hold real floating values, got " +
                        std::string(c10::toString(t.scalar_type())));
  };
  if (detect_input_format(path) == FileFormat::Npy) {
    set.stamps = read_npy(path);
    require_4d(set.stamps, "the npy array");
    set.stamps = set.stamps.to(at::kFloat);
    set.description = "npy";
    return set;
  }
  // The dataset format's one reader: STAMPS (or an N = 1 file's HDU 0), NOISELESS, BANDi, SIGMAi.
  SimulatedDataset d = read_dataset_images(path);
  if (d.kind == "blends")
    throw FormatError("'" + path + "' holds blends (DATASET = 'blends'); training needs isolated " +
                      "galaxy stamps (demix simulate isolated)");
  require_4d(d.images, "the STAMPS extension");
  set.stamps = d.images.to(at::kFloat);
  set.description = "FITS STAMPS";
  if (d.noiseless.defined()) {
    set.noiseless = d.noiseless.to(at::kFloat);
    set.description += " + NOISELESS";
  }
  set.band_names = std::move(d.bands);
  if (d.sigma.defined())
    set.noise_sigmas = std::vector<double>(d.sigma.data_ptr<double>(),
                                           d.sigma.data_ptr<double>() + d.sigma.numel());
  return set;
}

} // namespace demix

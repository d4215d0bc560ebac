// Cost of the MADNESS prior as the deblender uses it: one MAP step = decode(z) and log p(z) for a
// batch of latent vectors, then the gradient with respect to z (weights frozen). Prints one JSON
// line per figure:
//   bench_prior [cpu|cuda|auto] [model.dmx] [batch ...]
// Without a model file, an untrained model with the default architecture (same cost).
// Figures: seconds per forward and per forward + backward (median of 5 after 2 warm-ups),
// latent vectors per second, parameter counts and the size of the model file.

#include <demix/core/context.hpp>
#include <demix/models/madness_model.hpp>

#include "timing.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

std::int64_t count(const demix::NamedTensors& params, const std::string& prefix) {
  std::int64_t n = 0;
  for (const auto& p : params)
    if (p.name.rfind(prefix, 0) == 0) n += p.tensor.numel();
  return n;
}

} // namespace

int main(int argc, char** argv) {
  const std::string device = argc > 1 ? argv[1] : "auto";
  const std::string path = argc > 2 ? argv[2] : "";
  std::vector<std::int64_t> batches;
  for (int i = 3; i < argc; ++i) batches.push_back(std::atoll(argv[i]));
  if (batches.empty()) batches = {1, 100, 4000};

  const demix::Context ctx({.device = device == "cpu"    ? demix::DeviceKind::Cpu
                                      : device == "cuda" ? demix::DeviceKind::Cuda
                                                         : demix::DeviceKind::Auto});
  bench::on_cuda = ctx.device().is_cuda();
  const std::vector<double> sigmas{100, 150, 200, 300, 400, 500};
  demix::MadnessModel model =
      path.empty() ? demix::MadnessModel(
                         demix::GalaxyVae({.band_scales = sigmas}),
                         {.band_names = {"u", "g", "r", "i", "z", "y"}, .noise_sigmas = sigmas})
                   : demix::MadnessModel::load(path);
  if (!model.has_flow()) model.set_flow(demix::LatentFlow({.dim = model.latent_dim()}));
  model.to(ctx.device());

  std::string file = path;
  if (file.empty()) {
    file = "/tmp/bench_prior_model.dmx";
    model.save(file);
  }
  std::ifstream f(file, std::ios::binary | std::ios::ate);
  const double mib = static_cast<double>(f.tellg()) / (1 << 20);
  std::printf("{\"figure\": \"size\", \"device\": \"%s\", \"encoder_params\": %lld, "
              "\"decoder_params\": %lld, \"flow_params\": %lld, \"file_mib\": %.3f}\n",
              ctx.describe().c_str(),
              static_cast<long long>(count(model.vae().parameters(), "encoder.")),
              static_cast<long long>(count(model.vae().parameters(), "decoder.")),
              static_cast<long long>(model.flow().parameter_count()), mib);

  for (std::int64_t n : batches) {
    const at::Tensor z0 = at::randn({n, model.latent_dim()}, ctx.options());
    at::Tensor keep;
    const double fwd = bench::median_seconds([&] {
      c10::AutoGradMode no_grad(false);
      keep = model.decode(z0).sum() + model.log_prob(z0).sum();
    });
    const double decode_grad = bench::median_seconds([&] {
      const at::Tensor z = z0.detach().requires_grad_(true);
      keep = torch::autograd::grad({model.decode(z).square().sum()}, {z})[0];
    });
    const double step = bench::median_seconds([&] {
      const at::Tensor z = z0.detach().requires_grad_(true);
      const at::Tensor loss = model.decode(z).square().sum() - model.log_prob(z).sum();
      keep = torch::autograd::grad({loss}, {z})[0];
    });
    std::printf("{\"figure\": \"map_step\", \"device\": \"%s\", \"batch\": %lld, "
                "\"forward_s\": %.6g, \"decode_fwd_bwd_s\": %.6g, \"decode_flow_fwd_bwd_s\": "
                "%.6g, \"latents_per_s\": %.6g}\n",
                ctx.describe().c_str(), static_cast<long long>(n), fwd, decode_grad, step,
                static_cast<double>(n) / step);
    std::fflush(stdout);
  }
  return 0;
}

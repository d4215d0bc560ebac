// Where the time of one WPH loss + gradient goes: runs it under LibTorch's legacy profiler and
// writes a Chrome trace (chrome://tracing). Run with CUDA_LAUNCH_BLOCKING=1 on a GPU so that each
// op's CPU span covers its kernels; devel/device/profile_summary.py sums the spans by op name. The
// statistics alone (no gradient) go to trace.json.forward.json. With DEMIX_KINETO=1 the loss +
// gradient is traced by Kineto instead, whose trace holds each GPU kernel's own time (no blocking
// needed); devel/device/kernel_summary.py sums them.
//   profile_wph cpu|cuda I_1.npy N J batch trace.json

#include <demix/core/context.hpp>
#include <demix/io/npy.hpp>
#include <demix/stats/wph.hpp>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <set>
#include <string>

int main(int argc, char** argv) {
  if (argc != 7) {
    std::cerr << "usage: profile_wph cpu|cuda I_1.npy N J batch trace.json\n";
    return 2;
  }
  try {
    const demix::Context ctx({.device = std::string(argv[1]) == "cuda" ? demix::DeviceKind::Cuda
                                                                       : demix::DeviceKind::Cpu});
    const int64_t n = std::stoll(argv[3]), batch = std::stoll(argv[5]);
    const int J = std::stoi(argv[4]);
    at::Tensor x = demix::read_npy(argv[2]).to(at::kFloat).narrow(0, 0, n).narrow(1, 0, n);
    x = ctx.to(((x - x.mean()) / x.std()).contiguous());
    demix::WphOptions o{.J = J, .L = 4, .dn = 2, .norm = demix::WphNorm::Auto};
    if (const char* chunk = std::getenv("DEMIX_CHUNK_MB")) o.memory_bytes = std::stoll(chunk) << 20;
    // Eager calls (no StepGraph): a replayed recording would be one opaque op in the profile.
    const demix::WphOperator op(o, {n, n}, ctx);
    const demix::Reference ref = op.reference(x);
    const demix::SquaredDistance distance(op.forward(x, ref).values[0]);
    const at::Tensor xb = x.unsqueeze(0) + 0.1 * at::randn({batch, n, n}, x.options());
    at::Tensor grad;
    const auto loss_and_grad = [&] { grad = op.loss_and_grad(xb, distance, ref).grad; };
    for (int i = 0; i < 3; ++i) loss_and_grad(); // warm-up
    auto seconds = [&](auto&& fn) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 5; ++i) fn();
      if (ctx.device().is_cuda()) grad.cpu();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 5;
    };
    const double fwd = seconds([&] {
      c10::AutoGradMode no_grad(false);
      grad = op.forward(xb, ref).values;
    });
    const double lg = seconds(loss_and_grad);
    std::cout << "n=" << n << " J=" << J << " batch=" << batch << " forward " << fwd * 1e3
              << " ms, loss+grad " << lg * 1e3 << " ms\n";
    {
      torch::autograd::profiler::RecordProfile guard(std::string(argv[6]) + ".forward.json");
      c10::AutoGradMode no_grad(false);
      grad = op.forward(xb, ref).values;
      if (ctx.device().is_cuda()) grad.cpu();
    }
    if (std::getenv("DEMIX_KINETO")) {
      namespace prof = torch::autograd::profiler;
      using torch::profiler::impl::ActivityType;
      const torch::profiler::impl::ProfilerConfig config(
          torch::profiler::impl::ProfilerState::KINETO);
      const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
      prof::prepareProfiler(config, activities);
      prof::enableProfiler(config, activities);
      loss_and_grad();
      if (ctx.device().is_cuda()) grad.cpu();
      prof::disableProfiler()->save(argv[6]);
    } else {
      torch::autograd::profiler::RecordProfile guard(argv[6]);
      loss_and_grad();
      if (ctx.device().is_cuda()) grad.cpu();
    }
  } catch (const std::exception& e) {
    std::cerr << "profile_wph: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

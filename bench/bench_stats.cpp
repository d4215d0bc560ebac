// Speed and memory of the statistics operators, printed as one JSON line per figure, in the same
// form as ../shared/tools/peer_bench.py so both can run in one command and be compared:
//   bench_stats [cpu|cuda|auto] [path/to/I_1.npy] [quick|wph|large|families]
//   (quick: skip the batch of 100; wph: WPH only; large: WPH of 1024^2 to 4096^2 maps; families:
//   the scattering covariance and WST only, in a process that ran no WPH)
// Figures: seconds per statistics call and per loss + gradient (median of 5 after 2 warm-ups),
// batch 1 and batch 100, and the peak memory of the loss + gradient; on CUDA also held_MiB, what
// the process held allocated when that peak's count started (filters, the maps, caches and
// whatever earlier figures left), which the peak includes.

#include <demix/core/context.hpp>
#include <demix/io/npy.hpp>
#include <demix/optim/step_graph.hpp>
#include <demix/stats/scattering_cov.hpp>
#include <demix/stats/wph.hpp>
#include <demix/stats/wst.hpp>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <sys/resource.h>

#ifdef DEMIX_BENCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "timing.hpp"

namespace {

void reset_peak() {
#ifdef DEMIX_BENCH_CUDA
  if (bench::on_cuda) c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
}

/// Device memory allocated now (`peak` false; 0 on the CPU) or at its peak since reset_peak()
/// (CUDA; on the CPU, the peak resident memory of the process), in MiB.
double memory_mib(bool peak) {
#ifdef DEMIX_BENCH_CUDA
  if (bench::on_cuda) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
    const auto& bytes = stats.allocated_bytes[0];
    return static_cast<double>(peak ? bytes.peak : bytes.current) / (1 << 20);
  }
#endif
  if (!peak) return 0;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

at::Tensor field(const std::string& dust, int64_t n, const demix::Context& ctx) {
  at::Tensor x = demix::read_npy(dust).to(at::kFloat);
  x = n <= 512 ? x.narrow(0, 0, n).narrow(1, 0, n) : x.repeat({n / 512, n / 512});
  x = (x - x.mean()) / x.std();
  return ctx.to(x.contiguous());
}

void bench_wph(const demix::Context& ctx, const std::string& dust, int64_t n, int J, int batch,
               bool graphs = true) {
  const demix::WphOperator op({.J = J, .L = 4, .dn = 2, .norm = demix::WphNorm::Auto}, {n, n}, ctx);
  const at::Tensor x0 = field(dust, n, ctx);
  const demix::Reference ref = op.reference(x0);
  const demix::SquaredDistance distance(op.forward(x0, ref).values[0]);
  // A batch of noisy versions, as component separation evaluates them.
  const at::Tensor xb =
      batch == 1 ? x0.unsqueeze(0) : x0.unsqueeze(0) + at::randn({batch, n, n}, x0.options());
  const double stats_s = bench::median_seconds([&] {
    c10::AutoGradMode no_grad(false);
    op.forward(xb, ref);
  });
  reset_peak();
  const double held = memory_mib(false);
  // The loss + gradient as an optimiser loop calls it: recorded as a CUDA graph and replayed where
  // the call's temporaries are small (one map up to 512^2: under 1 GiB, the rule WphOperator
  // applied itself when it held the recordings), eager otherwise and on the CPU.
  const bool record = graphs && batch == 1 && n <= 512;
  demix::LossResult out;
  demix::StepGraph step([&] { out = op.loss_and_grad(xb, distance, ref); }, ctx.device(), record);
  const double grad_s = bench::median_seconds([&] { step(); });
  std::printf("{\"code\": \"%s\", \"n\": %ld, \"J\": %d, \"L\": 4, \"dn\": 2, \"batch\": %d, "
              "\"ncoef\": %ld, \"stats_s\": %.6g, \"loss_grad_s\": %.6g, \"peak_MiB\": %.1f, "
              "\"held_MiB\": %.1f, \"device\": \"%s\"}\n",
              graphs ? "demix-wph" : "demix-wph-no-graph", static_cast<long>(n), J, batch,
              static_cast<long>(op.size()), stats_s, grad_s, memory_mib(true), held,
              ctx.describe().c_str());
  std::fflush(stdout);
}

/// Other families, timed as ../shared/tools/peer_bench.py times their peers (kymatio: sum of the
/// squared maps; Cheng: a sum of squared coefficients), through plain autograd.
void bench_family(const char* code, const std::string& params, int64_t n, int64_t ncoef,
                  const std::function<at::Tensor(const at::Tensor&)>& loss, const at::Tensor& x0) {
  const double stats_s = bench::median_seconds([&] {
    c10::AutoGradMode no_grad(false);
    loss(x0);
  });
  reset_peak();
  const double held = memory_mib(false);
  const double grad_s = bench::median_seconds([&] {
    const at::Tensor x = x0.clone().requires_grad_(true);
    loss(x).backward();
  });
  std::printf("{\"code\": \"%s\", \"n\": %ld, %s, \"ncoef\": %ld, \"stats_s\": %.6g, "
              "\"loss_grad_s\": %.6g, \"peak_MiB\": %.1f, \"held_MiB\": %.1f}\n",
              code, static_cast<long>(n), params.c_str(), static_cast<long>(ncoef), stats_s, grad_s,
              memory_mib(true), held);
  std::fflush(stdout);
}

void bench_wst(const demix::Context& ctx, const std::string& dust, int64_t n, int J) {
  const demix::WstOperator op({.J = J, .L = 8}, {n, n}, ctx);
  bench_family(
      "demix-wst", "\"J\": " + std::to_string(J) + ", \"L\": 8", n, op.channels(),
      [&](const at::Tensor& x) { return op.forward_maps(x).square().sum(); },
      field(dust, n, ctx).unsqueeze(0));
}

void bench_scov(const demix::Context& ctx, const std::string& dust, int64_t n, int J) {
  const demix::ScatteringCovOperator op({.J = J, .L = 4}, {n, n}, ctx);
  const at::Tensor x0 = field(dust, n, ctx).unsqueeze(0);
  bench_family(
      "demix-scattering_cov", "\"J\": " + std::to_string(J) + ", \"L\": 4", n,
      op.forward(x0).size(),
      [&](const at::Tensor& x) { return op.forward(x).values.abs().square().sum(); }, x0);
}

} // namespace

int main(int argc, char** argv) {
  try {
    const bench::Run run = bench::start(argc, argv);
    const demix::Context& ctx = run.context;
    const std::string &dust = run.dust, &mode = run.mode;
    if (mode == "large") { // map sizes up to 4096 x 4096: time and peak memory, batch 1
      for (int64_t n : {1024, 2048, 4096}) bench_wph(ctx, dust, n, 8, 1);
      return 0;
    }
    if (mode != "families") {
      bench_wph(ctx, dust, 256, 7, 1);
      if (mode != "quick") bench_wph(ctx, dust, 256, 7, 100);
      bench_wph(ctx, dust, 512, 8, 1);
    }
    if (mode == "wph") { // loss + gradient without CUDA graphs, for comparison
      bench_wph(ctx, dust, 256, 7, 1, false);
      bench_wph(ctx, dust, 512, 8, 1, false);
      return 0;
    }
    bench_scov(ctx, dust, 256, 7);
    bench_scov(ctx, dust, 512, 8);
    bench_wst(ctx, dust, 256, 6);
    bench_wst(ctx, dust, 512, 7);
  } catch (const std::exception& e) {
    std::cerr << "bench_stats: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

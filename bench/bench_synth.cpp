// Speed and final loss of microcanonical synthesis, one JSON line per figure, in the form of
// ../shared/tools/peer_bench.py synth (pywph's synthesis: scipy L-BFGS-B, 100 iterations):
//   bench_synth [cpu|cuda|auto] [path/to/I_1.npy] [gpu|cpu]
// The target is the shared dust map cropped to n x n (tiled for n > 512), standardised, as the
// peer script does; WPH (L 4, dn 2, norm auto), white-noise start, the loss in pywph's units
// (scale none: sum of squared moduli of the residuals) so that final losses compare directly.
// Cases "gpu": 256^2 J7 (1 map, 8 maps), 1024^2 J7 (1 map); "cpu": 128^2 J6 and 256^2 J7, 1 map.
// total_s: the synthesis run (the operators built before, as the peer builds its WPHOp first),
// after one untimed 2-iteration warm-up run.

#include <demix/core/context.hpp>
#include <demix/io/npy.hpp>
#include <demix/synthesis/microcanonical.hpp>

#include "timing.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <string>

namespace {

/// The dust map cropped (tiled) to n x n and standardised, as (1, 1, n, n).
at::Tensor field(const std::string& dust, int64_t n) {
  at::Tensor x = demix::read_npy(dust).to(at::kFloat);
  x = n <= x.size(0) ? x.narrow(0, 0, n).narrow(1, 0, n) : x.repeat({n / x.size(0), n / x.size(1)});
  x = (x - x.mean()) / x.std();
  return x.view({1, 1, n, n}).contiguous();
}

void bench_synthesis(const demix::Context& ctx, const std::string& dust, int64_t n, int J,
                     int samples, int iterations = 100) {
  demix::SynthesisOptions o;
  o.matching.statistics = {
      {demix::WphOptions{.J = J, .L = 4, .dn = 2, .norm = demix::WphNorm::Auto}, 1.0}};
  o.matching.scale = demix::TermScale::None;
  o.samples = samples;
  o.iterations = 2;
  o.seed = 0;
  const demix::Grid2d grid{n, n};
  const at::Tensor target = field(dust, n);
  demix::Synthesizer(target, o, grid, ctx).run(); // warm-up: kernels, plans, allocator
  o.iterations = iterations;
  const demix::Synthesizer synth(target, o, grid, ctx);
  bench::sync();
  const demix::SynthesisResult r = synth.run();
  bench::sync();
  const at::Tensor final_loss = r.loss_history[-1];
  std::printf("{\"code\": \"demix-synthesis\", \"n\": %ld, \"J\": %d, \"L\": 4, \"dn\": 2, "
              "\"samples\": %d, \"maxiter\": %d, \"iters\": %d, \"evals\": %ld, "
              "\"final_loss\": %.6g, \"final_loss_max\": %.6g, \"initial_loss\": %.6g, "
              "\"total_s\": %.4g, \"device\": \"%s\"}\n",
              static_cast<long>(n), J, samples, iterations, r.iterations,
              static_cast<long>(r.evaluations), final_loss.mean().item<double>(),
              final_loss.max().item<double>(), r.loss_history[0].mean().item<double>(), r.seconds,
              ctx.describe().c_str());
  std::fflush(stdout);
}

/// The cases of the GPU ("gpu") or the 2-core CPU machine ("cpu").
void run_cases(const bench::Run& run) {
  const std::string cases = !run.mode.empty() ? run.mode : (bench::on_cuda ? "gpu" : "cpu");
  if (cases == "gpu") {
    bench_synthesis(run.context, run.dust, 256, 7, 1);
    bench_synthesis(run.context, run.dust, 256, 7, 8);
    bench_synthesis(run.context, run.dust, 1024, 7, 1);
  } else {
    bench_synthesis(run.context, run.dust, 128, 6, 1);
    bench_synthesis(run.context, run.dust, 256, 7, 1);
  }
}

} // namespace

int main(int argc, char** argv) {
  try {
    run_cases(bench::start(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "bench_synth: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

// Speed and final loss of microcanonical synthesis, one JSON line per figure, in the form of
// ../shared/tools/peer_bench.py synth (pywph's synthesis: scipy L-BFGS-B, 100 iterations):
//   bench_synth [cpu|cuda|auto] [path/to/I_1.npy] [gpu|cpu|start=x0.npy[,x1.npy...]]
// The target is the shared dust map cropped to n x n (tiled for n > 512), standardised, as the
// peer script does; WPH (L 4, dn 2, norm auto), white-noise start, the loss in pywph's units
// (scale none: sum of squared moduli of the residuals) so that final losses compare directly.
// Cases "gpu": 256^2 J7 (1 map, 8 maps), 1024^2 J7 (1 map); "cpu": 128^2 J6 and 256^2 J7, 1 map.
// total_s: the synthesis run (the operators built before, as the peer builds its WPHOp first),
// after one untimed 2-iteration warm-up run. eval_ms: one loss + gradient of the batch, as the
// synthesis evaluates it.

#include <demix/core/context.hpp>
#include <demix/io/npy.hpp>
#include <demix/optim/lbfgs.hpp>
#include <demix/optim/step_graph.hpp>
#include <demix/synthesis/microcanonical.hpp>

#include "timing.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

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
  // One loss + gradient of the batch as the synthesis evaluates it (recorded on CUDA), so that
  // the optimiser's own cost per iteration reads as total_s / iters - eval_ms evals / iters.
  const at::Tensor x = synth.prepare(synth.initial_maps());
  at::Tensor loss_out;
  demix::StepGraph eval([&] { loss_out = synth.loss().evaluate(x, true).loss; }, ctx.device());
  const double eval_s = bench::median_seconds([&] { eval(); }, 20, 3);
  const at::Tensor final_loss = r.loss_history[-1];
  std::printf("{\"code\": \"demix-synthesis\", \"n\": %ld, \"J\": %d, \"L\": 4, \"dn\": 2, "
              "\"samples\": %d, \"maxiter\": %d, \"iters\": %d, \"evals\": %ld, "
              "\"final_loss\": %.6g, \"final_loss_max\": %.6g, \"initial_loss\": %.6g, "
              "\"total_s\": %.4g, \"eval_ms\": %.4g, \"device\": \"%s\"}\n",
              static_cast<long>(n), J, samples, iterations, r.iterations,
              static_cast<long>(r.evaluations), final_loss.mean().item<double>(),
              final_loss.max().item<double>(), r.loss_history[0].mean().item<double>(), r.seconds,
              1e3 * eval_s, ctx.describe().c_str());
  std::fflush(stdout);
}

/// The descent of the synthesis (its loss and L-BFGS options) from given starts instead of its
/// seeded noise: standardised n x n maps saved by devel/device/pywph_history.py (a comma-separated
/// list, descended as one batch, each map its own problem), so that final losses compare from the
/// same points. One JSON line per start with its loss after each iteration. J 7 for n >= 256,
/// else 6.
void history_from(const demix::Context& ctx, const std::string& dust, const std::string& starts) {
  std::vector<std::string> paths;
  for (size_t at = 0; at <= starts.size();) {
    const size_t comma = std::min(starts.find(',', at), starts.size());
    paths.push_back(starts.substr(at, comma - at));
    at = comma + 1;
  }
  std::vector<at::Tensor> maps;
  for (const std::string& p : paths) maps.push_back(demix::read_npy(p).to(at::kFloat));
  const at::Tensor x0 = at::stack(maps).unsqueeze(1); // (S, 1, n, n)
  const int64_t n = x0.size(-1), S = x0.size(0);
  const int J = n >= 256 ? 7 : 6;
  demix::SynthesisOptions o;
  o.matching.statistics = {
      {demix::WphOptions{.J = J, .L = 4, .dn = 2, .norm = demix::WphNorm::Auto}, 1.0}};
  o.matching.scale = demix::TermScale::None;
  o.standardize = false; // the starts are in the standardised target's units already
  const demix::Synthesizer synth(field(dust, n), o, demix::Grid2d{n, n}, ctx);
  demix::LbfgsObjective f;
  f.value_and_grad = [&](const at::Tensor& x) {
    demix::MatchingResult r = synth.loss().evaluate(x, true);
    return std::make_pair(r.loss, r.grad);
  };
  std::vector<at::Tensor> history; // (S) each
  const demix::LbfgsResult r = demix::minimize_lbfgs(
      f, ctx.to(x0), {at::arange(S, ctx.options().dtype(at::kLong)), S}, synth.options().lbfgs,
      [&](const demix::LbfgsProgress& p) { history.push_back(p.value.to(at::kCPU, at::kDouble)); });
  for (int64_t i = 0; i < S; ++i) {
    std::printf("{\"code\": \"demix-synthesis-history\", \"start\": \"%s\", \"n\": %ld, "
                "\"J\": %d, \"evals\": %ld, \"final_loss\": %.6g, \"history\": [",
                paths[i].c_str(), static_cast<long>(n), J, static_cast<long>(r.evaluations),
                r.value[i].item<double>());
    for (size_t k = 0; k < history.size(); ++k)
      std::printf("%s%.6g", k ? ", " : "", history[k][i].item<double>());
    std::printf("], \"device\": \"%s\"}\n", ctx.describe().c_str());
  }
  std::fflush(stdout);
}

/// The cases of the GPU ("gpu") or the 2-core CPU machine ("cpu"), or "start=PATH".
void run_cases(const bench::Run& run) {
  const std::string cases = !run.mode.empty() ? run.mode : (bench::on_cuda ? "gpu" : "cpu");
  if (cases.rfind("start=", 0) == 0) {
    history_from(run.context, run.dust, cases.substr(6));
  } else if (cases == "gpu") {
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

// Speed of the galaxy simulator, one JSON line per figure:
//   bench_simulate [cpu|cuda|auto] [stamps] [blends] [threads]   (threads 0: one per core)
// Figures: noiseless stamps per second of the renderer (batch of `stamps` galaxies, median of 3
// after 1 warm-up) and blends per second of BlendSimulator::render (3 to 5 galaxies, noisy), on
// the chosen device in float32.

#include <demix/core/context.hpp>
#include <demix/sim/galaxy.hpp>
#include <demix/sim/population.hpp>
#include <demix/sim/simulate.hpp>

#include "timing.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <string>

namespace {

// Median of 3 timed runs after 1 warm-up: each run renders thousands of stamps.
constexpr int kReps = 3;
constexpr int kWarm = 1;

} // namespace

int main(int argc, char** argv) {
  const std::string device = argc > 1 ? argv[1] : "auto";
  const int64_t stamps = argc > 2 ? std::stoll(argv[2]) : 2000;
  const int64_t blends = argc > 3 ? std::stoll(argv[3]) : 200;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 0;
  const demix::Context ctx({.device = device == "cpu"    ? demix::DeviceKind::Cpu
                                      : device == "cuda" ? demix::DeviceKind::Cuda
                                                         : demix::DeviceKind::Auto,
                            .threads = threads});
  bench::on_cuda = ctx.device().is_cuda();
  const demix::Survey survey = demix::Survey::lsst();
  const demix::Galaxies g = demix::sample_galaxies(survey, stamps, 1);
  demix::Galaxies centred = g;
  centred.x = at::full({stamps}, 22.0, at::kDouble);
  centred.y = at::full({stamps}, 22.0, at::kDouble);
  for (int64_t batch : {48, 128, 256}) {
    const demix::GalaxyRenderer renderer(survey, {.batch_size = batch}, ctx);
    const double t = bench::median_seconds([&] { (void)renderer.render(centred); }, kReps, kWarm);
    std::printf("{\"figure\": \"render_stamps\", \"device\": \"%s\", \"stamps\": %lld, "
                "\"batch\": %lld, \"seconds\": %.4f, \"per_second\": %.1f}\n",
                ctx.describe().c_str(), static_cast<long long>(stamps),
                static_cast<long long>(batch), t, stamps / t);
  }
  const demix::BlendSimulator sim(
      survey, {.count = blends, .seed = 1, .min_galaxies = 3, .max_galaxies = 5}, ctx);
  const double t = bench::median_seconds([&] { (void)sim.render(0, blends); }, kReps, kWarm);
  std::printf("{\"figure\": \"render_blends\", \"device\": \"%s\", \"blends\": %lld, "
              "\"galaxies\": %lld, \"seconds\": %.4f, \"per_second\": %.1f}\n",
              ctx.describe().c_str(), static_cast<long long>(blends),
              static_cast<long long>(sim.galaxy_count()), t, blends / t);
  return 0;
}

// Microcanonical synthesis (include/demix/synthesis/): the matching loss against finite
// differences and against the statistic's own loss, its targets and scales, and the synthesiser:
// the loss falls and the samples' statistics approach the target's, same seed same samples,
// a resumed checkpoint gives the uninterrupted run, recorded CUDA evaluations give the eager
// ones, preprocessing round-trips, the Gaussian
// initial field has the target's spectrum, and bad input is refused.

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/synthesis/microcanonical.hpp>
#include <demix/synthesis/objective.hpp>

#include "support/expect_error.hpp"
#include "support/fields.hpp"
#include "support/statistics.hpp"
#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

using demix::test::cpu64;
using demix::test::expect_error_naming;
using demix::test::lognormal;

demix::StatisticSpec wph(int J) {
  return demix::WphOptions{.J = J, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto};
}

TEST(MatchingLoss, GradientMatchesFiniteDifferencesWithAutoAndCrossTerms) {
  // Two channels: WPH auto terms (chunked engine) and power-spectrum auto and cross terms
  // (autograd over forward_cross), all in one loss; float64, so central differences with
  // h = 1e-5 agree to ~1e-8 relative (truncation h^2, rounding 1e-16 / h).
  const int64_t n = 16;
  const demix::Grid2d grid{n, n};
  const at::Tensor targets = lognormal(1, 2, n, 1).log();
  demix::MatchingOptions o;
  o.statistics = {{wph(2), 1.0}, {demix::PowerSpectrumOptions{.bins = 4}, 0.5}};
  const demix::MatchingLoss loss = demix::match_targets(targets, o, grid, cpu64());
  std::vector<std::string> names;
  for (const demix::MatchTerm& t : loss.terms()) names.push_back(t.name);
  ASSERT_EQ(names, (std::vector<std::string>{"wph[0]", "wph[1]", "wph[0x1]", "ps[0]", "ps[1]",
                                             "ps[0x1]"}));
  at::manual_seed(3);
  const at::Tensor x = at::randn({2, 2, n, n}, at::kDouble);
  const demix::MatchingResult r = loss.evaluate(x);
  ASSERT_EQ(r.loss.sizes(), at::IntArrayRef({2}));
  ASSERT_EQ(r.terms.sizes(), at::IntArrayRef({6, 2}));
  EXPECT_TRUE(at::allclose(r.terms.sum(0), r.loss));
  const double h = 1e-5;
  for (int i = 0; i < 4; ++i) {
    at::Tensor v = at::randn_like(x);
    v /= v.norm();
    const double fd = (loss.evaluate(x + h * v, false).loss.sum().item<double>() -
                       loss.evaluate(x - h * v, false).loss.sum().item<double>()) /
                      (2 * h);
    const double ad = (r.grad * v).sum().item<double>();
    EXPECT_NEAR(fd, ad, 1e-6 * r.grad.norm().item<double>()) << "direction " << i;
  }
  // The cross term's gradient reaches both channels (not vacuous).
  demix::MatchingOptions cross_only;
  cross_only.statistics = {{demix::PowerSpectrumOptions{.bins = 4}, 1.0}};
  const demix::MatchingLoss ps = demix::match_targets(targets, cross_only, grid, cpu64());
  const demix::MatchTerm& t = ps.terms().back();
  ASSERT_EQ(t.cross_channel, 1);
  const demix::MatchingLoss only({t});
  const at::Tensor g = only.evaluate(x).grad;
  EXPECT_GT(g.select(1, 0).norm().item<double>(), 0);
  EXPECT_GT(g.select(1, 1).norm().item<double>(), 0);
}

TEST(MatchingLoss, TargetsAreTheMeanOverMapsAndScalesFollowTheOption) {
  const int64_t n = 16;
  const demix::Grid2d grid{n, n};
  const at::Tensor targets = lognormal(3, 1, n, 2);
  const demix::PowerSpectrumOperator op({.bins = 4}, grid, cpu64());
  const at::Tensor values = op.forward(targets.select(1, 0)).values; // (3, K)
  demix::MatchingOptions o;
  o.statistics = {{demix::PowerSpectrumOptions{.bins = 4}, 1.0}};
  for (const demix::TermScale scale :
       {demix::TermScale::Auto, demix::TermScale::Spread, demix::TermScale::Modulus,
        demix::TermScale::ClassRms, demix::TermScale::StatisticRms, demix::TermScale::None}) {
    o.scale = scale;
    const demix::MatchTerm t = demix::match_targets(targets, o, grid, cpu64()).terms()[0];
    EXPECT_TRUE(at::allclose(t.target, values.mean(0))) << demix::term_scale_name(scale);
    const at::Tensor rms = values.mean(0).square().mean().sqrt().expand({values.size(1)});
    const at::Tensor floor = 1e-3 * rms;
    at::Tensor expected;
    if (scale == demix::TermScale::Auto || scale == demix::TermScale::Spread)
      expected = at::maximum(values.std(0), floor);
    if (scale == demix::TermScale::Modulus) expected = at::maximum(values.mean(0).abs(), floor);
    if (scale == demix::TermScale::ClassRms || scale == demix::TermScale::StatisticRms)
      expected = rms; // the power spectrum has one class
    if (scale == demix::TermScale::None) {
      EXPECT_FALSE(t.scale.defined());
      continue;
    }
    EXPECT_TRUE(at::allclose(t.scale, expected)) << demix::term_scale_name(scale);
  }
  // One target map: Auto is StatisticRms for WPH, one scale for all of a statistic's coefficients
  // (here WPH's six classes), the RMS of |target|.
  demix::MatchingOptions one;
  one.statistics = {{wph(2), 1.0}};
  const demix::MatchTerm w =
      demix::match_targets(targets.narrow(0, 0, 1), one, grid, cpu64()).terms()[0];
  const double rms = w.target.abs().square().mean().sqrt().item<double>();
  EXPECT_TRUE(at::allclose(w.scale, at::full_like(w.scale, rms))) << rms;
  // ... but the power spectrum's bins are each relative to the target (Modulus).
  o.scale = demix::TermScale::Auto;
  const demix::MatchTerm p =
      demix::match_targets(targets.narrow(0, 0, 1), o, grid, cpu64()).terms()[0];
  EXPECT_TRUE(
      at::allclose(p.scale, at::maximum(values[0].abs(), 1e-3 * values[0].square().mean().sqrt())));

  // The loss of the term is the weighted distance, as SquaredDistance computes it.
  o.scale = demix::TermScale::Spread;
  const demix::MatchingLoss loss = demix::match_targets(targets, o, grid, cpu64());
  const at::Tensor x = targets.narrow(0, 0, 2);
  const at::Tensor expected =
      ((op.forward(x.select(1, 0)).values - loss.terms()[0].target) / loss.terms()[0].scale)
          .square()
          .sum(1);
  EXPECT_TRUE(at::allclose(loss.evaluate(x, false).loss, expected));

  o.scale = demix::TermScale::Spread;
  expect_error_naming<demix::ValueError>(
      [&] { demix::match_targets(targets.narrow(0, 0, 1), o, grid, cpu64()); }, {"two or more"});
  o.statistics.clear();
  expect_error_naming<demix::ValueError>([&] { demix::match_targets(targets, o, grid, cpu64()); },
                                         {"no statistic"});
}

demix::SynthesisOptions small_options(int iterations) {
  demix::SynthesisOptions o;
  o.matching.statistics = {{wph(3), 1.0}};
  o.samples = 2;
  o.iterations = iterations;
  o.seed = 7;
  o.log = true;
  o.standardize = true;
  return o;
}

TEST(Synthesis, LossFallsAndSamplesApproachTheTargetStatistics) {
  const int64_t n = 32;
  const demix::Grid2d grid{n, n};
  const at::Tensor target = lognormal(1, 1, n, 4);
  const demix::Synthesizer synth(target, small_options(40), grid, cpu64());
  const demix::SynthesisResult r = synth.run();
  ASSERT_EQ(r.samples.sizes(), at::IntArrayRef({2, 1, n, n}));
  ASSERT_EQ(r.loss_history.size(1), 2);
  EXPECT_EQ(r.loss_history.size(0), r.iterations + 1);
  const at::Tensor first = r.loss_history[0], last = r.loss_history[-1];
  // From white noise the WPH loss falls by orders of magnitude within 40 iterations.
  EXPECT_TRUE((last < 1e-2 * first).all().item<bool>()) << first << last;
  // The loss history never rises: every accepted step decreases the loss.
  EXPECT_TRUE((r.loss_history.diff(1, 0) <= 0).all().item<bool>());
  // Samples are in the targets' units (exp of the log field): positive, with a mean near the
  // target's. Their power spectrum, which the loss does not hold directly, approaches the
  // target's: within 35 % in every bin but the mean's, where the white-noise start is off by
  // more than a factor 3 somewhere.
  EXPECT_TRUE((r.samples > 0).all().item<bool>());
  EXPECT_NEAR(r.samples.mean().item<double>() / target.mean().item<double>(), 1.0, 0.1);
  const demix::PowerSpectrumOperator ps({.bins = 6}, grid, cpu64());
  const auto spectrum = [&](const at::Tensor& maps) {
    return ps.forward(maps.log().flatten(0, 1)).values.narrow(1, 1, 5);
  };
  const at::Tensor p_target = spectrum(target)[0];
  const at::Tensor start_ratio = spectrum(synth.initial_maps()) / p_target;
  const at::Tensor sample_ratio = spectrum(r.samples) / p_target;
  EXPECT_GT((start_ratio - 1).abs().max().item<double>(), 2.0) << start_ratio;
  EXPECT_LT((sample_ratio - 1).abs().max().item<double>(), 0.35) << sample_ratio;
  // The final term losses are the last loss.
  EXPECT_TRUE(at::allclose(r.term_losses.sum(0), last, 1e-9, 1e-12));
}

TEST(Synthesis, SameSeedSameSamplesAndResumedRunEqualsUninterrupted) {
  const int64_t n = 16;
  const demix::Grid2d grid{n, n};
  const at::Tensor target = lognormal(1, 1, n, 5);
  demix::SynthesisOptions o = small_options(12);
  o.matching.statistics = {{wph(2), 1.0}};
  const demix::SynthesisResult whole = demix::Synthesizer(target, o, grid, cpu64()).run();
  const demix::SynthesisResult again = demix::Synthesizer(target, o, grid, cpu64()).run();
  EXPECT_TRUE(at::equal(whole.samples, again.samples));
  o.seed = 8;
  const demix::SynthesisResult other = demix::Synthesizer(target, o, grid, cpu64()).run();
  EXPECT_FALSE(at::allclose(whole.samples, other.samples));
  o.seed = 7;

  // Stopped after 5 iterations, with a checkpoint every 2 and at the end; resumed to 12.
  const demix::test::TempDir dir;
  const std::string ckpt = dir.path("run.ckpt");
  demix::SynthesisOptions part = o;
  part.iterations = 5;
  std::vector<int> seen;
  demix::SynthesisRun first;
  first.checkpoint = ckpt;
  first.checkpoint_every = 2;
  first.progress = [&](const demix::SynthesisProgress& p) {
    seen.push_back(p.iteration);
    EXPECT_EQ(p.iterations, 5);
    EXPECT_GE(p.iterations_per_s, 0);
  };
  const demix::SynthesisResult stopped = demix::Synthesizer(target, part, grid, cpu64()).run(first);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(stopped.iterations, 5);
  demix::SynthesisRun second;
  second.resume = ckpt;
  const demix::SynthesisResult resumed = demix::Synthesizer(target, o, grid, cpu64()).run(second);
  EXPECT_EQ(resumed.iterations, whole.iterations);
  EXPECT_TRUE(at::equal(resumed.samples, whole.samples));
  EXPECT_TRUE(at::equal(resumed.loss_history, whole.loss_history));
  EXPECT_EQ(resumed.evaluations, whole.evaluations);

  // A checkpoint of another synthesis is refused, naming what differs.
  demix::SynthesisOptions changed = o;
  changed.seed = 9;
  expect_error_naming<demix::ValueError>(
      [&] { demix::Synthesizer(target, changed, grid, cpu64()).run(second); },
      {"another synthesis", "seed 9"});
}

TEST(Synthesis, RecordedEvaluationsEqualEagerOnCuda) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const demix::Context cuda64(
      {.device = demix::DeviceKind::Cuda, .precision = demix::Precision::Float64});
  const int64_t n = 32;
  const demix::Grid2d grid{n, n};
  const at::Tensor target = lognormal(1, 1, n, 4);
  demix::SynthesisOptions o = small_options(15);
  const demix::SynthesisResult replayed = demix::Synthesizer(target, o, grid, cuda64).run();
  o.cuda_graphs = false;
  const demix::SynthesisResult eager = demix::Synthesizer(target, o, grid, cuda64).run();
  EXPECT_EQ(replayed.evaluations, eager.evaluations);
  // float64, the same kernels up to the order of CUDA's atomic additions: 1e-9 of maps of O(1).
  EXPECT_TRUE(at::allclose(replayed.samples, eager.samples, 1e-9, 1e-9))
      << (replayed.samples - eager.samples).abs().max();
  EXPECT_TRUE(at::allclose(replayed.loss_history, eager.loss_history, 1e-7, 1e-12));
  // And the CPU's descent, to the same rounding.
  const demix::SynthesisResult cpu = demix::Synthesizer(target, o, grid, cpu64()).run();
  EXPECT_TRUE(at::allclose(replayed.samples.cpu(), cpu.samples, 1e-7, 1e-7))
      << (replayed.samples.cpu() - cpu.samples).abs().max();
}

TEST(Synthesis, PreprocessingRoundTripsAndTheGaussianStartHasTheTargetSpectrum) {
  const int64_t n = 32;
  const demix::Grid2d grid{n, n};
  const at::Tensor targets = lognormal(2, 1, n, 6);
  demix::SynthesisOptions o = small_options(0);
  o.samples = 64;
  o.init = demix::SynthesisInit::Gaussian;
  const demix::Synthesizer synth(targets, o, grid, cpu64());
  EXPECT_TRUE(at::allclose(synth.restore(synth.prepare(targets)), targets, 1e-12, 1e-12));
  const at::Tensor prepared = synth.prepared_targets();
  EXPECT_NEAR(prepared.mean().item<double>(), 0, 1e-12);
  EXPECT_NEAR(prepared.square().mean().item<double>(), 1, 1e-12);
  // The mean spectrum of 64 Gaussian starts against the targets' (in the prepared space): each
  // linear bin holds >= 24 modes, so 64 maps give a relative standard error <= 1 / sqrt(64 * 12)
  // per bin (pairs of modes +-k are one complex mode); 15 % is over 4 standard errors.
  const demix::PowerSpectrumOperator ps({.bins = 8}, grid, cpu64());
  const at::Tensor start = synth.prepare(synth.initial_maps()).select(1, 0);
  const at::Tensor p_start = ps.forward(start).values.mean(0);
  const at::Tensor p_target = ps.forward(prepared.select(1, 0)).values.mean(0);
  const at::Tensor ratio = (p_start / p_target).narrow(0, 1, 7); // bin 0 holds the mean
  EXPECT_TRUE(((ratio - 1).abs() < 0.15).all().item<bool>()) << ratio;
  // Not vacuous: white noise has another spectrum (the targets' is steep).
  o.init = demix::SynthesisInit::Noise;
  const demix::Synthesizer noise(targets, o, grid, cpu64());
  const at::Tensor p_noise = ps.forward(noise.prepare(noise.initial_maps()).select(1, 0)).values;
  EXPECT_GT((p_noise.mean(0) / p_target).narrow(0, 1, 7).max().item<double>(), 3.0);
}

TEST(Synthesis, ComplexMapsQPlusIU) {
  // Polarisation as one complex map Q + iU: the optimiser sees (..., 2) real pairs, the samples
  // come back complex, and the WPH loss (complex_data) falls.
  const int64_t n = 16;
  const demix::Grid2d grid{n, n};
  const at::Tensor qu = lognormal(1, 2, n, 8).log();
  const at::Tensor target = at::complex(qu.narrow(1, 0, 1), qu.narrow(1, 1, 1)); // (1, 1, n, n)
  demix::SynthesisOptions o;
  o.matching.statistics = {
      {demix::WphOptions{
           .J = 2, .L = 4, .dn = 1, .complex_data = true, .norm = demix::WphNorm::Auto},
       1.0}};
  o.iterations = 15;
  o.seed = 3;
  o.standardize = true;
  const demix::SynthesisResult r = demix::Synthesizer(target, o, grid, cpu64()).run();
  EXPECT_TRUE(r.samples.is_complex());
  EXPECT_EQ(r.samples.sizes(), target.sizes());
  EXPECT_LT(r.loss_history[-1][0].item<double>(), 1e-2 * r.loss_history[0][0].item<double>());
  o.log = true;
  expect_error_naming<demix::ValueError>([&] { demix::Synthesizer(target, o, grid, cpu64()); },
                                         {"complex"});
}

TEST(Synthesis, BadInputIsRefused) {
  const int64_t n = 16;
  const demix::Grid2d grid{n, n};
  const at::Tensor target = lognormal(1, 1, n, 7);
  demix::SynthesisOptions o = small_options(1);
  expect_error_naming<demix::ValueError>([&] { demix::Synthesizer(target - 2, o, grid, cpu64()); },
                                         {"> 0", "minimum"});
  at::Tensor nan = target.clone();
  nan[0][0][3][3] = std::nan("");
  expect_error_naming<demix::ValueError>([&] { demix::Synthesizer(nan, o, grid, cpu64()); },
                                         {"1 NaN"});
  expect_error_naming<demix::ShapeError>([&] { demix::Synthesizer(target[0], o, grid, cpu64()); },
                                         {"(T, C, H, W)"});
  o.samples = 0;
  expect_error_naming<demix::ValueError>([&] { demix::Synthesizer(target, o, grid, cpu64()); },
                                         {"samples", "0"});
  o.samples = 1;
  o.matching.statistics = {{wph(5), 1.0}}; // 2^5 > 16
  EXPECT_THROW(demix::Synthesizer(target, o, grid, cpu64()), demix::ValueError);
}

} // namespace

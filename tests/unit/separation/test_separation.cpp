// Statistical component separation (include/demix/separation/): the per-part distance against
// its formula, the era loss's targets, spreads and dropped parts against a direct computation, the
// realizations estimator against one realization at a time, both estimators recovering a
// log-normal field from white noise better than the observation does, the staged schedule, the
// Wiener filter against a brute-force per-annulus filter, and bad input.

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/separation/component_separation.hpp>
#include <demix/stats/loss.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/stats/region_variance.hpp>

#include "support/expect_error.hpp"
#include "support/fields.hpp"
#include "support/statistics.hpp"
#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <string>

namespace {

using demix::test::cpu64;
using demix::test::expect_error_naming;
using demix::test::lognormal;

/// A noisy observation of a standardised log-normal field (skewed: what a Gaussian field is not,
/// and what statistics beyond the spectrum can tell from noise): signal (1, n, n), noise
/// realizations (M, 1, n, n) of white noise of deviation sigma, the observation d = s + one more
/// realization.
struct Noisy {
  at::Tensor signal, observation, realizations;
};
Noisy noisy(int64_t n, int64_t M, double sigma, uint64_t seed) {
  at::Tensor s = lognormal(1, 1, n, seed)[0];
  s = (s - s.mean()) / s.std();
  at::manual_seed(seed + 100);
  const at::Tensor c = sigma * at::randn({M + 1, 1, n, n}, at::kDouble);
  return {s, s + c[0], c.narrow(0, 1, M)};
}

demix::StatisticSpec wph(int J) {
  return demix::WphOptions{.J = J, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto};
}

/// The gradient of an era's loss at u against central differences along v (float64: error O(h^2)
/// plus rounding 1e-16 / h, about 1e-9 here; 1e-6 relative).
void expect_gradient_is_the_slope(const demix::Separator& sep, const demix::SeparationLoss& loss,
                                  const at::Tensor& u, const at::Tensor& v,
                                  const std::string& label = "") {
  const double h = 1e-5;
  const double slope =
      (sep.evaluate(loss, u + h * v, false).loss - sep.evaluate(loss, u - h * v, false).loss)
          .item<double>() /
      (2 * h);
  const double directional = (sep.evaluate(loss, u).grad * v).sum().item<double>();
  EXPECT_NEAR(slope, directional, 1e-6 * std::abs(directional)) << label;
}

double mse(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).square().mean().item<double>();
}

TEST(SquaredDistance, RealAndImaginaryPartsWeightedApart) {
  at::manual_seed(1);
  const at::Tensor target = at::randn({6}, at::kComplexDouble);
  const at::Tensor values = at::randn({3, 4}, at::kComplexDouble);
  const at::Tensor rows = at::tensor({5, 0, 2, 3}, at::kLong);
  const at::Tensor wr = at::rand({6}, at::kDouble), wi = at::rand({6}, at::kDouble);
  const demix::SquaredDistance split(target, wr, wi);
  const at::Tensor r = values - target.index_select(0, rows);
  const at::Tensor expected = (at::real(r).square() * wr.index_select(0, rows) +
                               at::imag(r).square() * wi.index_select(0, rows))
                                  .sum(1);
  EXPECT_TRUE(at::allclose(split.chunk(values, rows, 0), expected));
  // Equal weights: the plain weighted distance.
  const demix::SquaredDistance same(target, wr, wr), plain(target, wr);
  EXPECT_TRUE(at::allclose(same.chunk(values, rows, 0), plain.chunk(values, rows, 0)));
  expect_error_naming<demix::ShapeError>([&] { demix::SquaredDistance(target, {}, wi); },
                                         {"imaginary"});
}

TEST(Separation, EraLossHoldsTheSpreadsAndTheBiasCorrectedTargets) {
  const int64_t n = 16, M = 6;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, M, 0.5, 3);
  demix::SeparationOptions o;
  o.statistics = {{wph(2), 1.0}};
  o.chunk = 4; // two chunks of realizations
  const demix::Separator sep(p.observation, p.realizations, o, grid, cpu64());
  const demix::WphOperator op(std::get<demix::WphOptions>(wph(2)), grid, cpu64());
  const demix::Reference ref = op.reference(p.observation);
  const at::Tensor estimate = p.observation * 0.8;
  const at::Tensor V = op.forward((estimate + p.realizations).select(1, 0), ref).values; // (M, K)
  const at::Tensor phi_d = op.forward(p.observation, ref).values[0];
  const at::Tensor phi_e = op.forward(estimate, ref).values[0];

  const demix::MatchingLoss bias = sep.era_loss(estimate, 1).main;
  ASSERT_EQ(bias.terms().size(), 1u);
  const demix::MatchTerm& t = bias.terms()[0];
  EXPECT_TRUE(at::allclose(t.target, phi_d - (V.mean(0) - phi_e), 1e-9, 1e-12));
  // Spreads per part; parts without spread (normalised to exactly 1, imaginary parts of real
  // products) are dropped (infinite scale) and the weight is one over the parts kept.
  const at::Tensor sr = at::real(V).std(0), si = at::imag(V).std(0);
  const at::Tensor kept_r = at::isfinite(t.scale), kept_i = at::isfinite(t.scale_imag);
  EXPECT_TRUE(at::allclose(t.scale.masked_select(kept_r), sr.masked_select(kept_r)));
  EXPECT_TRUE(at::allclose(t.scale_imag.masked_select(kept_i), si.masked_select(kept_i)));
  const double rms = at::cat({sr, si}).square().mean().sqrt().item<double>();
  EXPECT_TRUE(at::equal(kept_r, sr > 1e-6 * rms));
  EXPECT_TRUE(at::equal(kept_i, si > 1e-6 * rms));
  const int64_t kept = kept_r.sum().item<int64_t>() + kept_i.sum().item<int64_t>();
  EXPECT_LT(kept, 2 * V.size(1)); // not vacuous: some parts are dropped...
  EXPECT_GT(kept, V.size(1));     // ... most are kept
  EXPECT_DOUBLE_EQ(t.weight, 1.0 / static_cast<double>(kept));

  // The realizations estimator: the observation's statistics as the target, and its loss the
  // mean over the realizations of the loss of u + c_i.
  o.estimator = demix::SeparationEstimator::Realizations;
  const demix::Separator real(p.observation, p.realizations, o, grid, cpu64());
  const demix::SeparationLoss era = real.era_loss(estimate, 1);
  const demix::MatchingLoss& loss = era.main;
  EXPECT_FALSE(era.further.has_value());
  EXPECT_TRUE(at::allclose(loss.terms()[0].target, phi_d));
  const at::Tensor u = estimate.unsqueeze(0); // (1, 1, n, n)
  const demix::MatchingResult r = real.evaluate(era, u);
  at::Tensor l = at::zeros({1}, at::kDouble), g = at::zeros_like(u);
  for (int64_t i = 0; i < M; ++i) {
    const demix::MatchingResult one = loss.evaluate(u + p.realizations[i].unsqueeze(0));
    l = l + one.loss / M, g = g + one.grad / M;
  }
  EXPECT_TRUE(at::allclose(r.loss, l, 1e-10, 0));
  EXPECT_TRUE(at::allclose(r.grad, g, 1e-9, 1e-12));
}

TEST(Separation, BothEstimatorsRecoverTheSignalBetterThanTheObservation) {
  const int64_t n = 32, M = 10;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, M, 1.0, 5); // SNR 1
  const demix::PowerSpectrumOperator ps({.bins = 5, .binning = demix::PsBinning::Log}, grid,
                                        cpu64());
  const at::Tensor p_true = ps.forward(p.signal).values[0];
  for (const auto estimator :
       {demix::SeparationEstimator::Bias, demix::SeparationEstimator::Realizations}) {
    demix::SeparationOptions o;
    o.statistics = {{wph(4), 1.0}};
    o.estimator = estimator;
    o.eras = 2;
    o.iterations = 20;
    int reports = 0;
    const demix::SeparationResult r =
        demix::Separator(p.observation, p.realizations, o, grid, cpu64())
            .run([&](const demix::SeparationProgress& q) {
              ++reports;
              EXPECT_EQ(q.eras, 2);
            });
    const char* name = demix::separation_estimator_name(estimator);
    EXPECT_EQ(reports, 40) << name;
    ASSERT_EQ(r.loss_history.size(), 2u);
    // Each era descends (the first from d by far; the next from a loss re-normalised at s~).
    EXPECT_LT(r.loss_history[0].back(), 0.5 * r.loss_history[0].front()) << name;
    EXPECT_LT(r.loss_history[1].back(), r.loss_history[1].front()) << name;
    EXPECT_TRUE(at::allclose(r.signal + r.contamination, p.observation));
    // The noise is white: d's error is its full variance (1); the separation removes some.
    // (On a map this small the Wiener filter has less pixel error, about 0.4.)
    const double err = mse(r.signal, p.signal), err_d = mse(p.observation, p.signal);
    EXPECT_LT(err, 0.95 * err_d) << name << " " << err << " " << err_d;
    // The spectrum at high k, where the noise dominates d's (3.3 times the truth's power), comes
    // closer to the truth.
    const auto off = [&](const at::Tensor& map) {
      return (ps.forward(map).values[0][-1] / p_true[-1] - 1).abs().item<double>();
    };
    const double off_sep = off(r.signal), off_d = off(p.observation);
    EXPECT_LT(off_sep, 0.6 * off_d) << name << " " << off_sep << " " << off_d;
  }
}

// The same separation on the GPU as on the CPU (float64: the same arithmetic up to the order of
// reductions), for both estimators, a filtered start, every further term and fresh draws.
TEST(Separation, CudaEqualsCpu) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const demix::Context cuda64(
      {.device = demix::DeviceKind::Cuda, .precision = demix::Precision::Float64});
  const int64_t n = 32;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, 6, 0.7, 11);
  for (const auto estimator :
       {demix::SeparationEstimator::Bias, demix::SeparationEstimator::Realizations}) {
    demix::SeparationOptions o;
    o.statistics = {{wph(3), 1.0}, {demix::PowerSpectrumOptions{}, 1.0}};
    o.estimator = estimator;
    o.eras = 2, o.iterations = 8, o.chunk = 4;
    o.start = demix::SeparationStart::Matched;
    // Realizations: 4 of the 6 drawn afresh each evaluation (on the CPU: the same draws).
    if (estimator == demix::SeparationEstimator::Realizations) o.fresh_realizations = 4;
    o.terms = {.contamination = 0.5,
               .independence = 0.5,
               .template_correlation = 1,
               .half_missions = 1,
               .residual_variance = 0.5};
    const demix::SeparationMaps maps{p.signal, p.observation.unsqueeze(0).expand({2, 1, n, n}),
                                     (at::arange(n * n, at::kLong) % 3).view({n, n})};
    const demix::SeparationResult cpu =
        demix::Separator(p.observation, p.realizations, o, grid, cpu64(), maps).run();
    const demix::SeparationResult gpu =
        demix::Separator(p.observation, p.realizations, o, grid, cuda64, maps).run();
    // Line searches branch on loss comparisons, so rounding may steer the two runs apart late:
    // the losses agree to 1e-6 relative, the maps to 1e-4 of their O(1) values.
    ASSERT_EQ(cpu.loss_history.size(), gpu.loss_history.size());
    EXPECT_NEAR(cpu.loss_history.back().back(), gpu.loss_history.back().back(),
                1e-6 * std::abs(cpu.loss_history.back().back()));
    EXPECT_TRUE(at::allclose(gpu.signal.cpu(), cpu.signal, 1e-4, 1e-4))
        << demix::separation_estimator_name(estimator);
  }
}

TEST(Separation, StagedScheduleMatchesTheSpectrumFirst) {
  const int64_t n = 16;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, 4, 0.5, 2);
  demix::SeparationOptions o;
  o.statistics = {{wph(2), 1.0}};
  o.eras = 2;
  o.iterations = 3;
  o.spectrum_eras = 1;
  const demix::Separator sep(p.observation, p.realizations, o, grid, cpu64());
  EXPECT_EQ(sep.era_loss(p.observation, 1).main.terms()[0].name, "ps[0]");
  EXPECT_EQ(sep.era_loss(p.observation, 2).main.terms()[0].name, "wph[0]");
  const demix::SeparationResult r = sep.run();
  ASSERT_EQ(r.kept_parts.size(), 2u);
  EXPECT_LT(r.kept_parts[0], r.kept_parts[1]); // the spectrum's bins, then WPH's parts
  o.spectrum_eras = 2;
  expect_error_naming<demix::ValueError>(
      [&] { demix::Separator(p.observation, p.realizations, o, grid, cpu64()); },
      {"spectrum_eras", "eras = 2"});
}

TEST(WienerFilter, IsTheAnnulusGainAndBeatsTheObservation) {
  const int64_t n = 12, M = 30;
  const Noisy p = noisy(n, M, 0.7, 9);
  const at::Tensor ps = demix::estimate_signal_power(p.observation, p.realizations);
  const at::Tensor w = demix::wiener_filter(p.observation, p.realizations);
  const at::Tensor matched =
      demix::wiener_filter(p.observation, p.realizations, {}, demix::FilterGain::Matched);
  // Brute force: the gain of every mode from the annulus mean of the realizations' power.
  const at::Tensor D = at::fft_fft2(p.observation[0]);
  const at::Tensor Pc = at::fft_fft2(p.realizations.select(1, 0)).abs().square().mean(0);
  at::Tensor gain = at::zeros({n, n}, at::kDouble);
  const auto freq = [&](int64_t i) { return static_cast<double>(i < n / 2 + (n % 2) ? i : i - n); };
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b) {
      const auto ring = [&](int64_t y, int64_t x) {
        return std::lround(std::sqrt(freq(y) * freq(y) + freq(x) * freq(x)));
      };
      double pc = 0;
      int count = 0;
      for (int64_t y = 0; y < n; ++y)
        for (int64_t x = 0; x < n; ++x)
          if (ring(y, x) == ring(a, b)) pc += Pc[y][x].item<double>(), ++count;
      const double s = ps[0][a][b].item<double>();
      gain[a][b] = s + pc / count > 0 ? s / (s + pc / count) : 0.0;
    }
  EXPECT_TRUE(at::allclose(w[0], at::real(at::fft_ifft2(D * gain)), 1e-9, 1e-12));
  EXPECT_TRUE(at::allclose(matched[0], at::real(at::fft_ifft2(D * gain.sqrt())), 1e-9, 1e-12));
  // With the truth's spectrum per mode it beats the observation.
  const at::Tensor truth_power = at::fft_fft2(p.signal).abs().square();
  const at::Tensor oracle = demix::wiener_filter(p.observation, p.realizations, truth_power);
  EXPECT_LT(mse(oracle, p.signal), 0.6 * mse(p.observation, p.signal));
  // Without contamination it passes the map through.
  EXPECT_TRUE(at::allclose(demix::wiener_filter(p.observation, 0 * p.realizations), p.observation,
                           1e-9, 1e-9));
}

// A Gaussian field of spectrum k^-3 in white noise: where the signal is detected the estimate is
// P_d - P_c per annulus (brute force), beyond it follows the power law that the noise hides; the
// matched filter keeps the spectrum where the Wiener filter loses it.
TEST(WienerFilter, SpectrumEstimateExtrapolatesThePowerLawAndTheMatchedGainKeepsIt) {
  const int64_t n = 128, M = 20;
  at::manual_seed(5);
  const at::Tensor k = at::fft_fftfreq(n, 1.0, at::kDouble) * static_cast<double>(n);
  const at::Tensor kk = (k.view({-1, 1}).square() + k.view({1, -1}).square()).sqrt();
  const at::Tensor ring = kk.round();
  // |fft|^2 per mode: n^2 1e4 k^-3 for the signal, n^2 for the noise (deviation 1).
  const at::Tensor truth_power = (1e4 * n * n * ring.clamp_min(1).pow(-3.0)).unsqueeze(0);
  const at::Tensor s = at::real(at::fft_ifft2(at::fft_fft2(at::randn({1, n, n}, at::kDouble)) *
                                              (truth_power / (n * n)).sqrt()));
  const at::Tensor c = at::randn({M + 1, 1, n, n}, at::kDouble);
  const at::Tensor d = s + c[0], realizations = c.narrow(0, 1, M);
  const at::Tensor ps = demix::estimate_signal_power(d, realizations)[0];
  // Brute force of the annulus means.
  const at::Tensor pd = demix::radial_average(at::fft_fft2(d).abs().square())[0];
  const at::Tensor pc = demix::radial_average(
      at::fft_fft2(realizations.select(1, 0)).abs().square().mean(0, true))[0];
  const at::Tensor low = ring <= 8; // P_s / P_c >= 19: detected
  EXPECT_TRUE(
      at::allclose(ps.masked_select(low), (pd - pc).clamp_min(0).masked_select(low), 1e-9, 1e-9));
  // Where the noise power is 10 times the signal's and more, the annulus values are mostly noise,
  // the estimate the power law: within 30 % of it (the slope fitted on a few dozen annuli).
  const at::Tensor deep = (1.0 * n * n) > 10 * truth_power[0];
  ASSERT_GT(deep.sum().item<int64_t>(), n * n / 2);
  const at::Tensor ratio = ps.masked_select(deep) / truth_power[0].masked_select(deep);
  EXPECT_LT((ratio - 1).abs().max().item<double>(), 0.3) << ratio.min() << ratio.max();
  // The matched filter with the true spectrum keeps the power of every annulus on average (here,
  // all the annuli beyond k = 40 together, within 10 %: a few thousand modes); Wiener's is lower.
  const auto power = [&](const at::Tensor& x) {
    return at::fft_fft2(x[0]).abs().square().masked_select(ring > 40).mean().item<double>();
  };
  const double true_power = power(s);
  EXPECT_NEAR(
      power(demix::wiener_filter(d, realizations, truth_power, demix::FilterGain::Matched)) /
          true_power,
      1.0, 0.1);
  EXPECT_LT(power(demix::wiener_filter(d, realizations, truth_power)), 0.5 * true_power);
}

// The further terms: each target from its formula (power spectrum: a direct computation), the
// loss's gradient the slope of the loss (central differences: the chain rule through d - u and the
// cross channels), and a term's weight scales its contribution.
TEST(Separation, FurtherTermsHaveTheirTargetsAndTheLossItsSlope) {
  const int64_t n = 16, M = 6;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, M, 0.5, 21);
  at::manual_seed(3);
  demix::SeparationMaps maps;
  maps.template_map = p.signal + 0.3 * at::randn_like(p.signal);
  const at::Tensor halves = std::sqrt(2.0) * 0.5 * at::randn({2, 1, n, n}, at::kDouble);
  maps.half_missions = p.signal.unsqueeze(0) + halves;
  demix::SeparationOptions o;
  o.statistics = {{demix::PowerSpectrumOptions{}, 1.0}};
  o.terms = {
      .contamination = 1, .independence = 0.5, .template_correlation = 2, .half_missions = 0.7};
  o.chunk = 4;
  const demix::Separator sep(p.observation, p.realizations, o, grid, cpu64(), maps);
  const at::Tensor e = p.observation * 0.8;
  const demix::SeparationLoss era = sep.era_loss(e, 1);
  ASSERT_TRUE(era.further.has_value());
  const auto& terms = era.further->terms();
  ASSERT_EQ(terms.size(), 4u);
  const demix::PowerSpectrumOperator ps({}, grid, cpu64());
  const auto cross = [&](const at::Tensor& a, const at::Tensor& b) {
    return ps.forward_cross(a, b).values;
  };
  const at::Tensor c = p.realizations.select(1, 0), T = maps.template_map; // (M, n, n), (1, n, n)
  const at::Tensor d1 = maps.half_missions[0], d2 = maps.half_missions[1];
  const std::vector<std::pair<std::string, at::Tensor>> expected{
      {"ps[0] contamination", ps.forward(c).values.mean(0)},
      {"ps[0] independence", cross(e.expand_as(c), c).mean(0)},
      {"ps[0] template",
       cross(T, p.observation)[0] - (cross(T.expand_as(c), e + c).mean(0) - cross(T, e)[0])},
      {"ps[0] half-missions", cross(d1, d2)[0]}};
  for (std::size_t i = 0; i < terms.size(); ++i) {
    EXPECT_EQ(terms[i].name, expected[i].first);
    EXPECT_TRUE(at::allclose(terms[i].target, expected[i].second, 1e-9, 1e-12)) << terms[i].name;
  }
  // The channels each term reads: u = 0, d - u = 1, T = 2.
  EXPECT_EQ(terms[0].channel, 1);
  EXPECT_EQ(terms[1].channel, 0);
  EXPECT_EQ(terms[1].cross_channel, 1);
  EXPECT_EQ(terms[2].channel, 2);
  EXPECT_EQ(terms[2].cross_channel, 0);
  EXPECT_EQ(terms[3].channel, 0);
  EXPECT_EQ(terms[3].cross_channel, 0);

  // With WPH beside the spectrum and the residual variance of two regions, both estimators:
  // the gradient against central differences.
  o.statistics = {{wph(2), 1.0}, {demix::PowerSpectrumOptions{}, 1.0}};
  o.terms.residual_variance = 0.8;
  maps.regions = at::zeros({n, n}, at::kLong);
  maps.regions.narrow(0, 0, n / 4).fill_(1);
  for (const auto estimator :
       {demix::SeparationEstimator::Bias, demix::SeparationEstimator::Realizations}) {
    o.estimator = estimator;
    const demix::Separator both(p.observation, p.realizations, o, grid, cpu64(), maps);
    const demix::SeparationLoss loss = both.era_loss(e, 1);
    ASSERT_EQ(loss.further->terms().size(), 9u);
    const at::Tensor u = (e + 0.1 * at::randn_like(e)).unsqueeze(0);
    const at::Tensor v = at::randn_like(u);
    const demix::MatchingResult r = both.evaluate(loss, u);
    EXPECT_EQ(r.terms.size(0), 2 + 9);
    EXPECT_NEAR(r.terms.sum().item<double>(), r.loss.item<double>(), 1e-12);
    expect_gradient_is_the_slope(both, loss, u, v, demix::separation_estimator_name(estimator));
  }
}

// A noise four times stronger on the right half than on the left: the residual-variance term's
// target is each half's mean variance over the realizations, and with the term the separated
// residual d - s~ has each half's noise level, closer than without it.
TEST(Separation, ResidualVarianceFollowsANonStationaryNoise) {
  const int64_t n = 32, M = 8;
  const demix::Grid2d grid{n, n};
  at::Tensor s = lognormal(1, 1, n, 31)[0];
  s = (s - s.mean()) / s.std(); // (1, n, n)
  at::Tensor sigma = at::full({1, n, n}, 0.3, at::kDouble);
  sigma.narrow(2, n / 2, n / 2).fill_(1.2);
  at::manual_seed(32);
  const at::Tensor c = sigma * at::randn({M + 1, 1, n, n}, at::kDouble);
  const at::Tensor d = s + c[0], realizations = c.narrow(0, 1, M);
  demix::SeparationMaps maps;
  maps.regions = at::zeros({n, n}, at::kLong);
  maps.regions.narrow(1, n / 2, n / 2).fill_(1);
  demix::SeparationOptions o;
  o.statistics = {{wph(3), 1.0}};
  o.eras = 2;
  o.iterations = 15;
  o.terms.residual_variance = 1;
  const demix::Separator with(d, realizations, o, grid, cpu64(), maps);
  const demix::SeparationLoss era = with.era_loss(d, 1);
  ASSERT_TRUE(era.further.has_value());
  const auto& terms = era.further->terms();
  ASSERT_EQ(terms.size(), 1u);
  EXPECT_EQ(terms[0].name, "[0] residual variance");
  EXPECT_EQ(terms[0].channel, 1); // d - u
  const demix::RegionVarianceOperator regvar(maps.regions, grid, cpu64());
  const at::Tensor noise_level = regvar.forward(realizations.select(1, 0)).values.mean(0);
  EXPECT_TRUE(at::allclose(terms[0].target, noise_level, 1e-12, 0));

  const auto level_error = [&](const demix::SeparationResult& r) {
    return (regvar.forward(r.contamination).values[0] / noise_level - 1).abs().max().item<double>();
  };
  const double err_with = level_error(with.run());
  o.terms.residual_variance = 0;
  const double err_without = level_error(demix::Separator(d, realizations, o, grid, cpu64()).run());
  EXPECT_LT(err_with, err_without) << err_with << " " << err_without;
  EXPECT_LT(err_with, 0.2) << err_with;
  // No region map: refused.
  o.terms.residual_variance = 1;
  expect_error_naming<demix::ValueError>(
      [&] { demix::Separator(d, realizations, o, grid, cpu64()); }, {"region map"});
}

// A run stopped in its second era and resumed from its checkpoint ends where the uninterrupted
// run ends (CPU: the same arithmetic, bit for bit); a checkpoint of another separation, or a file
// that is none, is refused.
// Two channels: the cross statistic of the pair joins the main term with its bias-corrected
// target (power spectrum: direct computation), and the loss's gradient is its slope.
TEST(Separation, ChannelPairsHaveCrossTerms) {
  const int64_t n = 16, M = 6;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, M, 0.5, 31);
  at::manual_seed(8);
  const at::Tensor s2 = at::cat({p.signal, 0.5 * p.signal + 0.2 * at::randn_like(p.signal)});
  const at::Tensor c = 0.4 * at::randn({M + 1, 2, n, n}, at::kDouble);
  const at::Tensor d = s2 + c[0], realizations = c.narrow(0, 1, M);
  demix::SeparationOptions o;
  o.statistics = {{demix::PowerSpectrumOptions{}, 1.0}};
  const demix::Separator sep(d, realizations, o, grid, cpu64());
  const at::Tensor e = 0.8 * d;
  const demix::MatchingLoss loss = sep.era_loss(e, 1).main;
  ASSERT_EQ(loss.terms().size(), 3u);
  const demix::MatchTerm& pair = loss.terms()[2];
  EXPECT_EQ(pair.name, "ps[0x1]");
  EXPECT_EQ(pair.channel, 0);
  EXPECT_EQ(pair.cross_channel, 1);
  const demix::PowerSpectrumOperator ps({}, grid, cpu64());
  const auto cross = [&](const at::Tensor& a, const at::Tensor& b) {
    return ps.forward_cross(a, b).values;
  };
  const at::Tensor V = cross(e[0] + realizations.select(1, 0), e[1] + realizations.select(1, 1));
  const at::Tensor expected = cross(d[0].unsqueeze(0), d[1].unsqueeze(0))[0] -
                              (V.mean(0) - cross(e[0].unsqueeze(0), e[1].unsqueeze(0))[0]);
  EXPECT_TRUE(at::allclose(pair.target, expected, 1e-9, 1e-12));
  o.cross_channels = false;
  EXPECT_EQ(demix::Separator(d, realizations, o, grid, cpu64()).era_loss(e, 1).main.terms().size(),
            2u);
  // WPH and PS, the realizations estimator: the gradient against central differences.
  o.cross_channels = true;
  o.statistics = {{wph(2), 1.0}, {demix::PowerSpectrumOptions{}, 1.0}};
  o.estimator = demix::SeparationEstimator::Realizations;
  const demix::Separator both(d, realizations, o, grid, cpu64());
  const demix::SeparationLoss era = both.era_loss(e, 1);
  EXPECT_EQ(era.main.terms().size(), 6u); // wph[0], wph[1], ps[0], ps[1], wph[0x1], ps[0x1]
  const at::Tensor u = (e + 0.1 * at::randn_like(e)).unsqueeze(0), v = at::randn_like(u);
  expect_gradient_is_the_slope(both, era, u, v);
}

// Complex maps (Q + iU, complex noise): the separation works on them as on real ones (WPH with
// complex data and the spectrum), the Wiener start included; statistics or realizations that do
// not fit complex maps are refused.
TEST(Separation, ComplexMapsAreSeparated) {
  const int64_t n = 32, M = 8;
  const demix::Grid2d grid{n, n};
  at::Tensor q = lognormal(1, 1, n, 41)[0], u = lognormal(1, 1, n, 42)[0];
  q = (q - q.mean()) / q.std(), u = (u - u.mean()) / u.std();
  const at::Tensor signal = at::complex(q, u); // (1, n, n)
  at::manual_seed(43);
  const at::Tensor c = at::complex(at::randn({M + 1, 1, n, n}, at::kDouble),
                                   at::randn({M + 1, 1, n, n}, at::kDouble));
  const at::Tensor d = signal + c[0], realizations = c.narrow(0, 1, M);
  demix::SeparationOptions o;
  demix::WphOptions w{.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto};
  w.complex_data = true;
  o.statistics = {{w, 1.0}, {demix::PowerSpectrumOptions{}, 1.0}};
  o.eras = 2, o.iterations = 15;
  const demix::SeparationResult r = demix::Separator(d, realizations, o, grid, cpu64()).run();
  ASSERT_TRUE(r.signal.is_complex());
  EXPECT_LT(r.loss_history[0].back(), r.loss_history[0].front());
  const auto err = [&](const at::Tensor& x) {
    return (x - signal).abs().square().mean().item<double>();
  };
  EXPECT_LT(err(r.signal), 0.8 * err(d)) << err(r.signal) << " " << err(d);
  EXPECT_TRUE(at::allclose(demix::wiener_filter(d, 0 * realizations), d, 1e-9, 1e-9));
  // WPH without complex data, real realizations of a complex observation: refused.
  demix::SeparationOptions real_wph = o;
  real_wph.statistics = {{wph(3), 1.0}};
  expect_error_naming<demix::ValueError>(
      [&] { demix::Separator(d, realizations, real_wph, grid, cpu64()); },
      {"complex_data"}); // the statistic's own message
  expect_error_naming<demix::ValueError>(
      [&] { demix::Separator(d, at::real(realizations), o, grid, cpu64()); },
      {"contamination realizations", "complex"});
}

TEST(Separation, ResumedRunEqualsTheUninterruptedOne) {
  const int64_t n = 16;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, 5, 0.7, 13);
  demix::SeparationOptions o;
  o.statistics = {{wph(2), 1.0}};
  o.eras = 2, o.iterations = 6;
  o.terms.contamination = 0.5;
  const demix::Separator sep(p.observation, p.realizations, o, grid, cpu64());
  const demix::SeparationResult whole = sep.run();
  const demix::test::TempDir dir;
  const std::string ckpt = dir.path("sep.ckpt");
  struct Stop {};
  demix::SeparationRun run;
  run.checkpoint = ckpt, run.checkpoint_every = 2;
  run.progress = [](const demix::SeparationProgress& at) {
    if (at.era == 2 && at.iteration == 5) throw Stop{}; // killed after the save at iteration 4
  };
  EXPECT_THROW(sep.run(run), Stop);
  demix::SeparationRun again;
  again.resume = ckpt;
  std::vector<std::pair<int, int>> reported; // (era, iteration) of the resumed run
  again.progress = [&](const demix::SeparationProgress& at) {
    reported.emplace_back(at.era, at.iteration);
  };
  const demix::SeparationResult resumed = sep.run(again);
  // It continued after the save: iterations 5 and 6 of era 2 only.
  EXPECT_EQ(reported, (std::vector<std::pair<int, int>>{{2, 5}, {2, 6}}));
  again.progress = nullptr;
  EXPECT_TRUE(at::equal(resumed.signal, whole.signal));
  EXPECT_EQ(resumed.loss_history, whole.loss_history);
  EXPECT_EQ(resumed.kept_parts, whole.kept_parts);
  // Another separation (one more iteration per era) refuses the checkpoint; so does a
  // file that is not one.
  demix::SeparationOptions other = o;
  other.iterations = 7;
  expect_error_naming<demix::ValueError>(
      [&] { demix::Separator(p.observation, p.realizations, other, grid, cpu64()).run(again); },
      {"another separation", "iterations 7"});
  const std::string junk = dir.path("junk.ckpt");
  std::FILE* f = std::fopen(junk.c_str(), "w");
  std::fputs("not a checkpoint", f);
  std::fclose(f);
  demix::SeparationRun bad;
  bad.resume = junk;
  EXPECT_THROW(sep.run(bad), demix::Error);
}

// Masks: the statistics see the maps times the mask, so the pixels it excludes (a ruined
// corner, say) are not fitted: they keep the starting map's values, and the separation
// elsewhere is another than without the mask.
TEST(Separation, MaskedPixelsAreLeftOutOfTheFit) {
  const int64_t n = 32, M = 8;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, M, 0.8, 31);
  at::Tensor ruined = p.observation.clone();
  at::manual_seed(8);
  ruined.narrow(1, 0, 10).narrow(2, 0, 10).copy_(8 * at::randn({1, 10, 10}, at::kDouble));
  // 0 over the corner, rising to 1 over 4 pixels (cos^2).
  const at::Tensor i = at::arange(n, at::kDouble);
  const at::Tensor ramp = at::sin(M_PI / 2 * ((i - 10) / 4.0).clamp(0, 1)).square() * (i >= 10);
  const at::Tensor mask = 1 - (1 - ramp.view({n, 1})) * (1 - ramp.view({1, n}));
  demix::SeparationOptions o;
  o.statistics = {{wph(3), 1.0}};
  o.eras = 2, o.iterations = 10;
  o.start = demix::SeparationStart::Observation;
  const demix::SeparationResult plain =
      demix::Separator(ruined, p.realizations, o, grid, cpu64()).run();
  const demix::SeparationResult masked =
      demix::Separator(ruined, p.realizations, o, grid, cpu64(), {.masks = mask}).run();
  const at::Tensor out = (mask == 0).unsqueeze(0), in = (mask == 1).unsqueeze(0);
  ASSERT_GT(out.sum().item<int64_t>(), 90);
  EXPECT_TRUE(at::equal(masked.signal.masked_select(out), ruined.masked_select(out)));
  EXPECT_GT((plain.signal - ruined).masked_select(out).abs().max().item<double>(), 1e-3);
  // Where the mask is 1 the descent did its work: the loss fell and the map moved from d.
  EXPECT_LT(masked.loss_history[0].back(), 0.5 * masked.loss_history[0].front());
  EXPECT_GT((masked.signal - ruined).masked_select(in).abs().mean().item<double>(), 1e-2);
  expect_error_naming<demix::ValueError>(
      [&] {
        demix::Separator(ruined, p.realizations, o, grid, cpu64(),
                         {.masks = at::full({n, n}, 2.0, at::kDouble)});
      },
      {"[0, 1]"});
}

// Fresh realizations: each evaluation averages over its own draw of K of the M realizations,
// the same draw for the same number, and a run (and its resumption) is reproducible.
TEST(Separation, FreshRealizationsAreDrawnPerEvaluation) {
  const int64_t n = 16, M = 6;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, M, 0.7, 21);
  demix::SeparationOptions o;
  o.statistics = {{wph(2), 1.0}};
  o.estimator = demix::SeparationEstimator::Realizations;
  o.eras = 2, o.iterations = 6;
  const demix::Separator fixed(p.observation, p.realizations, o, grid, cpu64());
  const demix::SeparationLoss loss = fixed.era_loss(p.observation, 1);
  const at::Tensor u = p.observation.unsqueeze(0);
  const double all = fixed.evaluate(loss, u, false).loss.item<double>();
  // Each realization's own loss L_i, from a separator holding it alone (twice: M >= 2).
  std::vector<double> own;
  for (int64_t i = 0; i < M; ++i) {
    const at::Tensor c = p.realizations.narrow(0, i, 1).repeat({2, 1, 1, 1});
    own.push_back(demix::Separator(p.observation, c, o, grid, cpu64())
                      .evaluate(loss, u, false)
                      .loss.item<double>());
  }
  const auto fresh = [&](int K) {
    demix::SeparationOptions f = o;
    f.fresh_realizations = K, f.fresh_seed = 3;
    return demix::Separator(p.observation, p.realizations, f, grid, cpu64());
  };
  // K = M: every draw is the whole set in another order.
  EXPECT_NEAR(fresh(M).evaluate(loss, u, false, 7).loss.item<double>(), all, 1e-12 * all);
  // K = 1: a draw is one realization's loss; draws differ, and a number gives its draw again.
  const demix::Separator one = fresh(1);
  std::set<int64_t> drawn;
  for (int64_t draw = 0; draw < 12; ++draw) {
    const double l = one.evaluate(loss, u, false, draw).loss.item<double>();
    EXPECT_EQ(l, one.evaluate(loss, u, false, draw).loss.item<double>());
    const auto match = std::find_if(own.begin(), own.end(),
                                    [&](double li) { return std::abs(li - l) <= 1e-12 * li; });
    ASSERT_NE(match, own.end()) << "draw " << draw << " loss " << l;
    drawn.insert(match - own.begin());
  }
  EXPECT_GE(drawn.size(), 3u); // 12 draws of 1 in 6
  // Without a draw number (or with -1), all M.
  EXPECT_NEAR(one.evaluate(loss, u, false).loss.item<double>(), all, 1e-12 * all);

  const demix::Separator sep = fresh(3);
  const demix::SeparationResult whole = sep.run(), again = sep.run();
  EXPECT_TRUE(at::equal(whole.signal, again.signal));
  EXPECT_FALSE(at::equal(whole.signal, fixed.run().signal));
  const demix::test::TempDir dir;
  demix::SeparationRun stop;
  stop.checkpoint = dir.path("fresh.ckpt"), stop.checkpoint_every = 2;
  struct Stop {};
  stop.progress = [](const demix::SeparationProgress& at) {
    if (at.era == 2 && at.iteration == 3) throw Stop{};
  };
  EXPECT_THROW(sep.run(stop), Stop);
  demix::SeparationRun resume;
  resume.resume = stop.checkpoint;
  const demix::SeparationResult resumed = sep.run(resume);
  EXPECT_TRUE(at::equal(resumed.signal, whole.signal));
  EXPECT_EQ(resumed.loss_history, whole.loss_history);
  // Too many, or with the bias estimator: refused, naming the option.
  expect_error_naming<demix::ValueError>([&] { fresh(M + 1); },
                                         {"fresh_realizations = 7", "6 realizations"});
  demix::SeparationOptions bias = o;
  bias.estimator = demix::SeparationEstimator::Bias, bias.fresh_realizations = 2;
  expect_error_naming<demix::ValueError>(
      [&] { demix::Separator(p.observation, p.realizations, bias, grid, cpu64()); },
      {"fresh_realizations", "Bias"});
}

TEST(Separation, BadInputIsRefused) {
  const int64_t n = 16;
  const demix::Grid2d grid{n, n};
  const Noisy p = noisy(n, 4, 0.5, 1);
  demix::SeparationOptions o;
  o.statistics = {{wph(2), 1.0}};
  const auto make = [&](const at::Tensor& d, const at::Tensor& c,
                        const demix::SeparationOptions& opt) {
    return [=] { demix::Separator(d, c, opt, grid, cpu64()); };
  };
  expect_error_naming<demix::ValueError>(make(p.observation, p.realizations.narrow(0, 0, 1), o),
                                         {"1 contamination realization", "at least 2"});
  expect_error_naming<demix::ShapeError>(make(p.observation, p.realizations.narrow(3, 0, 8), o),
                                         {"realizations", "(M, 1, 16, 16)"});
  expect_error_naming<demix::ShapeError>(make(p.observation[0], p.realizations, o),
                                         {"observation", "(C, 16, 16)"});
  at::Tensor nan = p.observation.clone();
  nan[0][2][3] = std::numeric_limits<double>::quiet_NaN();
  expect_error_naming<demix::ValueError>(make(nan, p.realizations, o), {"1 NaN"});
  demix::SeparationOptions bad = o;
  bad.eras = 0;
  expect_error_naming<demix::ValueError>(make(p.observation, p.realizations, bad), {"eras", "0"});
  bad = o;
  bad.drop_below = 1;
  expect_error_naming<demix::ValueError>(make(p.observation, p.realizations, bad), {"drop_below"});
  bad = o;
  bad.terms.contamination = -1;
  expect_error_naming<demix::ValueError>(make(p.observation, p.realizations, bad),
                                         {"terms.contamination", "-1"});
  bad = o;
  bad.bias_clip = 1;
  expect_error_naming<demix::ValueError>(make(p.observation, p.realizations, bad), {"bias_clip"});
  // Further terms without their maps, with too few realizations, or without cross statistics.
  bad = o;
  bad.terms.template_correlation = 1;
  expect_error_naming<demix::ShapeError>(make(p.observation, p.realizations, bad),
                                         {"template", "(1, 16, 16)", "nothing"});
  bad = o;
  bad.terms.half_missions = 1;
  expect_error_naming<demix::ShapeError>(make(p.observation, p.realizations, bad),
                                         {"half-missions", "(2, 1, 16, 16)"});
  expect_error_naming<demix::ValueError>(
      [&] {
        demix::Separator(p.observation, p.realizations.narrow(0, 0, 3), bad, grid, cpu64(),
                         {.half_missions = p.realizations.narrow(0, 0, 2)});
      },
      {"3 give fewer than 2 pairs"});
  bad = o;
  bad.statistics = {{demix::WstOptions{.J = 2, .L = 4}, 1.0}};
  bad.terms.independence = 1;
  expect_error_naming<demix::ValueError>(make(p.observation, p.realizations, bad),
                                         {"cross statistics", "wst"});
}

} // namespace

// Training: the VAE learns toy galaxies far better than the mean stamp; a run interrupted after 2
// epochs and resumed from its checkpoint ends with the same weights as 4 uninterrupted epochs; the
// history CSV has one row per epoch; noise estimation and the stamp reader.

#include <demix/core/errors.hpp>
#include <demix/io/npy.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/models/training.hpp>

#include "support/raw_fits.hpp"
#include "support/temp_dir.hpp"
#include "support/toy_galaxies.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

using demix::test::TempDir;

namespace {

demix::MadnessModel toy_model(int64_t stamp, const std::vector<double>& sigmas,
                              std::uint64_t seed) {
  const auto B = static_cast<int64_t>(sigmas.size());
  std::vector<std::string> names;
  for (int64_t b = 0; b < B; ++b) names.push_back(std::string(1, static_cast<char>('a' + b)));
  return demix::MadnessModel(demix::GalaxyVae({.bands = B,
                                               .stamp_size = stamp,
                                               .latent_dim = 8,
                                               .encoder_channels = {8, 16},
                                               .decoder_channels = {16, 8, 8},
                                               .dense_units = 32,
                                               .band_scales = sigmas},
                                              seed),
                             {.band_names = names, .noise_sigmas = sigmas});
}

/// Median over stamps of the chi^2 per pixel of `prediction` against `target` (per-band sigmas).
double median_chi2_per_pixel(const at::Tensor& prediction, const at::Tensor& target,
                             const std::vector<double>& sigmas) {
  const at::Tensor s = at::tensor(sigmas, at::kDouble).view({1, -1, 1, 1});
  return ((prediction.to(at::kDouble) - target.to(at::kDouble)) / s)
      .square()
      .mean({1, 2, 3})
      .median()
      .item<double>();
}

bool same_weights(const demix::NamedTensors& a, const demix::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || !at::equal(a[i].tensor, b[i].tensor)) return false;
  return true;
}

} // namespace

TEST(Training, VaeLearnsToyGalaxiesMuchBetterThanTheMeanStamp) {
  const auto toy = demix::test::make_toy_galaxies(480, 6, 15, 1);
  const auto test = demix::test::make_toy_galaxies(160, 6, 15, 2);
  demix::MadnessModel model = toy_model(15, toy.sigmas, 3);
  const demix::TrainingHistory h = demix::train_vae(model, toy.noisy, toy.noiseless,
                                                    {.epochs = 40,
                                                     .batch_size = 32,
                                                     .learning_rate = 3e-3,
                                                     .lr_decay_epochs = 20,
                                                     .autoencoder_epochs = 5,
                                                     .val_fraction = 0.2,
                                                     .seed = 4});
  ASSERT_EQ(h.epochs.size(), 40u);
  ASSERT_EQ(h.metric_names, (std::vector<std::string>{"loss", "chi2_per_pixel", "kl"}));
  EXPECT_LT(h.epochs.back().train[0], 0.2 * h.epochs.front().train[0]);

  c10::AutoGradMode no_grad(false);
  const at::Tensor reconstruction = model.decode(model.encode(test.noisy));
  const at::Tensor mean_stamp = toy.noiseless.mean(0, true).expand_as(test.noiseless);
  const double vae = median_chi2_per_pixel(reconstruction, test.noiseless, toy.sigmas);
  const double baseline = median_chi2_per_pixel(mean_stamp, test.noiseless, toy.sigmas);
  // Fluxes span two decades, so the mean stamp is far off for most galaxies (median chi^2 ~ 70 per
  // pixel); a working autoencoder reconstructs unseen galaxies to a few times the noise level
  // (~2 here after 300 steps), more than 10 times better.
  EXPECT_LT(vae, 0.1 * baseline) << "vae " << vae << " mean stamp " << baseline;
}

TEST(Training, ResumedVaeTrainingEqualsUninterruptedTraining) {
  TempDir dir;
  const auto toy = demix::test::make_toy_galaxies(96, 2, 9, 5);
  const demix::VaeTrainingOptions base{.epochs = 4,
                                       .batch_size = 16,
                                       .learning_rate = 2e-3,
                                       .autoencoder_epochs = 1,
                                       .val_fraction = 0.25,
                                       .seed = 8};
  demix::MadnessModel straight = toy_model(9, toy.sigmas, 6);
  const auto full = demix::train_vae(straight, toy.noisy, toy.noiseless, base);

  demix::MadnessModel first = toy_model(9, toy.sigmas, 6);
  auto part = base;
  part.epochs = 2;
  part.checkpoint_path = dir.path("vae.ckpt");
  demix::train_vae(first, toy.noisy, toy.noiseless, part);
  // A fresh process would load the model from the checkpoint; do the same.
  demix::MadnessModel resumed = demix::MadnessModel::load(dir.path("vae.ckpt"));
  auto rest = base;
  rest.resume_from = dir.path("vae.ckpt");
  const auto continued = demix::train_vae(resumed, toy.noisy, toy.noiseless, rest);

  // Same operations in the same order on one CPU with the same thread count: bit-identical.
  EXPECT_TRUE(same_weights(straight.vae().parameters(), resumed.vae().parameters()));
  ASSERT_EQ(continued.epochs.size(), 4u);
  for (std::size_t e = 0; e < 4; ++e) {
    EXPECT_EQ(continued.epochs[e].train, full.epochs[e].train) << e;
    EXPECT_EQ(continued.epochs[e].val, full.epochs[e].val) << e;
  }
  EXPECT_EQ(continued.best_epoch, full.best_epoch);

  const std::string csv = demix::history_csv(continued);
  std::istringstream is(csv);
  std::string header, line;
  std::getline(is, header);
  EXPECT_EQ(header, "epoch,learning_rate,seconds,train_loss,train_chi2_per_pixel,train_kl,val_loss,"
                    "val_chi2_per_pixel,val_kl");
  int rows = 0;
  while (std::getline(is, line)) {
    ++rows;
    EXPECT_EQ(line.rfind(std::to_string(rows) + ",", 0), 0u) << line;
  }
  EXPECT_EQ(rows, 4);

  const at::Tensor png = demix::plot_history(continued, 200, 100);
  EXPECT_EQ(png.sizes(), (std::vector<int64_t>{100, 200, 3}));
  EXPECT_LT(png.min().item<int>(), 255); // something was drawn

  // A VAE checkpoint cannot resume flow training, nor a run with another seed.
  auto other_seed = rest;
  other_seed.seed = 9;
  EXPECT_THROW(demix::train_vae(resumed, toy.noisy, toy.noiseless, other_seed), demix::ValueError);
  resumed.set_flow(demix::LatentFlow({.dim = 8, .blocks = 1, .hidden = {8}}));
  EXPECT_THROW(demix::train_flow(resumed, at::zeros({96, 8}),
                                 {.epochs = 1, .resume_from = rest.resume_from}),
               demix::ValueError);
}

TEST(Training, ResumedFlowTrainingEqualsUninterruptedTraining) {
  TempDir dir;
  const at::Tensor z = at::randn({300, 4}) * 2 + 1;
  const auto make = [] {
    demix::MadnessModel m = toy_model(9, {1.0}, 1);
    m.set_flow(demix::LatentFlow({.dim = 8, .blocks = 2, .hidden = {12}}, 2));
    return m;
  };
  const at::Tensor latents = at::cat({z, -z}, 1); // (300, 8)
  const demix::FlowTrainingOptions base{
      .epochs = 4, .batch_size = 64, .val_fraction = 0.2, .seed = 3};
  demix::MadnessModel straight = make();
  demix::train_flow(straight, latents, base);
  demix::MadnessModel first = make();
  auto part = base;
  part.epochs = 2;
  part.checkpoint_path = dir.path("flow.ckpt");
  demix::train_flow(first, latents, part);
  demix::MadnessModel resumed = demix::MadnessModel::load(dir.path("flow.ckpt"));
  auto rest = base;
  rest.resume_from = part.checkpoint_path;
  const auto h = demix::train_flow(resumed, latents, rest);
  EXPECT_EQ(h.epochs.size(), 4u);
  EXPECT_TRUE(same_weights(straight.flow().parameters(), resumed.flow().parameters()));
}

TEST(Training, NoiseSigmasAreEstimatedFromStampBorders) {
  const auto toy = demix::test::make_toy_galaxies(400, 3, 25, 9);
  const auto sigmas = demix::estimate_stamp_noise_sigmas(toy.noisy);
  ASSERT_EQ(sigmas.size(), 3u);
  // 400 stamps x 176 border pixels: the MAD estimate's relative error is ~0.3 %; galaxy light in
  // the border adds a small positive bias. 5 % covers both.
  for (int b = 0; b < 3; ++b) EXPECT_NEAR(sigmas[b] / toy.sigmas[b], 1.0, 0.05) << b;
  EXPECT_THROW(demix::estimate_stamp_noise_sigmas(toy.noiseless * 0), demix::ValueError);
}

TEST(Training, ReadsNpyStampsAndRejectsBadData) {
  TempDir dir;
  const auto toy = demix::test::make_toy_galaxies(4, 2, 9, 1);
  demix::write_npy(dir.path("s.npy"), toy.noisy);
  const demix::GalaxyStampSet set = demix::read_galaxy_stamps(dir.path("s.npy"));
  EXPECT_TRUE(at::equal(set.stamps, toy.noisy));
  EXPECT_FALSE(set.noiseless.defined());
  demix::write_npy(dir.path("bad.npy"), at::zeros({4, 9, 9}));
  EXPECT_THROW(demix::read_galaxy_stamps(dir.path("bad.npy")), demix::ShapeError);

  demix::MadnessModel model = toy_model(9, toy.sigmas, 1);
  at::Tensor nan = toy.noisy.clone();
  nan[0][0][0][0] = NAN;
  EXPECT_THROW(demix::train_vae(model, nan, {}, {.epochs = 1}), demix::ValueError);
  EXPECT_THROW(demix::train_vae(model, toy.noisy.narrow(2, 0, 7), {}, {.epochs = 1}),
               demix::ShapeError);
  EXPECT_THROW(demix::train_vae(model, toy.noisy, {}, {.epochs = 0}), demix::ValueError);
  EXPECT_THROW(demix::train_flow(model, at::zeros({4, 8}), {.epochs = 1}),
               demix::ValueError); // no flow
}

TEST(Training, StretchedChi2MatchesItsDefinition) {
  const at::Tensor sigmas = at::tensor({2.0, 5.0}, at::kDouble);
  const at::Tensor target = at::randn({3, 2, 4, 4}, at::kDouble).abs() * 1e4;
  const at::Tensor prediction = target * (1 + 0.1 * at::randn({3, 2, 4, 4}, at::kDouble)) + 3;
  for (double eps : {0.0, 0.05, 0.5}) {
    const at::Tensor got = demix::stretched_chi2(prediction, target, sigmas, eps);
    auto t = target.accessor<double, 4>();
    auto p = prediction.accessor<double, 4>();
    for (int64_t n = 0; n < 3; ++n) {
      double brute = 0;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t i = 0; i < 4; ++i)
          for (int64_t j = 0; j < 4; ++j) {
            const double s = sigmas[b].item<double>();
            const double d =
                eps == 0
                    ? (t[n][b][i][j] - p[n][b][i][j]) / s
                    : (std::asinh(eps * t[n][b][i][j] / s) - std::asinh(eps * p[n][b][i][j] / s)) /
                          eps;
            brute += d * d;
          }
      // float64 sums of 32 terms: relative rounding ~1e-15.
      EXPECT_NEAR(got[n].item<double>(), brute, 1e-12 * brute) << eps;
    }
  }
  // eps -> 0 is continuous: the stretch is x / sigma to first order (relative change ~eps^2 x^2).
  const at::Tensor faint = target / 1e4;
  const at::Tensor a = demix::stretched_chi2(faint * 1.2, faint, sigmas, 1e-4);
  const at::Tensor b = demix::stretched_chi2(faint * 1.2, faint, sigmas, 0);
  EXPECT_LT(((a - b) / b).abs().max().item<double>(), 1e-6);
  // Bright pixels are compared to a relative precision eps: 10 % off at 10^4 sigma costs about
  // (ln 1.1 / eps)^2 per pixel, not (0.1 x 10^4)^2.
  EXPECT_LT(demix::stretched_chi2(target * 1.1, target, sigmas, 0.05).max().item<double>(),
            32 * std::pow(std::log(1.1) / 0.05, 2) * 1.01);
}

TEST(Training, ReadsFitsStampsWithBandsSigmasAndNoiseless) {
  // STAMPS (N=2, B=2, S=3) with BANDn / SIGMAn and a NOISELESS extension, written byte by byte.
  TempDir dir;
  std::vector<double> stamps(2 * 2 * 3 * 3), clean(stamps.size());
  for (std::size_t i = 0; i < stamps.size(); ++i) {
    stamps[i] = 0.5 * static_cast<double>(i);
    clean[i] = static_cast<double>(i);
  }
  const std::vector<std::string> cards{"EXTNAME = 'STAMPS'", "BAND1   = 'g'", "BAND2   = 'r'",
                                       "SIGMA1  = 12.5", "SIGMA2  = 30.0"};
  demix::test::write_raw_fits(
      dir.path("s.fits"),
      {{.naxes = {}},
       {.naxes = {3, 3, 2, 2}, .values = stamps, .cards = cards},
       {.naxes = {3, 3, 2, 2}, .values = clean, .cards = {"EXTNAME = 'NOISELESS'"}}});
  try {
    const demix::GalaxyStampSet set = demix::read_galaxy_stamps(dir.path("s.fits"));
    EXPECT_EQ(set.stamps.sizes(), (std::vector<int64_t>{2, 2, 3, 3}));
    EXPECT_EQ(set.stamps[1][0][2][1].item<float>(), 0.5f * (9 * 2 + 7)); // C order (N, B, H, W)
    EXPECT_TRUE(at::equal(set.noiseless, 2 * set.stamps));
    EXPECT_EQ(set.band_names, (std::vector<std::string>{"g", "r"}));
    EXPECT_EQ(set.noise_sigmas, (std::vector<double>{12.5, 30.0}));
  } catch (const demix::ShapeError& e) {
    // A demix whose FITS reader stops at 3 axes must say so and point to .npy.
    EXPECT_NE(std::string(e.what()).find(".npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("s.fits"), std::string::npos) << e.what();
  }
  // A 3-D STAMPS extension is not a set of multi-band stamps.
  demix::test::write_raw_fits(dir.path("cube.fits"), {{.naxes = {}},
                                                      {.naxes = {3, 3, 2},
                                                       .values = std::vector<double>(18, 1.0),
                                                       .cards = {"EXTNAME = 'STAMPS'"}}});
  EXPECT_THROW(demix::read_galaxy_stamps(dir.path("cube.fits")), demix::ShapeError);
}

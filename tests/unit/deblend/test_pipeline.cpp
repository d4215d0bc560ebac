// The deblending pipeline (deblend/pipeline.hpp) against its parts: on a small blend of toy
// galaxies it must give what `demix deblend` computed before it moved into the library, i.e. what
// the deblender, StampPlacer and measure_shapes give when called directly in that order
// (catalogue columns and values, stamps, children, residual = image - models); noise levels and
// positions come from where the options say; bad requests and catalogues throw typed errors.

#include <demix/core/errors.hpp>
#include <demix/deblend/metrics.hpp>
#include <demix/deblend/pipeline.hpp>
#include <demix/io/image_io.hpp>

#include "support/expect_error.hpp"
#include "support/temp_dir.hpp"
#include "support/toy_galaxy_prior.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

using demix::test::expect_error_naming;
using demix::test::TempDir;
using demix::test::ToyGalaxyPrior;

namespace {

/// The catalogue's ellipticity: the measured distortion chi in the shear convention,
/// chi / (1 + sqrt(1 - |chi|^2)) (the same operations as the pipeline, so equal to the bit).
at::Tensor shear(const at::Tensor& chi /* (G, 2) */) {
  const at::Tensor c = chi.to(at::kDouble);
  return c / (1 + (1 - c.square().sum(1, true)).clamp_min(0).sqrt());
}

const demix::Context& cpu64() {
  static const demix::Context c(
      {.device = demix::DeviceKind::Cpu, .precision = demix::Precision::Float64});
  return c;
}

constexpr int64_t kBands = 3, kStamp = 15, kHeight = 40, kWidth = 44;
const std::vector<double> kSigmas{20.0, 30.0, 45.0};

std::shared_ptr<ToyGalaxyPrior> toy_prior() {
  return std::make_shared<ToyGalaxyPrior>(ToyGalaxyPrior::standard(kBands, kStamp));
}

at::Tensor true_positions() { // (2, 2): x, y; the second one near a pixel's edge
  return at::tensor({14.0, 20.0, 24.3, 21.6}, at::kDouble).view({2, 2});
}

/// A 3-band blend of two toy galaxies (the prior's family, drawn at the nearest pixels of
/// true_positions()) plus seeded noise of kSigmas, with the keywords SIGMA1..3 and BAND1..3
/// (g, r, i) when `keywords`.
/// The two toy galaxies of toy_blend(), noiseless, each on its stamp: (2, B, S, S).
at::Tensor toy_galaxies() {
  const auto prior = toy_prior();
  const at::Tensor flux =
      at::tensor({2e4, 3e4, 2.5e4, 1.5e4, 1.2e4, 1e4}, at::kDouble).view({2, 3});
  const at::Tensor size = at::tensor({2.2, 2.8}, at::kDouble);
  const at::Tensor e = at::tensor({0.1, -0.2, 0.0, 0.3}, at::kDouble).view({2, 2});
  return prior->decode(prior->latents(flux, size, e));
}

demix::Image toy_blend(bool keywords = true) {
  const demix::BlendGalaxies g{true_positions(), at::zeros({2}, at::kLong), 1};
  const demix::StampPlacer placer(g, kBands, kHeight, kWidth, kStamp, at::kCPU);
  at::manual_seed(7);
  const at::Tensor noise = at::randn({kBands, kHeight, kWidth}, at::kDouble) *
                           at::tensor(kSigmas, at::kDouble).view({kBands, 1, 1});
  demix::Image image;
  image.data = placer.render(toy_galaxies())[0] + noise;
  image.source = "toy.fits";
  if (keywords)
    for (int64_t b = 0; b < kBands; ++b) {
      image.header.set("SIGMA" + std::to_string(b + 1), kSigmas[b]);
      image.header.set("BAND" + std::to_string(b + 1), std::string(1, "gri"[b]));
    }
  return image;
}

std::vector<std::string> column_names(const demix::Table& t) {
  std::vector<std::string> names;
  for (const auto& c : t.columns) names.push_back(c.name);
  return names;
}

const std::vector<std::string> kColumns{
    "id", "x",         "y",    "flux_g",     "flux_r",        "flux_i", "e1",
    "e2", "converged", "chi2", "flux_ratio", "foreign_share", "flags"};

} // namespace

TEST(DeblendPipeline, ClassicalGivesWhatItsPartsGive) {
  const demix::Image image = toy_blend();
  const demix::DeblendPipeline pipeline({.method = demix::DeblendMethod::Classical}, nullptr,
                                        cpu64());
  const demix::DeblendReport r = pipeline.run(image, true_positions());
  EXPECT_EQ(r.blend.noise_source, demix::NoiseSource::Keywords);
  EXPECT_TRUE(at::equal(r.blend.noise_sigmas, at::tensor(kSigmas, at::kDouble)));
  EXPECT_TRUE(at::equal(r.blend.positions, true_positions()));

  // The CLI's steps, by hand: the deblender, stamps of 45, residual, fluxes of the children,
  // ellipticities of the stamps' band sums.
  const demix::BlendGalaxies g{true_positions(), at::zeros({2}, at::kLong), 1};
  const demix::ClassicalResult c =
      demix::ClassicalDeblender({}, cpu64())
          .deblend(image.data.unsqueeze(0), g, at::tensor(kSigmas, at::kDouble));
  EXPECT_EQ(r.stamp_size, 45);
  EXPECT_TRUE(at::equal(r.children, c.children));
  EXPECT_TRUE(at::equal(r.stamps, c.stamps(45)));
  EXPECT_TRUE(at::equal(r.residual, image.data - c.children.sum(0)));
  // The children add up to the blend (classical.hpp): the residual is rounding (~1e-16 of 1e3 e-).
  EXPECT_LT(r.residual.abs().max().item<double>(), 1e-9);
  EXPECT_TRUE(at::equal(r.stamp_origins, demix::nearest_pixel(true_positions()) - 22));
  EXPECT_EQ(r.stamp_origins[1][0].item<int64_t>(), 24 - 22);
  EXPECT_EQ(r.stamp_origins[1][1].item<int64_t>(), 22 - 22); // 21.6 -> pixel 22

  const demix::Table& t = r.catalogue;
  EXPECT_EQ(column_names(t), kColumns);
  ASSERT_EQ(t.rows(), 2);
  EXPECT_TRUE(at::equal(t.column("id").values, at::arange(2, at::kLong)));
  EXPECT_TRUE(at::equal(t.column("x").values, true_positions().select(1, 0)));
  const at::Tensor flux = c.children.sum({2, 3});
  for (int64_t b = 0; b < kBands; ++b)
    EXPECT_TRUE(at::equal(t.column(std::string("flux_") + "gri"[b]).values, flux.select(1, b)));
  const at::Tensor e = shear(demix::measure_shapes(c.stamps(45).sum(1)).ellipticity);
  EXPECT_TRUE(at::equal(t.column("e1").values, e.select(1, 0)));
  EXPECT_TRUE(at::equal(t.column("e2").values, e.select(1, 1)));
  EXPECT_TRUE(at::equal(t.column("converged").values, at::ones({2}, at::kLong)));
  // Converged, positive fluxes; the 45-pixel stamps reach beyond this small blend (flag 2).
  const int64_t H = image.data.size(-2), W = image.data.size(-1);
  for (int64_t g = 0; g < 2; ++g) {
    const int64_t x0 = r.stamp_origins[g][0].item<int64_t>(),
                  y0 = r.stamp_origins[g][1].item<int64_t>();
    const bool off = x0 < 0 || y0 < 0 || x0 + 45 > W || y0 + 45 > H;
    EXPECT_EQ(t.column("flags").values[g].item<int64_t>(), off ? demix::kFlagStampOffEdge : 0);
  }
  EXPECT_EQ(t.column("x").unit, "pix");
  // Each child holds its galaxy's flux (the truth's totals over three bands: 7.5e4 and 3.7e4 e-,
  // of which the 15-pixel stamps drew 99.5% and 97.5%) to within its share of the noise (~2%)
  // and of the neighbour's light.
  EXPECT_NEAR(flux[0].sum().item<double>() / 7.5e4, 1.0, 0.1);
  EXPECT_NEAR(flux[1].sum().item<double>() / 3.7e4, 1.0, 0.1);

  // The catalogue as a file: write_csv, read back exactly (shortest round-trip decimals).
  TempDir dir;
  demix::write_csv(dir.path("catalogue.csv"), t);
  const demix::Table back = demix::read_csv(dir.path("catalogue.csv"));
  EXPECT_EQ(column_names(back), kColumns);
  for (const auto& col : t.columns)
    EXPECT_TRUE(at::equal(back.column(col.name).values.to(at::kDouble), col.values.to(at::kDouble)))
        << col.name;
  // As ECSV and FITS (write_table by name), read back with their units (read_table by content).
  for (const char* name : {"catalogue.ecsv", "catalogue.fits"}) {
    demix::write_table(dir.path(name), t);
    const demix::Table other = demix::read_table(dir.path(name));
    EXPECT_EQ(column_names(other), kColumns) << name;
    for (const auto& col : t.columns) {
      EXPECT_TRUE(
          at::equal(other.column(col.name).values.to(at::kDouble), col.values.to(at::kDouble)))
          << name << " " << col.name;
      EXPECT_EQ(other.column(col.name).unit, col.unit) << name << " " << col.name;
    }
  }
}

TEST(DeblendPipeline, MadnessGivesWhatItsPartsGive) {
  const auto prior = toy_prior();
  const demix::Image image = toy_blend();
  const demix::MadnessOptions fit{.max_steps = 60};
  for (const bool full_frame : {false, true}) {
    const demix::DeblendPipeline pipeline(
        {.method = demix::DeblendMethod::Madness, .madness = fit, .full_frame = full_frame}, prior,
        cpu64());
    const demix::DeblendReport r = pipeline.run(image, true_positions());
    const demix::BlendGalaxies g{true_positions(), at::zeros({2}, at::kLong), 1};
    const demix::MadnessResult m =
        demix::MadnessDeblender(prior, fit, cpu64())
            .deblend(image.data.unsqueeze(0), g, at::tensor(kSigmas, at::kDouble));
    // The same deterministic CPU computation.
    EXPECT_TRUE(at::equal(r.stamps, m.stamps));
    EXPECT_TRUE(at::equal(r.latents, m.latents));
    EXPECT_TRUE(at::equal(r.residual, m.residuals[0]));
    EXPECT_EQ(r.steps, m.steps[0].item<int64_t>());
    EXPECT_EQ(r.loss, m.loss[0].item<double>());
    EXPECT_EQ(r.stamp_size, kStamp);
    // residual = image - the stamps placed at their nearest pixels (float64: rounding of sums of
    // ~1e3 e- pixels, ~1e-12).
    const demix::StampPlacer placer(g, kBands, kHeight, kWidth, kStamp, at::kCPU);
    EXPECT_LT((r.residual - (image.data - placer.render(r.stamps)[0])).abs().max().item<double>(),
              1e-9);
    EXPECT_EQ(r.children.defined(), full_frame);
    if (full_frame) {
      EXPECT_TRUE(at::equal(r.children, placer.render_each(r.stamps)));
      EXPECT_LT((r.children.sum(0) + r.residual - image.data).abs().max().item<double>(), 1e-9);
    }
    // Catalogue: the stamps' fluxes (the whole model, whether or not full frames are asked for).
    const demix::Table& t = r.catalogue;
    EXPECT_EQ(column_names(t), kColumns);
    for (int64_t b = 0; b < kBands; ++b)
      EXPECT_TRUE(at::equal(t.column(std::string("flux_") + "gri"[b]).values,
                            m.stamps.sum({2, 3}).select(1, b)));
    const at::Tensor e = shear(demix::measure_shapes(m.stamps.sum(1)).ellipticity);
    EXPECT_TRUE(at::equal(t.column("e1").values, e.select(1, 0)));
    EXPECT_TRUE(at::equal(t.column("converged").values, m.converged.expand({2}).to(at::kLong)));
    // The fit found the galaxies: the residual is noise (chi^2 per pixel ~ 1; 1.2 allows for
    // 3 x 40 x 44 pixels' scatter, 0.02, and the 60-step fit).
    const at::Tensor sigma = at::tensor(kSigmas, at::kDouble).view({kBands, 1, 1});
    EXPECT_LT((r.residual / sigma).square().mean().item<double>(), 1.2);
  }
}

// The quality measures on models made by hand: the true galaxies (a good deblending), then one
// galaxy's model moved onto its neighbour (a model that took its neighbour's light).
TEST(DeblendPipeline, QualityTellsAModelThatTookItsNeighboursLight) {
  const demix::Image image = toy_blend();
  const at::Tensor truth = toy_galaxies(); // (2, B, S, S)
  const at::Tensor pos = true_positions();
  const at::Tensor origins = demix::nearest_pixel(pos) - kStamp / 2;
  const demix::BlendGalaxies g{pos, at::zeros({2}, at::kLong), 1};
  const demix::StampPlacer placer(g, kBands, kHeight, kWidth, kStamp, at::kCPU);
  const at::Tensor sigmas = at::tensor(kSigmas, at::kDouble);
  const auto quality = [&](const at::Tensor& models) {
    const at::Tensor residual = image.data - placer.render(models)[0];
    return demix::measure_deblend_quality(image.data, residual, models, origins, pos, sigmas);
  };
  const demix::DeblendQuality good = quality(truth);
  for (int64_t k = 0; k < 2; ++k) {
    // The residual is the noise: chi^2 ~ 1 (a footprint of ~100 pixels x 3 bands: +-0.15).
    EXPECT_NEAR(good.chi2[k].item<double>(), 1.0, 0.3) << k;
    EXPECT_NEAR(good.flux_ratio[k].item<double>(), 1.0, 0.05) << k;
    EXPECT_LT(good.foreign_share[k].item<double>(), 0.2) << k;
    EXPECT_GT(good.footprint[k].item<int64_t>(), 20) << k;
  }
  // Galaxy 1's model drawn 7 pixels left within its stamp, towards galaxy 0 (10 pixels away):
  // its centre is then nearer galaxy 0 than its own position.
  at::Tensor bad = truth.clone();
  bad[1].zero_();
  bad[1].narrow(2, 0, kStamp - 7).copy_(truth[1].narrow(2, 7, kStamp - 7));
  const demix::DeblendQuality q = quality(bad);
  EXPECT_GT(q.foreign_share[1].item<double>(), 0.5);
  EXPECT_LT(q.foreign_share[0].item<double>(), 0.2);
  // Galaxy 0's footprint now holds light of both models, and galaxy 1's model leaves its own
  // light in the residual: residuals beyond the noise.
  EXPECT_GT(q.flux_ratio[0].item<double>(), good.flux_ratio[0].item<double>() + 0.05);
  EXPECT_GT(q.chi2[0].item<double>(), 2 * good.chi2[0].item<double>());
  EXPECT_GT(q.chi2[1].item<double>(), 5 * good.chi2[1].item<double>());
  // Without noise levels: no chi^2, the footprint from the model's peak.
  const demix::DeblendQuality bare = demix::measure_deblend_quality(
      image.data, image.data - placer.render(truth)[0], truth, origins, pos, at::Tensor());
  EXPECT_TRUE(std::isnan(bare.chi2[0].item<double>()));
  EXPECT_GT(bare.footprint[0].item<int64_t>(), 0);
}

// Flags and the classical fallback through the pipeline: a chi^2 limit no fit meets flags every
// galaxy, and with the fallback the catalogue then holds the classical deblender's measurements.
TEST(DeblendPipeline, FailedFitsAreFlaggedAndFallBackToClassical) {
  const auto prior = toy_prior();
  const demix::Image image = toy_blend();
  const demix::MadnessOptions fit{.max_steps = 30};
  const auto flags_of = [](const demix::DeblendReport& r) {
    return r.catalogue.column("flags").values;
  };
  const demix::DeblendReport plain =
      demix::DeblendPipeline({.madness = fit}, prior, cpu64()).run(image, true_positions());
  EXPECT_EQ((flags_of(plain) & (demix::kFlagPoorResidual | demix::kFlagTakesNeighbourLight))
                .sum()
                .item<int64_t>(),
            0);
  const demix::DeblendReport strict =
      demix::DeblendPipeline({.madness = fit, .chi2_limit = 1e-6}, prior, cpu64())
          .run(image, true_positions());
  EXPECT_TRUE(at::equal(flags_of(strict) & demix::kFlagPoorResidual,
                        at::full({2}, demix::kFlagPoorResidual, at::kLong)));
  EXPECT_TRUE(at::equal(strict.catalogue.column("flux_r").values,
                        plain.catalogue.column("flux_r").values)); // flagged, not changed
  const demix::DeblendReport fallback =
      demix::DeblendPipeline({.madness = fit, .chi2_limit = 1e-6, .classical_fallback = true},
                             prior, cpu64())
          .run(image, true_positions());
  const demix::DeblendReport classical =
      demix::DeblendPipeline({.method = demix::DeblendMethod::Classical, .stamp_size = kStamp},
                             nullptr, cpu64())
          .run(image, true_positions());
  EXPECT_TRUE(at::equal(flags_of(fallback) & demix::kFlagClassicalFallback,
                        at::full({2}, demix::kFlagClassicalFallback, at::kLong)));
  for (const char* c : {"flux_g", "flux_r", "flux_i", "e1", "e2"})
    EXPECT_TRUE(at::allclose(fallback.catalogue.column(c).values,
                             classical.catalogue.column(c).values, 1e-12, 1e-9))
        << c;
  // The quality columns still describe MADNESS's fit.
  EXPECT_TRUE(
      at::equal(fallback.catalogue.column("chi2").values, plain.catalogue.column("chi2").values));
  expect_error_naming<demix::ValueError>(
      [&] { demix::DeblendPipeline({.madness = fit, .neighbour_share_limit = 0}, prior, cpu64()); },
      {"neighbour_share_limit"});
}

// Several blends in one call: MADNESS fits those of one shape and noise levels as a batch; each
// report is the one the blend gets alone (the batched fit's arithmetic per blend is the same up
// to the order of batched sums), and a blend of another shape is fitted on its own.
TEST(DeblendPipeline, SeveralBlendsAreFittedAsOneBatch) {
  const auto prior = toy_prior();
  const demix::DeblendPipeline pipeline({.madness = {.max_steps = 40}}, prior, cpu64());
  demix::Image other = toy_blend();
  at::manual_seed(3);
  other.data = other.data + 5 * at::randn_like(other.data); // another noise draw
  demix::Image small = toy_blend();
  small.data = small.data.narrow(2, 0, 36).contiguous(); // another shape
  const std::vector<demix::PreparedBlend> blends{pipeline.prepare(toy_blend(), true_positions()),
                                                 pipeline.prepare(other, true_positions()),
                                                 pipeline.prepare(small, true_positions())};
  const std::vector<demix::DeblendReport> together = pipeline.deblend(blends);
  ASSERT_EQ(together.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    const demix::DeblendReport alone = pipeline.deblend(blends[k]);
    EXPECT_TRUE(at::allclose(together[k].stamps, alone.stamps, 1e-6, 1e-3)) << k;
    EXPECT_TRUE(at::allclose(together[k].residual, alone.residual, 1e-6, 1e-3)) << k;
    EXPECT_EQ(together[k].steps, alone.steps) << k;
    EXPECT_EQ(together[k].catalogue.column("flags").values.sum().item<int64_t>(),
              alone.catalogue.column("flags").values.sum().item<int64_t>())
        << k;
    EXPECT_EQ(together[k].blend.image.size(2), blends[k].image.size(2));
  }
  // The two noise draws give two fits.
  EXPECT_FALSE(at::allclose(together[0].stamps, together[1].stamps, 1e-3, 1e-1));
}

TEST(DeblendPipeline, NoiseLevelsAndPositionsComeFromWhereTheOptionsSay) {
  const demix::Image image = toy_blend(), bare = toy_blend(false);
  const demix::DeblendPipelineOptions classical{.method = demix::DeblendMethod::Classical};
  const demix::DeblendPipeline keywords(classical, nullptr, cpu64());
  // Detection: both galaxies within half a pixel of where they were drawn (their nearest pixels),
  // with the keywords' noise.
  const demix::PreparedBlend detected = keywords.prepare(image);
  EXPECT_EQ(detected.noise_source, demix::NoiseSource::Keywords);
  ASSERT_EQ(detected.positions.size(0), 2);
  ASSERT_TRUE(detected.significance.defined());
  for (int64_t i = 0; i < 2; ++i) {
    const at::Tensor drawn = demix::nearest_pixel(true_positions()).to(at::kDouble);
    const at::Tensor d = (drawn - detected.positions[i]).square().sum(1).sqrt();
    EXPECT_LT(d.min().item<double>(), 0.5) << i;
  }
  EXPECT_EQ(detected.band_names, (std::vector<std::string>{"g", "r", "i"}));
  // No keywords: positions given -> no noise levels (no footprint); detection -> the survey
  // table, which has 6 bands, not 3; from the pixels; or given.
  const demix::PreparedBlend none = keywords.prepare(bare, true_positions());
  EXPECT_EQ(none.noise_source, demix::NoiseSource::None);
  EXPECT_FALSE(none.noise_sigmas.defined());
  EXPECT_EQ(none.band_names, (std::vector<std::string>{"b0", "b1", "b2"}));
  EXPECT_EQ(keywords.run(bare, true_positions()).catalogue.rows(), 2);
  expect_error_naming<demix::ValueError>([&] { keywords.prepare(bare); },
                                         {"toy.fits", "survey table"});
  demix::DeblendPipelineOptions from_image = classical;
  from_image.noise = demix::NoiseLevels::Image;
  const demix::PreparedBlend estimated =
      demix::DeblendPipeline(from_image, nullptr, cpu64()).prepare(bare);
  EXPECT_EQ(estimated.noise_source, demix::NoiseSource::Image);
  EXPECT_TRUE(at::equal(estimated.noise_sigmas, demix::estimate_noise_sigmas(bare.data)));
  demix::DeblendPipelineOptions given = classical;
  given.noise = demix::NoiseLevels::Given;
  given.noise_sigmas = {1.0, 2.0, 3.0};
  const demix::PreparedBlend told = demix::DeblendPipeline(given, nullptr, cpu64()).prepare(image);
  EXPECT_EQ(told.noise_source, demix::NoiseSource::Given);
  EXPECT_TRUE(at::equal(told.noise_sigmas, at::tensor({1.0, 2.0, 3.0}, at::kDouble)));
  // A 2-D image is one band.
  demix::Image plane = bare;
  plane.data = bare.data[0];
  EXPECT_EQ(keywords.prepare(plane, true_positions()).image.sizes(),
            (std::vector<int64_t>{1, kHeight, kWidth}));
}

TEST(DeblendPipeline, BadRequestsThrowTypedErrors) {
  const demix::Image image = toy_blend();
  const demix::DeblendPipelineOptions classical{.method = demix::DeblendMethod::Classical};
  const demix::DeblendPipeline pipeline(classical, nullptr, cpu64());
  // Options.
  EXPECT_THROW(demix::DeblendPipeline({}, nullptr, cpu64()), demix::ValueError); // MADNESS: prior
  demix::DeblendPipelineOptions o = classical;
  o.stamp_size = 44;
  EXPECT_THROW(demix::DeblendPipeline(o, nullptr, cpu64()), demix::ValueError);
  o = classical;
  o.noise = demix::NoiseLevels::Given; // without sigmas
  EXPECT_THROW(demix::DeblendPipeline(o, nullptr, cpu64()), demix::ValueError);
  o.noise_sigmas = {1.0, 2.0};
  expect_error_naming<demix::ValueError>(
      [&] { demix::DeblendPipeline(o, nullptr, cpu64()).prepare(image, true_positions()); },
      {"toy.fits", "2 noise levels", "3 bands"});
  o.noise_sigmas = {1.0, -2.0, 3.0};
  expect_error_naming<demix::ValueError>(
      [&] { demix::DeblendPipeline(o, nullptr, cpu64()).prepare(image, true_positions()); },
      {"band 2", "-2"});
  o = classical;
  o.noise_sigmas = {1.0, 2.0, 3.0}; // but not NoiseLevels::Given
  EXPECT_THROW(demix::DeblendPipeline(o, nullptr, cpu64()), demix::ValueError);
  o = classical;
  o.madness.max_steps = -1; // only the chosen method's options are checked
  EXPECT_NO_THROW(demix::DeblendPipeline(o, nullptr, cpu64()));
  EXPECT_THROW(demix::DeblendPipeline({.madness = {.max_steps = -1}}, toy_prior(), cpu64()),
               demix::ValueError);
  // A prior of other bands.
  const demix::DeblendPipeline two_bands(
      {}, std::make_shared<ToyGalaxyPrior>(ToyGalaxyPrior::standard(2, kStamp)), cpu64());
  expect_error_naming<demix::ValueError>([&] { two_bands.prepare(image, true_positions()); },
                                         {"2 bands", "toy.fits", "3"});
  // Positions.
  EXPECT_THROW(pipeline.prepare(image, at::zeros({2, 3})), demix::ShapeError);
  expect_error_naming<demix::ValueError>(
      [&] {
        pipeline.prepare(image, at::tensor({10.0, 10.0, 43.5, 5.0}, at::kDouble).view({2, 2}));
      },
      {"galaxy 1", "43.5", "outside", "44 x 40", "toy.fits"});
  EXPECT_THROW(pipeline.prepare(image, at::tensor({10.0, -0.51}, at::kDouble).view({1, 2})),
               demix::ValueError);
  EXPECT_NO_THROW(pipeline.prepare(image, at::tensor({43.49, -0.5}, at::kDouble).view({1, 2})));
  EXPECT_THROW(pipeline.prepare(image, at::tensor({NAN, 3.0}, at::kDouble).view({1, 2})),
               demix::ValueError);
  // Images.
  demix::Image bad = image;
  bad.data = image.data.unsqueeze(0);
  EXPECT_THROW(pipeline.prepare(bad, true_positions()), demix::ShapeError);
  bad.data = at::complex(image.data, image.data);
  EXPECT_THROW(pipeline.prepare(bad, true_positions()), demix::ValueError);
  // A prepared blend edited into nonsense is checked again by deblend().
  demix::PreparedBlend p = pipeline.prepare(image, true_positions());
  p.positions = p.positions + 100;
  EXPECT_THROW(pipeline.deblend(p), demix::ValueError);
  p = pipeline.prepare(image, true_positions());
  p.band_names.pop_back();
  EXPECT_THROW(pipeline.deblend(p), demix::ValueError);
}

TEST(DeblendPipeline, PositionsFromCsvCatalogues) {
  TempDir dir;
  demix::write_text_file(dir.path("pos.csv"), "id,mag,X,Y\n0,22.1,20,25\n1,21.5,30.2,29.8\n");
  EXPECT_TRUE(at::equal(demix::read_positions(dir.path("pos.csv")),
                        at::tensor({20.0, 25.0, 30.2, 29.8}, at::kDouble).view({2, 2})));
  demix::write_text_file(dir.path("head.csv"), "x,y\n");
  EXPECT_EQ(demix::read_positions(dir.path("head.csv")).sizes(), (std::vector<int64_t>{0, 2}));
  demix::write_text_file(dir.path("radec.csv"), "ra,dec\n1,2\n");
  expect_error_naming<demix::FormatError>([&] { demix::read_positions(dir.path("radec.csv")); },
                                          {"radec.csv", "x and y", "ra, dec"});
  // Line numbers count every line of the file, blank ones included.
  demix::write_text_file(dir.path("oops.csv"), "x,y\n1,2\n\n3,oops\n");
  expect_error_naming<demix::FormatError>([&] { demix::read_positions(dir.path("oops.csv")); },
                                          {"oops.csv", "line 4", "'oops'", "column y"});
  demix::write_text_file(dir.path("nan.csv"), "x,y\n1,2\nnan,3\n");
  expect_error_naming<demix::FormatError>([&] { demix::read_positions(dir.path("nan.csv")); },
                                          {"nan.csv", "line 3", "column x"});
  expect_error_naming<demix::IoError>([&] { demix::read_positions(dir.path("none.csv")); },
                                      {"none.csv"});
  // SExtractor's columns and 1-based pixels, in a FITS table; row numbers outside CSV.
  demix::Table se;
  se.add("X_IMAGE", at::tensor({21.0, 31.2}, at::kDouble));
  se.add("Y_IMAGE", at::tensor({26.0, NAN}, at::kDouble));
  demix::write_table(dir.path("se.fits"), se);
  expect_error_naming<demix::FormatError>(
      [&] {
        demix::read_positions(dir.path("se.fits"), {"X_IMAGE", "Y_IMAGE", 1});
      },
      {"se.fits", "row 2", "column Y_IMAGE"});
  se.columns[1].values = at::tensor({26.0, 30.8}, at::kDouble);
  demix::write_table(dir.path("se.fits"), se);
  EXPECT_TRUE(at::allclose(demix::read_positions(dir.path("se.fits"), {"x_image", "y_image", 1}),
                           at::tensor({20.0, 25.0, 30.2, 29.8}, at::kDouble).view({2, 2})));
  EXPECT_THROW(demix::read_positions(dir.path("se.fits"), {"X_IMAGE", "Y_IMAGE", 2}),
               demix::ValueError);
}

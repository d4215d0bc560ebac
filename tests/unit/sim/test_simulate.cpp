// Simulated datasets: blends are the sums of their galaxies' stamps, noise has the survey's sigma,
// seeds reproduce everything (whatever the chunking), the truth catalogue agrees with the images,
// blend sizes and densities follow their definitions, and files round-trip (FITS and CSV) and are
// never left half-written.

#include <demix/core/errors.hpp>
#include <demix/sim/simulate.hpp>

#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

using demix::test::TempDir;

namespace {

const demix::Context& cpu() {
  static const demix::Context c({.device = demix::DeviceKind::Cpu});
  return c;
}

} // namespace

TEST(SimulateIsolated, NoiseSeedsAndChunks) {
  const demix::Survey s = demix::Survey::lsst();
  const demix::IsolatedOptions o{.count = 8, .seed = 11, .max_offset = 0.3};
  const demix::IsolatedSimulator a(s, o, cpu()), b(s, o, cpu());
  const demix::IsolatedChunk all = a.render(0, 8);
  ASSERT_EQ(all.images.sizes(), (std::vector<int64_t>{8, 6, 45, 45}));
  // Same seed: same pixels; another split into chunks: the same noise (one stream per stamp) and
  // the same noiseless pixels up to float rounding (FFT batches of other sizes: ~1e-7 of the peak).
  EXPECT_TRUE(at::equal(all.images, b.render(0, 8).images));
  const demix::IsolatedChunk first = b.render(0, 3), rest = b.render(3, 5);
  const double peak = all.noiseless.abs().max().item<double>();
  EXPECT_LT((all.noiseless - at::cat({first.noiseless, rest.noiseless})).abs().max().item<double>(),
            1e-6 * peak);
  EXPECT_LT(((all.images - all.noiseless) -
             at::cat({first.images - first.noiseless, rest.images - rest.noiseless}))
                .abs()
                .max()
                .item<double>(),
            1e-6 * peak);
  const demix::IsolatedSimulator c(s, {.count = 8, .seed = 12, .max_offset = 0.3}, cpu());
  EXPECT_FALSE(at::equal(all.images, c.render(0, 8).images));
  // Centres within 0.3 pixel of the centre pixel.
  EXPECT_LE((a.galaxies().x - 22).abs().max().item<double>(), 0.3);
  EXPECT_LE((a.galaxies().y - 22).abs().max().item<double>(), 0.3);
  // Noise = images - noiseless: standard deviation sigma_b over 8 x 2025 pixels per band
  // (relative standard error 1 / sqrt(2 x 16200) = 0.0056; tolerance 4 of them).
  const at::Tensor noise = (all.images - all.noiseless).to(at::kDouble);
  for (int band = 0; band < 6; ++band) {
    const double sd = noise.select(1, band).std().item<double>();
    EXPECT_NEAR(sd / s.noise_sigma(band), 1.0, 0.023) << s.bands[band].name;
    EXPECT_NEAR(noise.select(1, band).mean().item<double>() / s.noise_sigma(band), 0.0, 0.032);
  }
}

TEST(SimulateIsolated, SourceNoiseAddsThePoissonVariance) {
  // With the galaxies' own noise, (image - noiseless) / sqrt(sigma^2 + I) is standard normal; on
  // pixels where I > sigma^2 the source term dominates, so a wrong variance would show.
  const demix::Survey s = demix::Survey::lsst();
  const demix::IsolatedSimulator sim(s,
                                     {.count = 40,
                                      .seed = 5,
                                      .source_noise = true,
                                      .population = {.mag_limit = 21, .mag_bright = 18}},
                                     cpu());
  const demix::IsolatedChunk c = sim.render(0, 40);
  const at::Tensor nl = c.noiseless.to(at::kDouble);
  const at::Tensor sigma2 = s.noise_sigmas(at::kDouble).square().view({1, 6, 1, 1});
  const at::Tensor z = (c.images.to(at::kDouble) - nl) / (sigma2 + nl.clamp_min(0)).sqrt();
  const at::Tensor bright = nl > sigma2;
  const int64_t n = bright.sum().item<int64_t>();
  ASSERT_GT(n, 500);
  const double sd = z.masked_select(bright).std().item<double>();
  EXPECT_NEAR(sd, 1.0, 4 / std::sqrt(2.0 * static_cast<double>(n)));
  EXPECT_NEAR(z.std().item<double>(), 1.0, 0.01);
}

TEST(SimulateBlends, BlendIsTheSumOfItsStampsAndStampsFitTheField) {
  const demix::Survey s = demix::Survey::lsst();
  const demix::BlendSimulator sim(
      s, {.count = 12, .seed = 3, .min_galaxies = 2, .max_galaxies = 4, .field_size = 96}, cpu());
  const demix::BlendChunk c = sim.render(0, 12);
  ASSERT_EQ(c.images.sizes(), (std::vector<int64_t>{12, 6, 96, 96}));
  ASSERT_EQ(c.stamps.size(0), sim.galaxy_count());
  const demix::Galaxies& g = sim.galaxies();
  at::Tensor sum = at::zeros_like(c.noiseless);
  for (int64_t i = 0; i < sim.galaxy_count(); ++i) {
    const int64_t x0 = static_cast<int64_t>(std::floor(g.x[i].item<double>() + 0.5)) - 22;
    const int64_t y0 = static_cast<int64_t>(std::floor(g.y[i].item<double>() + 0.5)) - 22;
    ASSERT_GE(x0, 0);
    ASSERT_GE(y0, 0);
    ASSERT_LE(x0 + 45, 96);
    ASSERT_LE(y0 + 45, 96);
    const int64_t k = sim.blend_index()[i].item<int64_t>();
    sum[k].slice(1, y0, y0 + 45).slice(2, x0, x0 + 45) += c.stamps[i];
  }
  // Same float32 additions, possibly in another order: ~1e-7 of the brightest pixel.
  EXPECT_LT((sum - c.noiseless).abs().max().item<double>(),
            1e-6 * c.noiseless.abs().max().item<double>());
  // Chunks give the same blends and stamps, to float rounding (FFTs batched differently may
  // round differently: ~1e-7 of the peak), and exactly the same noise.
  const demix::BlendChunk late = sim.render(5, 4);
  const int64_t g0 = sim.offsets()[5].item<int64_t>(), g1 = sim.offsets()[9].item<int64_t>();
  EXPECT_EQ(late.first_galaxy, g0);
  const double peak = c.noiseless.abs().max().item<double>();
  EXPECT_LT((late.noiseless - c.noiseless.slice(0, 5, 9)).abs().max().item<double>(), 1e-6 * peak);
  EXPECT_LT((late.stamps - c.stamps.slice(0, g0, g1)).abs().max().item<double>(), 1e-6 * peak);
  EXPECT_LT(((late.images - late.noiseless) - (c.images - c.noiseless).slice(0, 5, 9))
                .abs()
                .max()
                .item<double>(),
            1e-6 * peak);
}

TEST(SimulateBlends, GalaxyCountsAndDensities) {
  const demix::Survey s = demix::Survey::lsst();
  // Sizes uniform in [2, 4]: each value has probability 1/3; 3000 blends: binomial sd 25.8.
  const demix::BlendSimulator sim(
      s, {.count = 3000, .seed = 9, .min_galaxies = 2, .max_galaxies = 4}, cpu());
  const at::Tensor n = sim.offsets().slice(0, 1) - sim.offsets().slice(0, 0, 3000);
  for (int64_t k = 2; k <= 4; ++k)
    EXPECT_NEAR((n == k).sum().item<int64_t>(), 1000, 4 * 25.8) << k << " galaxies";
  EXPECT_EQ(n.min().item<int64_t>(), 2);
  EXPECT_EQ(n.max().item<int64_t>(), 4);
  // Without a density: one square of side field - S + 1 = 76 pixels for every blend, centred on
  // (59.5, 59.5); the centres stay inside it.
  EXPECT_TRUE((sim.region_side() == 76).all().item<bool>());
  const auto& g = sim.galaxies();
  EXPECT_LE((g.x - 59.5).abs().max().item<double>(), 38.0);
  EXPECT_LE((g.y - 59.5).abs().max().item<double>(), 38.0);
  // Centres are uniform: their mean is the square's centre (sd 76 / sqrt(12 N) ~ 0.24 pixel).
  EXPECT_NEAR(g.x.mean().item<double>(), 59.5, 1.0);
  // With a density: n galaxies over a square of area n / density, n / side^2 = density exactly.
  const demix::BlendSimulator dense(s,
                                    {.count = 50,
                                     .seed = 1,
                                     .min_galaxies = 2,
                                     .max_galaxies = 5,
                                     .field_size = 128,
                                     .density = 64},
                                    cpu());
  const at::Tensor nd =
      (dense.offsets().slice(0, 1) - dense.offsets().slice(0, 0, 50)).to(at::kDouble);
  const at::Tensor area = dense.region_side().square() * std::pow(0.2 / 60, 2); // arcmin^2
  EXPECT_LT((nd / area - 64).abs().max().item<double>(), 1e-9);
  // 6 galaxies at 48 per arcmin^2 need a 107-pixel square: a 120-pixel field (76 usable) is too
  // small, and the message says how large a field would do.
  try {
    demix::BlendSimulator(s, {.count = 2, .density = 48}, cpu());
    FAIL() << "no error";
  } catch (const demix::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("at least 151 pixels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(demix::BlendSimulator(s, {.count = 2, .min_galaxies = 3, .max_galaxies = 2}, cpu()),
               demix::ValueError);
  EXPECT_THROW(demix::BlendSimulator(s, {.count = 2, .field_size = 40}, cpu()), demix::ValueError);
  EXPECT_THROW(demix::BlendSimulator(s, {.count = 0}, cpu()), demix::ValueError);
}

TEST(SimulateFiles, BlendDatasetRoundTripAndTruthMatchesImages) {
  TempDir dir;
  const demix::Survey s = demix::Survey::lsst();
  const demix::BlendSimulator sim(
      s, {.count = 5, .seed = 21, .min_galaxies = 1, .max_galaxies = 3, .field_size = 64}, cpu());
  int64_t calls = 0;
  demix::write_blend_dataset(
      dir.path("b.fits"), sim,
      {.csv_path = dir.path("b.csv"), .chunk = 2, .progress = [&](int64_t done, int64_t total) {
         ++calls;
         EXPECT_EQ(total, 5);
         EXPECT_LE(done, 5);
       }});
  EXPECT_EQ(calls, 3);
  const demix::SimulatedDataset d = demix::read_dataset(dir.path("b.fits"));
  const demix::BlendChunk c = sim.render(0, 5);
  EXPECT_EQ(d.kind, "blends");
  // Written in chunks of 2, rendered here at once: equal to float rounding (FFT batches).
  const double peak = c.noiseless.abs().max().item<double>();
  EXPECT_LT((d.images - c.images).abs().max().item<double>(), 1e-6 * peak);
  EXPECT_LT((d.noiseless - c.noiseless).abs().max().item<double>(), 1e-6 * peak);
  EXPECT_LT((d.stamps - c.stamps).abs().max().item<double>(), 1e-6 * peak);
  EXPECT_EQ(d.psf.sizes(), (std::vector<int64_t>{6, 45, 45}));
  EXPECT_EQ(d.bands, (std::vector<std::string>{"u", "g", "r", "i", "z", "y"}));
  for (int b = 0; b < 6; ++b) EXPECT_DOUBLE_EQ(d.sigma[b].item<double>(), s.noise_sigma(b));
  EXPECT_EQ(d.header.number("SEED"), 21.0);
  EXPECT_EQ(d.header.number("FIELDSZ"), 64.0);
  EXPECT_EQ(d.header.value("PSFMODEL"), "moffat");
  // Truth: one row per galaxy, positions, stamp corners and fluxes consistent with the images.
  const demix::Table& t = d.truth;
  ASSERT_EQ(t.rows(), sim.galaxy_count());
  EXPECT_TRUE(at::equal(t.column("x").values, sim.galaxies().x));
  EXPECT_TRUE(at::equal(t.column("blend_id").values, sim.blend_index()));
  const at::Tensor x0 = t.column("stamp_x0").values, y0 = t.column("stamp_y0").values;
  EXPECT_TRUE(at::equal(x0, ((sim.galaxies().x + 0.5).floor() - 22).to(at::kLong)));
  for (int b = 0; b < 6; ++b) {
    const std::string name = s.bands[b].name;
    // stamp_flux = sum of the stamp (float32 images summed in float64, rounding: 1e-6).
    const at::Tensor stamp_sum = c.stamps.select(1, b).to(at::kDouble).sum({1, 2});
    EXPECT_LT(((t.column("stamp_flux_" + name).values - stamp_sum).abs() / stamp_sum)
                  .max()
                  .item<double>(),
              1e-6);
    // mag = zero point - 2.5 log10(flux / exposure).
    const at::Tensor mag =
        s.bands[b].zero_point_mag -
        2.5 * (t.column("flux_" + name).values / s.bands[b].exposure_time_s).log10();
    EXPECT_LT((mag - t.column("mag_" + name).values).abs().max().item<double>(), 1e-9);
  }
  // The CSV holds the same table (shortest round-trip decimal forms: exact).
  const demix::Table csv = demix::read_csv(dir.path("b.csv"));
  ASSERT_EQ(csv.columns.size(), t.columns.size());
  for (std::size_t j = 0; j < t.columns.size(); ++j) {
    EXPECT_EQ(csv.columns[j].name, t.columns[j].name);
    EXPECT_TRUE(
        at::equal(csv.columns[j].values.to(at::kDouble), t.columns[j].values.to(at::kDouble)))
        << t.columns[j].name;
  }
  EXPECT_EQ(dir.files().size(), 2u); // no temporaries left
}

TEST(SimulateFiles, IsolatedCatalogueFluxMatchesApertureFlux) {
  // Bright, compact galaxies (disk hlr < 0.5", bulge share < 0.1 in i), noiseless: the stamp holds
  // the catalogue's total flux but for the PSF's wings beyond 22 pixels (2.6e-4) and the profiles'
  // own (exponential beyond 9 r_e: 1e-6; a 10% de Vaucouleurs bulge of hlr <= 0.25": < 1e-3).
  TempDir dir;
  const demix::Survey s = demix::Survey::lsst();
  const demix::IsolatedSimulator sim(
      s,
      {.count = 150, .seed = 2, .noise = false, .population = {.mag_limit = 22, .mag_bright = 19}},
      cpu());
  demix::write_isolated_dataset(dir.path("i.fits"), sim);
  const demix::SimulatedDataset d = demix::read_dataset(dir.path("i.fits"));
  EXPECT_EQ(d.kind, "isolated");
  EXPECT_FALSE(d.noiseless.defined()); // NOISE = F: the stamps are the noiseless images
  EXPECT_EQ(d.header.value("NOISE"), "F");
  const int i = s.band_index("i");
  const at::Tensor flux = d.truth.column("flux_i").values;
  const at::Tensor aperture = d.images.select(1, i).to(at::kDouble).sum({1, 2});
  const at::Tensor compact = (d.truth.column("hlr_disk").values < 0.5)
                                 .logical_and(d.truth.column("bulge_frac_i").values < 0.1);
  ASSERT_GT(compact.sum().item<int64_t>(), 5);
  const at::Tensor ratio = (aperture / flux).masked_select(compact);
  EXPECT_LT((ratio - 1).abs().max().item<double>(), 2e-3);
  EXPECT_LE(ratio.max().item<double>(), 1.0 + 1e-6); // a stamp never holds more than the model
  // The brightest pixel is the centre one for centred galaxies.
  const at::Tensor peak = d.images.select(1, i).flatten(1).argmax(1);
  EXPECT_TRUE((peak == 22 * 45 + 22).all().item<bool>());
}

TEST(SimulateFiles, SingleBlendFileAndFailures) {
  TempDir dir;
  const demix::Survey s = demix::Survey::lsst();
  const demix::BlendSimulator sim(s, {.count = 1, .seed = 4, .min_galaxies = 2, .max_galaxies = 2},
                                  cpu());
  demix::write_blend_dataset(dir.path("one.fits"), sim, {.csv_path = dir.path("one.csv")});
  // HDU 0 is the (B, H, W) blend itself, as `demix deblend` reads it.
  const demix::FitsImage primary = demix::read_fits(dir.path("one.fits"));
  EXPECT_EQ(primary.hdu_index, 0);
  EXPECT_EQ(primary.data.sizes(), (std::vector<int64_t>{6, 120, 120}));
  const demix::SimulatedDataset d = demix::read_dataset(dir.path("one.fits"));
  EXPECT_EQ(d.images.sizes(), (std::vector<int64_t>{1, 6, 120, 120}));
  EXPECT_EQ(d.stamps.sizes(), (std::vector<int64_t>{2, 6, 45, 45}));
  const demix::Table csv = demix::read_csv(dir.path("one.csv"));
  EXPECT_EQ(csv.rows(), 2);
  EXPECT_TRUE(at::equal(csv.column("x").values, sim.galaxies().x));
  // A CSV that cannot be written: neither file appears.
  EXPECT_THROW(demix::write_blend_dataset(dir.path("two.fits"), sim,
                                          {.csv_path = dir.path("no/such/dir/two.csv")}),
               demix::IoError);
  EXPECT_THROW(demix::write_blend_dataset(dir.path("no/such/dir/two.fits"), sim), demix::IoError);
  EXPECT_EQ(dir.files().size(), 2u);
  EXPECT_THROW(demix::read_dataset(dir.path("one.csv")), demix::Error);
}

// The dataset file format (sim/dataset.hpp): the HDUs of each kind and of one-item files, a
// write/read round trip, every reader of the format (read_dataset, read_dataset_images, training's
// read_galaxy_stamps, the deblending pipeline's noise levels) seeing the same stamps and sigmas,
// and bad files rejected with IoError / FormatError / ShapeError naming the file and what is wrong.

#include <demix/core/errors.hpp>
#include <demix/deblend/pipeline.hpp>
#include <demix/deblend/stamps.hpp>
#include <demix/io/image_io.hpp>
#include <demix/models/training.hpp>
#include <demix/sim/dataset.hpp>
#include <demix/sim/simulate.hpp>

#include "support/expect_error.hpp"
#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

using demix::test::expect_error_naming;
using demix::test::TempDir;

namespace {

const demix::Context& cpu() {
  static const demix::Context c({.device = demix::DeviceKind::Cpu});
  return c;
}

// Small items keep the rendering fast: 15-pixel stamps, 31-pixel blends.
constexpr int64_t kStamp = 15, kField = 31;

demix::IsolatedSimulator isolated(int64_t count, bool noise = true) {
  return demix::IsolatedSimulator(demix::Survey::lsst(),
                                  {.count = count, .seed = 3, .stamp_size = kStamp, .noise = noise},
                                  cpu());
}

demix::BlendSimulator blends(int64_t count) {
  return demix::BlendSimulator(demix::Survey::lsst(),
                               {.count = count,
                                .seed = 5,
                                .min_galaxies = 2,
                                .max_galaxies = 3,
                                .field_size = kField,
                                .stamp_size = kStamp},
                               cpu());
}

std::vector<std::string> hdu_names(const std::string& path) {
  std::vector<std::string> names;
  for (const auto& h : demix::list_fits_hdus(path)) names.push_back(h.name);
  return names;
}

std::vector<double> survey_sigmas() {
  const demix::Survey s = demix::Survey::lsst();
  std::vector<double> v;
  for (int b = 0; b < s.n_bands(); ++b) v.push_back(s.noise_sigma(b));
  return v;
}

std::vector<double> values(const at::Tensor& t /* (n) float64 */) {
  const at::Tensor c = t.contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

/// An isolated dataset `d` written back with `header`, without the HDUs in `drop`, with
/// `noiseless` instead of d.noiseless when given: a file for the reader to reject.
void rewrite(const std::string& path, const demix::SimulatedDataset& d,
             const demix::FitsHeader& header, const std::set<std::string>& drop = {},
             const at::Tensor& noiseless = {}) {
  demix::FitsWriter out(path);
  out.add_empty_primary(header);
  out.add_image("STAMPS", d.images, header);
  if (!drop.count("NOISELESS"))
    out.add_image("NOISELESS", noiseless.defined() ? noiseless : d.noiseless, header);
  if (!drop.count("PSF")) out.add_image("PSF", d.psf, header);
  if (!drop.count("TRUTH")) out.add_table("TRUTH", d.truth);
  out.commit();
}

} // namespace

TEST(Dataset, HdusAndKeywordsOfEachKind) {
  TempDir dir;
  const auto iso = isolated(3), quiet = isolated(3, false), one_stamp = isolated(1);
  const auto bl = blends(2), one_blend = blends(1);
  demix::write_isolated_dataset(dir.path("i.fits"), iso);
  demix::write_isolated_dataset(dir.path("q.fits"), quiet);
  demix::write_isolated_dataset(dir.path("i1.fits"), one_stamp);
  demix::write_blend_dataset(dir.path("b.fits"), bl);
  demix::write_blend_dataset(dir.path("b1.fits"), one_blend);
  using V = std::vector<std::string>;
  EXPECT_EQ(hdu_names(dir.path("i.fits")), (V{"PRIMARY", "STAMPS", "NOISELESS", "PSF", "TRUTH"}));
  EXPECT_EQ(hdu_names(dir.path("q.fits")), (V{"PRIMARY", "STAMPS", "PSF", "TRUTH"}));
  EXPECT_EQ(hdu_names(dir.path("i1.fits")), (V{"PRIMARY", "NOISELESS", "PSF", "TRUTH"}));
  EXPECT_EQ(hdu_names(dir.path("b.fits")),
            (V{"PRIMARY", "BLENDS", "NOISELESS", "STAMPS", "PSF", "TRUTH"}));
  EXPECT_EQ(hdu_names(dir.path("b1.fits")), (V{"PRIMARY", "NOISELESS", "STAMPS", "PSF", "TRUTH"}));
  // Axes in FITS order (NAXIS1 first): N > 1 images are 4-D, a one-item file's HDU 0 is 3-D.
  const auto hdus = demix::list_fits_hdus(dir.path("b.fits"));
  EXPECT_EQ(hdus[1].naxes, (std::vector<long long>{kField, kField, 6, 2}));
  EXPECT_EQ(hdus[3].naxes, (std::vector<long long>{kStamp, kStamp, 6, bl.galaxy_count()}));
  EXPECT_TRUE(hdus[0].naxes.empty());
  EXPECT_EQ(demix::list_fits_hdus(dir.path("b1.fits"))[0].naxes,
            (std::vector<long long>{kField, kField, 6}));

  const demix::FitsHeader h = demix::read_fits(dir.path("b.fits") + "[BLENDS]").header;
  EXPECT_EQ(h.value("DATASET"), "blends");
  EXPECT_EQ(h.number("NITEMS"), 2.0);
  EXPECT_EQ(h.number("NGAL"), static_cast<double>(bl.galaxy_count()));
  EXPECT_EQ(h.number("STAMPSZ"), static_cast<double>(kStamp));
  EXPECT_EQ(h.number("FIELDSZ"), static_cast<double>(kField));
  EXPECT_EQ(h.value("NOISE"), "T");
  EXPECT_EQ(h.value("BAND3"), "r");
  EXPECT_EQ(demix::read_noise_sigmas(h, 6, "b.fits"), survey_sigmas());
  const demix::FitsHeader hi = demix::read_fits(dir.path("q.fits") + "[STAMPS]").header;
  EXPECT_EQ(hi.value("DATASET"), "isolated");
  EXPECT_EQ(hi.value("NOISE"), "F");
  EXPECT_EQ(hi.number("MAXOFFS"), 0.0);
  EXPECT_FALSE(hi.contains("FIELDSZ"));
}

TEST(Dataset, OneBlendFileRoundTrip) {
  // One item goes through the same chunked path as many, its HDU 0 being the (B, H, W) image:
  // the pixels read back are the simulator's (the same render, stored as float32: exact).
  TempDir dir;
  const auto sim = blends(1);
  int64_t calls = 0;
  demix::write_blend_dataset(dir.path("b1.fits"), sim,
                             {.progress = [&](int64_t done, int64_t total) {
                               ++calls;
                               EXPECT_EQ(done, 1);
                               EXPECT_EQ(total, 1);
                             }});
  EXPECT_EQ(calls, 1);
  const demix::BlendChunk c = sim.render(0, 1);
  const demix::SimulatedDataset d = demix::read_dataset(dir.path("b1.fits"));
  EXPECT_EQ(d.kind, "blends");
  EXPECT_TRUE(at::equal(d.images, c.images));
  EXPECT_TRUE(at::equal(d.noiseless, c.noiseless));
  EXPECT_TRUE(at::equal(d.stamps, c.stamps));
  EXPECT_EQ(d.psf.sizes(), (std::vector<int64_t>{6, kStamp, kStamp}));
  ASSERT_EQ(d.truth.rows(), sim.galaxy_count());
  EXPECT_TRUE(at::equal(d.truth.column("x").values, sim.galaxies().x));
  EXPECT_TRUE(at::equal(d.truth.column("galaxy_id").values, at::arange(sim.galaxy_count())));
  // The stamp corners are each galaxy's nearest pixel minus S / 2, and the blend is the sum of the
  // stamps placed there.
  const at::Tensor x0 = d.truth.column("stamp_x0").values, y0 = d.truth.column("stamp_y0").values;
  EXPECT_TRUE(at::equal(at::stack({x0, y0}, 1), sim.stamp_origins()));
  EXPECT_TRUE(at::equal(x0, demix::nearest_pixel(sim.galaxies().x) - kStamp / 2));
  at::Tensor sum = at::zeros({6, kField, kField});
  for (int64_t i = 0; i < sim.galaxy_count(); ++i) {
    const int64_t cx = x0[i].item<int64_t>(), cy = y0[i].item<int64_t>();
    sum.slice(1, cy, cy + kStamp).slice(2, cx, cx + kStamp).add_(d.stamps[i]);
  }
  EXPECT_TRUE(at::equal(sum, d.noiseless[0])); // the same additions in the same order
  EXPECT_EQ(dir.files().size(), 1u);
}

TEST(Dataset, EveryReaderSeesTheSameStampsAndSigmas) {
  TempDir dir;
  demix::write_isolated_dataset(dir.path("i.fits"), isolated(4));
  demix::write_isolated_dataset(dir.path("i1.fits"), isolated(1));
  demix::write_blend_dataset(dir.path("b1.fits"), blends(1));
  const std::vector<std::string> ugrizy{"u", "g", "r", "i", "z", "y"};

  // Isolated stamps: the full reader, the images-only reader and training's reader.
  for (const std::string name : {"i.fits", "i1.fits"}) {
    const demix::SimulatedDataset all = demix::read_dataset(dir.path(name));
    const demix::SimulatedDataset images = demix::read_dataset_images(dir.path(name));
    const demix::GalaxyStampSet training = demix::read_galaxy_stamps(dir.path(name));
    EXPECT_EQ(all.images.size(0), name == "i.fits" ? 4 : 1);
    EXPECT_TRUE(at::equal(images.images, all.images)) << name;
    EXPECT_TRUE(at::equal(training.stamps, all.images)) << name;
    EXPECT_TRUE(at::equal(images.noiseless, all.noiseless)) << name;
    EXPECT_TRUE(at::equal(training.noiseless, all.noiseless)) << name;
    EXPECT_EQ(values(all.sigma), survey_sigmas()) << name;
    EXPECT_EQ(values(images.sigma), survey_sigmas()) << name;
    EXPECT_EQ(training.noise_sigmas, survey_sigmas()) << name;
    EXPECT_EQ(all.bands, ugrizy);
    EXPECT_EQ(images.bands, ugrizy);
    EXPECT_EQ(training.band_names, ugrizy);
    EXPECT_FALSE(images.psf.defined());
    EXPECT_EQ(images.truth.rows(), 0);
  }

  // One blend: the full reader, `demix deblend`'s image reader and the pipeline's noise levels.
  const demix::SimulatedDataset d = demix::read_dataset(dir.path("b1.fits"));
  const demix::Image image = demix::read_image(dir.path("b1.fits"));
  EXPECT_TRUE(at::equal(image.data, d.images[0]));
  EXPECT_EQ(demix::read_noise_sigmas(image.header, 6, image.source), survey_sigmas());
  EXPECT_EQ(demix::read_band_names(image.header, 6), ugrizy);
  const demix::DeblendPipeline pipeline({.method = demix::DeblendMethod::Classical}, nullptr,
                                        cpu());
  const demix::PreparedBlend blend = pipeline.prepare(
      image, at::stack({d.truth.column("x").values, d.truth.column("y").values}, 1));
  EXPECT_EQ(blend.noise_source, demix::NoiseSource::Keywords);
  EXPECT_TRUE(at::equal(blend.noise_sigmas, d.sigma));
  EXPECT_EQ(blend.band_names, ugrizy);
}

TEST(Dataset, KeywordReadersNameTheFileAndKeyword) {
  demix::FitsHeader h;
  EXPECT_TRUE(demix::read_noise_sigmas(h, 3, "f.fits").empty()); // none: not an error
  EXPECT_TRUE(demix::read_band_names(h, 3).empty());
  h.set("SIGMA1", 1.5);
  h.set("SIGMA2", 2.0);
  h.set("SIGMA3", 3.0);
  h.set("BAND1", std::string("g"));
  h.set("BAND2", std::string("r"));
  EXPECT_EQ(demix::read_noise_sigmas(h, 3, "f.fits"), (std::vector<double>{1.5, 2.0, 3.0}));
  EXPECT_EQ(demix::read_noise_sigmas(h, 2, "f.fits"), (std::vector<double>{1.5, 2.0}));
  EXPECT_EQ(demix::read_band_names(h, 2), (std::vector<std::string>{"g", "r"}));
  EXPECT_TRUE(demix::read_band_names(h, 3).empty()); // BAND3 missing: no names
  expect_error_naming<demix::FormatError>([&] { demix::read_noise_sigmas(h, 4, "f.fits"); },
                                          {"f.fits", "SIGMA4"});
  demix::FitsHeader bad = h;
  bad.set("SIGMA2", -1.0);
  expect_error_naming<demix::FormatError>([&] { demix::read_noise_sigmas(bad, 3, "f.fits"); },
                                          {"f.fits", "SIGMA2"});
  bad.set("SIGMA2", std::string("high"));
  expect_error_naming<demix::FormatError>([&] { demix::read_noise_sigmas(bad, 3, "f.fits"); },
                                          {"f.fits", "SIGMA2"});
}

TEST(Dataset, BadFilesNameTheFileAndWhatIsWrong) {
  TempDir dir;
  demix::write_isolated_dataset(dir.path("i.fits"), isolated(3));
  demix::write_blend_dataset(dir.path("b.fits"), blends(2));
  const demix::SimulatedDataset d = demix::read_dataset(dir.path("i.fits"));

  expect_error_naming<demix::IoError>([&] { demix::read_dataset(dir.path("none.fits")); },
                                      {"none.fits"});
  demix::write_text_file(dir.path("t.csv"), "x,y\n1,2\n");
  expect_error_naming<demix::FormatError>([&] { demix::read_dataset(dir.path("t.csv")); },
                                          {"t.csv"});
  // No TRUTH: not a dataset, but its images are readable (as training reads them).
  rewrite(dir.path("notruth.fits"), d, d.header, {"TRUTH"});
  expect_error_naming<demix::FormatError>([&] { demix::read_dataset(dir.path("notruth.fits")); },
                                          {"notruth.fits", "TRUTH"});
  EXPECT_TRUE(at::equal(demix::read_dataset_images(dir.path("notruth.fits")).images, d.images));
  demix::FitsHeader h = d.header;
  h.set("DATASET", std::string("mosaic"));
  rewrite(dir.path("kind.fits"), d, h);
  expect_error_naming<demix::FormatError>([&] { demix::read_dataset(dir.path("kind.fits")); },
                                          {"kind.fits", "DATASET", "mosaic"});
  h = d.header;
  h.set("NBANDS", 5LL);
  rewrite(dir.path("nbands.fits"), d, h);
  expect_error_naming<demix::FormatError>([&] { demix::read_dataset(dir.path("nbands.fits")); },
                                          {"nbands.fits", "NBANDS"});
  h = d.header;
  h.set("SIGMA5", 0.0);
  rewrite(dir.path("sigma.fits"), d, h);
  for (auto* reader : {&demix::read_dataset, &demix::read_dataset_images})
    expect_error_naming<demix::FormatError>([&] { reader(dir.path("sigma.fits")); },
                                            {"sigma.fits", "SIGMA5"});
  expect_error_naming<demix::FormatError>(
      [&] { demix::read_galaxy_stamps(dir.path("sigma.fits")); }, {"sigma.fits", "SIGMA5"});
  rewrite(dir.path("shape.fits"), d, d.header, {}, d.noiseless.narrow(0, 0, 2));
  expect_error_naming<demix::ShapeError>([&] { demix::read_dataset(dir.path("shape.fits")); },
                                         {"shape.fits", "NOISELESS"});
  // Blends are no training set.
  expect_error_naming<demix::FormatError>([&] { demix::read_galaxy_stamps(dir.path("b.fits")); },
                                          {"b.fits", "blends"});
}

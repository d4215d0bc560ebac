// MadnessModel: a save/load round trip gives bit-identical encode/decode/log_prob and the same
// metadata; damaged, missing or foreign files give IoError/FormatError naming the file.

#include <demix/core/errors.hpp>
#include <demix/io/npy.hpp>
#include <demix/models/madness_model.hpp>

#include "io/detail/tensor_archive.hpp"
#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

using demix::test::TempDir;

namespace {

demix::MadnessModel small_model(bool with_flow) {
  demix::GalaxyVae vae({.bands = 3,
                        .stamp_size = 11,
                        .latent_dim = 5,
                        .encoder_channels = {4, 6},
                        .decoder_channels = {6, 4, 4},
                        .dense_units = 12,
                        .band_scales = {10, 20, 30}},
                       3);
  demix::MadnessModel model(std::move(vae),
                            {.band_names = {"g", "r", "i"},
                             .noise_sigmas = {10, 20, 30},
                             .provenance = {"demix train-vae x.npy -o m.dmx", "second line"}});
  if (with_flow) {
    demix::LatentFlow flow({.dim = 5, .blocks = 2, .hidden = {8}}, 4);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
    for (auto& p : flow.parameters())
      p.tensor = p.tensor + 0.2 * at::randn(p.tensor.sizes(), gen, at::kFloat);
    model.set_flow(std::move(flow));
  }
  return model;
}

std::string read_all(const std::string& path) {
  std::ifstream is(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>()};
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename E>
void expect_error_naming(const std::string& path, const std::string& fragment) {
  try {
    demix::MadnessModel::load(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

} // namespace

TEST(MadnessModel, SaveLoadRoundTripIsExact) {
  TempDir dir;
  const demix::MadnessModel model = small_model(true);
  model.save(dir.path("m.dmx"));
  const demix::MadnessModel back = demix::MadnessModel::load(dir.path("m.dmx"));

  const at::Tensor x = at::randn({4, 3, 11, 11}) * 50;
  const at::Tensor z = at::randn({4, 5});
  EXPECT_TRUE(at::equal(model.encode(x), back.encode(x)));
  EXPECT_TRUE(at::equal(model.decode(z), back.decode(z)));
  EXPECT_TRUE(at::equal(model.log_prob(z), back.log_prob(z)));
  EXPECT_EQ(back.metadata().band_names, model.metadata().band_names);
  EXPECT_EQ(back.metadata().noise_sigmas, model.metadata().noise_sigmas);
  EXPECT_EQ(back.metadata().provenance, model.metadata().provenance);
  EXPECT_EQ(back.vae().options().encoder_channels, model.vae().options().encoder_channels);
  EXPECT_EQ(back.vae().options().band_scales, model.vae().options().band_scales);
  EXPECT_EQ(back.flow().options().hidden, model.flow().options().hidden);
  EXPECT_EQ(back.latent_dim(), 5);
  EXPECT_EQ(back.n_bands(), 3);
  EXPECT_EQ(back.stamp_size(), 11);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"m.dmx"}); // no temporary left
}

TEST(MadnessModel, WithoutFlowLogProbExplainsWhatIsMissing) {
  TempDir dir;
  small_model(false).save(dir.path("vae_only.dmx"));
  const demix::MadnessModel back = demix::MadnessModel::load(dir.path("vae_only.dmx"));
  EXPECT_FALSE(back.has_flow());
  EXPECT_EQ(back.decode(at::zeros({1, 5})).sizes(), (std::vector<int64_t>{1, 3, 11, 11}));
  try {
    back.log_prob(at::zeros({1, 5}));
    ADD_FAILURE();
  } catch (const demix::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("train-flow"), std::string::npos);
  }
}

TEST(MadnessModel, DamagedMissingAndForeignFilesAreRefused) {
  TempDir dir;
  const std::string good = dir.path("m.dmx");
  small_model(true).save(good);
  const std::string bytes = read_all(good);

  expect_error_naming<demix::IoError>(dir.path("missing.dmx"), "not found");

  const std::string truncated = dir.path("truncated.dmx");
  write_all(truncated, bytes.substr(0, bytes.size() / 2));
  expect_error_naming<demix::FormatError>(truncated, "corrupt");

  std::string flipped_bytes = bytes;
  flipped_bytes[bytes.size() / 3] ^= 0x10;
  const std::string flipped = dir.path("flipped.dmx");
  write_all(flipped, flipped_bytes);
  expect_error_naming<demix::FormatError>(flipped, "checksum");

  const std::string npy = dir.path("x.npy");
  demix::write_npy(npy, at::zeros({2, 2}));
  expect_error_naming<demix::FormatError>(npy, "not a demix model");

  const std::string empty = dir.path("empty.dmx");
  write_all(empty, "");
  expect_error_naming<demix::FormatError>(empty, "not a demix model");

  // Saving into a missing folder fails without leaving anything behind.
  EXPECT_THROW(small_model(false).save(dir.path("nope/m.dmx")), demix::IoError);
}

// weight_count predicts the networks' sizes without building them: what lets a model file with
// absurd options (a dense layer of 2^40 units) be refused before anything is allocated.
TEST(MadnessModel, WeightCountsAreTheNetworksOwnAndBoundFileOptions) {
  const auto count = [](const demix::NamedTensors& params) {
    std::int64_t n = 0;
    for (const auto& p : params) n += p.tensor.numel();
    return n;
  };
  for (const demix::VaeOptions& o :
       {demix::VaeOptions{.band_scales = {1, 2, 3, 4, 5, 6}}, demix::VaeOptions{.bands = 2,
                                                              .stamp_size = 13,
                                                              .latent_dim = 3,
                                                              .encoder_channels = {5},
                                                              .decoder_channels = {3, 2, 2, 2},
                                                              .dense_units = 7,
                                                              .band_scales = {1, 1}}})
    EXPECT_EQ(demix::GalaxyVae::weight_count(o), count(demix::GalaxyVae(o).parameters()));
  for (const demix::FlowOptions& o :
       {demix::FlowOptions{}, demix::FlowOptions{.dim = 3, .blocks = 2, .hidden = {4, 5, 2}}})
    EXPECT_EQ(demix::LatentFlow::weight_count(o), count(demix::LatentFlow(o).parameters()));
  EXPECT_THROW(
      demix::GalaxyVae({.dense_units = std::int64_t{1} << 40, .band_scales = {1, 1, 1, 1, 1, 1}}),
      demix::ValueError);

  TempDir dir;
  small_model(true).save(dir.path("m.dmx"));
  auto archive = demix::detail::TensorArchive::load(dir.path("m.dmx"));
  archive.put_int("vae.option.dense_units", std::int64_t{1} << 40);
  archive.save(dir.path("huge.dmx"));
  expect_error_naming<demix::FormatError>(dir.path("huge.dmx"), "weights, the file holds");
  archive = demix::detail::TensorArchive::load(dir.path("m.dmx"));
  archive.put_int("flow.option.blocks", 1000);
  archive.save(dir.path("blocks.dmx"));
  expect_error_naming<demix::FormatError>(dir.path("blocks.dmx"), "flow.option.* entries describe");
}

TEST(MadnessModel, MovesBetweenDtypesAndChecksMetadata) {
  demix::MadnessModel model = small_model(true);
  const at::Tensor z = at::randn({2, 5});
  const at::Tensor lp = model.log_prob(z);
  model.to(at::kCPU, at::kDouble);
  EXPECT_EQ(model.dtype(), at::kDouble);
  EXPECT_EQ(model.flow().dtype(), at::kDouble);
  // float32 vs float64 evaluation of the same weights: float32 rounding of O(10) log densities.
  EXPECT_LT((model.log_prob(z.to(at::kDouble)).to(at::kFloat) - lp).abs().max().item<double>(),
            1e-4);
  EXPECT_THROW(model.set_flow(demix::LatentFlow({.dim = 4})), demix::ValueError);
  EXPECT_THROW(
      demix::MadnessModel(
          demix::GalaxyVae({.bands = 1, .stamp_size = 5, .latent_dim = 2, .band_scales = {1}}),
          {.band_names = {"g", "r"}, .noise_sigmas = {1}}),
      demix::ValueError);
}

// The galaxy VAE: shapes for several stamp sizes, the output convention (s_b exp(u)), the KL term
// against a Monte-Carlo estimate, decoder gradients against finite differences, input checks, and
// the decoder's compute settings (layout, reduced precision on CUDA).

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/models/vae.hpp>

#include "support/gradient_check.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

namespace {

const std::vector<double> kScales{100, 150, 200, 300, 400, 500};

demix::VaeOptions small_options(int64_t stamp) {
  return {.bands = 3,
          .stamp_size = stamp,
          .latent_dim = 4,
          .encoder_channels = {4, 8},
          .decoder_channels = {8, 4, 4},
          .dense_units = 16,
          .band_scales = {50, 100, 200}};
}

} // namespace

TEST(GalaxyVae, ShapesAndPositiveOutputForDefaultAndSmallStamps) {
  demix::GalaxyVae vae({.band_scales = kScales});
  const at::Tensor x = at::randn({3, 6, 45, 45}) * 300;
  const demix::VaeEncoding q = vae.encode(x);
  EXPECT_EQ(q.mean.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(q.log_var.sizes(), (std::vector<int64_t>{3, 16}));
  const at::Tensor y = vae.decode(q.mean);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 6, 45, 45}));
  EXPECT_GE(y.min().item<double>(), 0.0);
  // The decoder the deblender runs hundreds of times per galaxy stays small.
  int64_t decoder = 0;
  for (const auto& p : vae.parameters())
    if (p.name.rfind("decoder.", 0) == 0) decoder += p.tensor.numel();
  EXPECT_LT(decoder, 1'000'000);

  for (int64_t stamp : {15, 21, 33, 5}) {
    demix::GalaxyVae v(small_options(stamp));
    const at::Tensor s = v.decode(v.encode(at::randn({2, 3, stamp, stamp})).mean);
    EXPECT_EQ(s.sizes(), (std::vector<int64_t>{2, 3, stamp, stamp})) << stamp;
  }
}

TEST(GalaxyVae, DecoderOutputIsScaleTimesExpOfLastLayer) {
  // With the last convolution zeroed and its bias log(2), every pixel must be 2 s_b.
  demix::GalaxyVae vae(small_options(15));
  for (auto& p : vae.parameters()) {
    if (p.name == "decoder.out.weight") p.tensor.zero_();
    if (p.name == "decoder.out.bias") p.tensor.fill_(std::log(2.0));
  }
  const at::Tensor y = vae.decode(at::randn({2, 4}));
  const at::Tensor expected = 2 * at::tensor({50.0, 100.0, 200.0}, at::kFloat).view({1, 3, 1, 1});
  EXPECT_LT((y - expected).abs().max().item<double>(), 1e-4); // float32 rounding of exp and log
  EXPECT_TRUE(at::allclose(vae.band_scales(), at::tensor({50.0, 100.0, 200.0}, at::kFloat)));
}

TEST(GalaxyVae, KlDivergenceMatchesMonteCarlo) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(11);
  const at::Tensor mean = at::tensor({0.5, -1.0, 0.2, 2.0}, at::kDouble).view({1, 4});
  const at::Tensor log_var = at::tensor({-1.0, 0.3, -2.5, 0.0}, at::kDouble).view({1, 4});
  const double closed = demix::GalaxyVae::kl_divergence({mean, log_var}).item<double>();
  const int64_t n = 200000;
  const at::Tensor eps = at::randn({n, 4}, gen, at::kDouble);
  const at::Tensor z = mean + at::exp(0.5 * log_var) * eps;
  // log q(z) - log p(z); the 2 pi terms cancel.
  const at::Tensor log_ratio = (-0.5 * eps.square() - 0.5 * log_var + 0.5 * z.square()).sum(1);
  const double mc = log_ratio.mean().item<double>();
  const double se = log_ratio.std().item<double>() / std::sqrt(static_cast<double>(n));
  EXPECT_NEAR(closed, mc, 5 * se); // 5 standard errors of the Monte-Carlo mean
  EXPECT_GT(closed, 1.0);          // not a trivial case
}

TEST(GalaxyVae, DecodeGradientMatchesFiniteDifferences) {
  demix::GalaxyVae vae(small_options(15), 5);
  vae.to(at::kCPU, at::kDouble);
  const at::Tensor w = at::randn({3, 3, 15, 15}, at::kDouble);
  const auto f = [&](const at::Tensor& z) { return (vae.decode(z) * w).sum() / 1000; };
  const at::Tensor z = at::randn({3, 4}, at::kDouble);
  // float64 central differences, h = 1e-5: truncation and rounding both ~1e-10 relative; the
  // decoder is smooth (SiLU, exp), so the only kinks would be bugs.
  EXPECT_LT(demix::test::max_directional_gradient_error(f, z, 6, 1e-5), 1e-7);
}

TEST(GalaxyVae, RejectsBadOptionsAndInputs) {
  EXPECT_THROW(demix::GalaxyVae({.stamp_size = 44, .band_scales = kScales}), demix::ValueError);
  EXPECT_THROW(demix::GalaxyVae({.latent_dim = 1, .band_scales = kScales}), demix::ValueError);
  EXPECT_THROW(demix::GalaxyVae({.band_scales = {1, 2}}), demix::ValueError);
  EXPECT_THROW(demix::GalaxyVae({.band_scales = {1, 2, 3, 4, 5, -6}}), demix::ValueError);
  EXPECT_THROW(demix::GalaxyVae({.decoder_channels = {8}, .band_scales = kScales}),
               demix::ValueError);
  demix::GalaxyVae vae(small_options(15));
  EXPECT_THROW(vae.encode(at::zeros({2, 3, 17, 17})), demix::ShapeError);
  EXPECT_THROW(vae.encode(at::zeros({2, 2, 15, 15})), demix::ShapeError);
  EXPECT_THROW(vae.decode(at::zeros({2, 5})), demix::ShapeError);
  EXPECT_THROW(vae.decode(at::zeros({2, 4}, at::kDouble)), demix::ValueError);
}

// DecoderCompute: the layout alone changes nothing but rounding; another dtype runs on copies of
// the upsampling weights made when set (so that changing the weights afterwards shows which ran).
TEST(GalaxyVae, DecoderComputeRunsTheUpsamplingAsSet) {
  demix::GalaxyVae vae(small_options(15));
  at::manual_seed(3);
  const at::Tensor z = at::randn({5, 4});
  const at::Tensor ref = vae.decode(z);
  const auto rel = [&](const at::Tensor& y) {
    return ((y - ref).abs() / ref).max().item<double>();
  };
  EXPECT_EQ(demix::DecoderCompute::for_fitting(at::kCPU).conv_dtype, c10::ScalarType::Undefined);

  vae.set_decoder_compute({.channels_last = true});
  // float32, same sums in another order: relative 1e-5 on s_b exp(u) (|u| of a few units).
  EXPECT_LT(rel(vae.decode(z)), 1e-5);

  vae.set_decoder_compute({.conv_dtype = at::kDouble, .channels_last = true});
  const at::Tensor twice = vae.decode(z);
  EXPECT_EQ(twice.scalar_type(), at::kFloat); // the output layer keeps the weights' dtype
  EXPECT_LT(rel(twice), 1e-5);
  for (auto& p : vae.parameters())
    if (p.name == "decoder.up0.weight") p.tensor.detach().mul_(2);
  EXPECT_LT(rel(vae.decode(z)), 1e-5); // the copies, made before the change
  vae.set_decoder_compute(vae.decoder_compute());
  EXPECT_GT(rel(vae.decode(z)), 1e-2); // copies of the changed weights

  vae.to(at::kCPU, at::kDouble); // conv_dtype = the weights' own: no copies, same maths
  EXPECT_EQ(vae.decoder_compute().conv_dtype, at::kDouble);
  EXPECT_EQ(vae.decode(z.to(at::kDouble)).scalar_type(), at::kDouble);
  EXPECT_THROW(vae.set_decoder_compute({.conv_dtype = at::kLong}), demix::ValueError);
}

// On CUDA, float16 upsampling (DecoderCompute::for_fitting) against float32: float16 rounds each
// activation to 2^-11 relative (4.9e-4), and the output layer, in float32, averages 72 such terms
// per pixel. Measured on an H100 (default architecture, random weights): 1.9e-4 at most, 1.6e-5
// on average; the bounds are 2^-11 and a tenth of it.
TEST(GalaxyVae, HalfPrecisionUpsamplingStaysCloseOnCuda) {
  if (demix::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  demix::GalaxyVae vae({.band_scales = kScales});
  vae.to(at::kCUDA);
  at::manual_seed(4);
  const at::Tensor z = at::randn({64, 16}).cuda();
  const at::Tensor ref = vae.decode(z);
  const demix::DecoderCompute half = demix::DecoderCompute::for_fitting(at::kCUDA);
  EXPECT_EQ(half.conv_dtype, at::kHalf);
  vae.set_decoder_compute(half);
  const at::Tensor y = vae.decode(z);
  const at::Tensor r = (y - ref).abs() / ref;
  std::cout << "[ measured ] float16 upsampling: relative error max " << r.max().item<double>()
            << ", mean " << r.mean().item<double>() << "\n";
  EXPECT_LT(r.max().item<double>(), 4.9e-4);
  EXPECT_LT(r.mean().item<double>(), 4.9e-5);
  EXPECT_GT(r.max().item<double>(), 0.0); // it did run in float16
}

#pragma once
// An analytic GalaxyPrior for testing the deblender without a trained network: an elliptical
// Gaussian galaxy with free per-band fluxes, rendered at the centre of the stamp, and a Gaussian
// density on its parameters. Every truth is reachable (a galaxy of the family, exactly at a pixel
// centre), so a MAP fit of a noiseless blend must give back the parameters it was made from.
//
// Latent vector (D = B + 3):
//   z[0..B)  log of the flux in each band (electrons, the sum over the infinite plane)
//   z[B]     log s, s the size in pixels
//   z[B+1]   u1, z[B+2] u2, with the ellipticity (distortion) e = e_max tanh(u), e_max = 0.6
// Profile: I_b(r) = F_b / (2 pi sqrt(det C)) exp(-r^T C^-1 r / 2), C = s^2 [[1 + e1, e2], [e2, 1 -
// e1]], r the offset from the centre pixel (x = column, y = row): the second moments of the profile
// are C, whose distortion (C11 - C22, 2 C12) / (C11 + C22) is (e1, e2). log p(z): independent
// normals of means `mean` and standard deviations `std`.

#include <demix/models/galaxy_prior.hpp>

#include <ATen/ATen.h>

#include <cmath>
#include <numbers>

namespace demix::test {

class ToyGalaxyPrior : public GalaxyPrior {
public:
  static constexpr double e_max = 0.6;

  /// mean, std: (B + 3) float64. Tensors are created in the dtype of the latents they get.
  ToyGalaxyPrior(int64_t bands, int64_t stamp, at::Tensor mean, at::Tensor std)
      : B_(bands), S_(stamp), mean_(std::move(mean)), std_(std::move(std)) {}

  /// A prior centred on fluxes of `flux` electrons in every band, size 2.5 pixels, round.
  static ToyGalaxyPrior standard(int64_t bands, int64_t stamp = 45, double flux = 2e4) {
    at::Tensor mean = at::zeros({bands + 3}, at::kDouble), sd = at::ones({bands + 3}, at::kDouble);
    mean.narrow(0, 0, bands).fill_(std::log(flux));
    sd.narrow(0, 0, bands).fill_(1.5);
    mean[bands] = std::log(2.5);
    sd[bands] = 0.3;
    sd.narrow(0, bands + 1, 2).fill_(0.5);
    return ToyGalaxyPrior(bands, stamp, mean, sd);
  }

  /// This prior with its tables on `device` (float64), declared replayable: then decode and
  /// log_prob copy nothing from the host and may be recorded as a CUDA graph.
  ToyGalaxyPrior replayable_on(c10::Device device) const {
    ToyGalaxyPrior p(B_, S_, mean_.to(device), std_.to(device));
    p.replayable_ = true;
    return p;
  }
  bool replayable() const override { return replayable_; }

  int64_t latent_dim() const override { return B_ + 3; }
  int64_t n_bands() const override { return B_; }
  int64_t stamp_size() const override { return S_; }

  /// Latents of given physical parameters: log_flux (N, B), size (N), e (N, 2) with |e_i| < e_max.
  at::Tensor latents(const at::Tensor& flux, const at::Tensor& size, const at::Tensor& e) const {
    return at::cat({flux.log(), size.log().unsqueeze(1), at::atanh(e / e_max)}, 1);
  }
  static at::Tensor ellipticity(const at::Tensor& z, int64_t bands) {
    return e_max * at::tanh(z.narrow(1, bands + 1, 2)); // (N, 2)
  }

  at::Tensor decode(const at::Tensor& z) const override {
    const auto opt = z.options();
    const int64_t h = S_ / 2;
    const at::Tensor coord = at::arange(S_, opt) - static_cast<double>(h);
    const at::Tensor x = coord.view({1, 1, S_}), y = coord.view({1, S_, 1});
    const at::Tensor s2 = at::exp(2 * z.select(1, B_)).view({-1, 1, 1}); // (N, 1, 1)
    const at::Tensor e = ellipticity(z, B_);
    const at::Tensor e1 = e.select(1, 0).view({-1, 1, 1}), e2 = e.select(1, 1).view({-1, 1, 1});
    const at::Tensor one_e2 = 1 - e1 * e1 - e2 * e2; // det C / s^4
    const at::Tensor q = ((1 - e1) * x * x - 2 * e2 * x * y + (1 + e1) * y * y) / (s2 * one_e2);
    const at::Tensor shape = at::exp(-0.5 * q) / (2 * std::numbers::pi * s2 * one_e2.sqrt());
    const at::Tensor flux = at::exp(z.narrow(1, 0, B_)).view({-1, B_, 1, 1});
    return flux * shape.unsqueeze(1); // (N, B, S, S)
  }

  at::Tensor log_prob(const at::Tensor& z) const override {
    const at::Tensor mu = mean_.to(z.options()), sd = std_.to(z.options());
    const at::Tensor t = (z - mu) / sd;
    return -0.5 * t.square().sum(1) - sd.log().sum() -
           0.5 * static_cast<double>(latent_dim()) * std::log(2 * std::numbers::pi);
  }

  /// Moments of the band sum inside a disk of radius 10 pixels (so that neighbours weigh little).
  at::Tensor encode(const at::Tensor& stamps) const override {
    const auto opt = stamps.options();
    const int64_t h = S_ / 2;
    const at::Tensor coord = at::arange(S_, opt) - static_cast<double>(h);
    const at::Tensor x = coord.view({1, S_}).expand({S_, S_}),
                     y = coord.view({S_, 1}).expand({S_, S_});
    const at::Tensor disk = ((x * x + y * y) <= 100.0).to(opt.dtype());
    const at::Tensor bands = stamps.clamp_min(0) * disk;      // (N, B, S, S)
    const at::Tensor flux = bands.sum({2, 3}).clamp_min(1.0); // (N, B)
    const at::Tensor total = bands.sum(1);                    // (N, S, S)
    const at::Tensor m0 = total.sum({1, 2}).clamp_min(1e-12);
    const at::Tensor qxx = (total * x * x).sum({1, 2}) / m0, qyy = (total * y * y).sum({1, 2}) / m0;
    const at::Tensor qxy = (total * x * y).sum({1, 2}) / m0;
    const at::Tensor trace = (qxx + qyy).clamp_min(0.5);
    const at::Tensor e = at::stack({(qxx - qyy) / trace, 2 * qxy / trace}, 1);
    const at::Tensor u = at::atanh((e / e_max).clamp(-0.95, 0.95));
    return at::cat({flux.log(), (0.5 * trace).sqrt().log().unsqueeze(1), u}, 1);
  }

private:
  int64_t B_, S_;
  at::Tensor mean_, std_; // (B + 3) float64
  bool replayable_ = false;
};

} // namespace demix::test

#pragma once
// Toy multi-band galaxy stamps for the VAE and training tests (no simulator needed): centred
// elliptical profiles (Gaussian or exponential), log-uniform fluxes, smooth random colours,
// plus Gaussian sky noise of a known sigma per band.

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace demix::test {

struct ToyGalaxies {
  at::Tensor noisy;           // (N, B, S, S) float32, e-
  at::Tensor noiseless;       // (N, B, S, S) float32, e-
  std::vector<double> sigmas; // (B) noise sigma per band, e-
};

/// n stamps of `bands` bands and size x size pixels, reproducible from `seed`. Total fluxes are
/// log-uniform between 10^1.5 and 10^3.5 times the band's sigma (faint to bright).
ToyGalaxies make_toy_galaxies(std::int64_t n, std::int64_t bands, std::int64_t size,
                              std::uint64_t seed);

} // namespace demix::test

#include "support/toy_galaxies.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace demix::test {

ToyGalaxies make_toy_galaxies(std::int64_t n, std::int64_t bands, std::int64_t size,
                              std::uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto uniform = [&](double lo, double hi) {
    return at::empty({n, 1, 1}, at::kDouble).uniform_(lo, hi, gen);
  };
  const double c = (size - 1) / 2.0;
  const at::Tensor coord = at::arange(size, at::kDouble) - c;
  const at::Tensor yy = coord.view({1, size, 1}), xx = coord.view({1, 1, size});
  const at::Tensor dx = xx - uniform(-0.5, 0.5), dy = yy - uniform(-0.5, 0.5);
  const at::Tensor angle = uniform(0, M_PI), q = uniform(0.4, 1.0);
  const at::Tensor radius = uniform(1.0, size / 6.0);
  const at::Tensor u = dx * at::cos(angle) + dy * at::sin(angle);
  const at::Tensor v = -dx * at::sin(angle) + dy * at::cos(angle);
  const at::Tensor r = at::sqrt(u.square() + (v / q).square()) / radius; // (n, S, S)
  const at::Tensor exponential = uniform(0, 1) < 0.5;
  at::Tensor profile = at::where(exponential, at::exp(-1.68 * r), at::exp(-0.69 * r.square()));
  profile = profile / profile.sum({1, 2}, true);

  std::vector<double> sigmas;
  for (std::int64_t b = 0; b < bands; ++b) sigmas.push_back(100.0 + 80.0 * b);
  const at::Tensor sigma = at::tensor(sigmas, at::kDouble).view({1, bands});
  const at::Tensor log_flux = uniform(1.5, 3.5).view({n, 1}) * std::log(10.0);
  const at::Tensor slope = uniform(-1, 1).view({n, 1});
  const at::Tensor band = (at::arange(bands, at::kDouble) - (bands - 1) / 2.0).view({1, bands});
  const at::Tensor flux =
      at::exp(log_flux + slope * band / std::max<std::int64_t>(bands, 1)) * sigma;
  const at::Tensor clean = flux.view({n, bands, 1, 1}) * profile.unsqueeze(1);
  const at::Tensor noise =
      at::randn({n, bands, size, size}, gen, at::kDouble) * sigma.view({1, bands, 1, 1});
  return {(clean + noise).to(at::kFloat), clean.to(at::kFloat), sigmas};
}

} // namespace demix::test

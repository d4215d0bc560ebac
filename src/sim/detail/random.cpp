#include "sim/detail/random.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <numbers>

namespace demix::detail {

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = 0;
  while (u1 == 0) u1 = uniform(); // log(0) excluded
  const double u2 = uniform();
  const double r = std::sqrt(-2 * std::log(u1));
  spare_ = r * std::sin(2 * std::numbers::pi * u2);
  has_spare_ = true;
  return r * std::cos(2 * std::numbers::pi * u2);
}

std::int64_t Rng::integer(std::int64_t lo, std::int64_t hi) {
  const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
  if (span == 0) return static_cast<std::int64_t>(engine_()); // the full 64-bit range
  const std::uint64_t limit = (~std::uint64_t{0} / span) * span;
  std::uint64_t v;
  do v = engine_();
  while (v >= limit);
  return lo + static_cast<std::int64_t>(v % span);
}

at::Tensor normal_noise(const std::vector<std::int64_t>& shape, std::uint64_t seed,
                        std::int64_t first) {
  at::Tensor out = at::empty(shape, at::kFloat);
  if (out.numel() == 0) return out;
  const std::int64_t items = shape[0], per_item = out.numel() / items;
  float* data = out.data_ptr<float>();
  at::parallel_for(0, items, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      Rng rng(mix64(seed) ^ mix64(static_cast<std::uint64_t>(first + i) + 0x51ED270B27ull));
      float* p = data + i * per_item;
      for (std::int64_t j = 0; j < per_item; ++j) p[j] = static_cast<float>(rng.normal());
    }
  });
  return out;
}

} // namespace demix::detail

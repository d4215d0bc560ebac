#pragma once
// Random numbers that are the same everywhere: std::mt19937_64 is specified bit for bit by the
// C++ standard, but std::uniform_real_distribution and std::normal_distribution are not (libstdc++,
// libc++ and MSVC differ), so the transforms to uniform and normal variates are written here.

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <random>

namespace demix::detail {

/// SplitMix64 finaliser: a bijective 64-bit mix, to derive independent seeds from (seed, index).
std::uint64_t mix64(std::uint64_t x);

class Rng {
public:
  explicit Rng(std::uint64_t seed) : engine_(mix64(seed)) {}
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Standard normal (Box-Muller, both variates used).
  double normal();
  /// Uniform integer in [lo, hi] (rejection sampling, no modulo bias).
  std::int64_t integer(std::int64_t lo, std::int64_t hi);

private:
  std::mt19937_64 engine_;
  double spare_ = 0;
  bool has_spare_ = false;
};

/// Standard normal noise of `shape` (first axis = items), float32 on the CPU. Item i's values come
/// from its own stream seeded by (seed, first + i), so any split of a dataset into chunks, and
/// any thread count, gives the same numbers. Filled in parallel over items.
at::Tensor normal_noise(const std::vector<std::int64_t>& shape, std::uint64_t seed,
                        std::int64_t first);

} // namespace demix::detail

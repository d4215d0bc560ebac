#include "models/detail/nn.hpp"

#include <demix/core/errors.hpp>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>

namespace demix::detail {

std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a + 0x9e3779b97f4a7c15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

at::Generator make_cpu_generator(std::uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0));
}

at::Tensor uniform(const std::vector<int64_t>& sizes, double bound, at::Generator& gen) {
  return at::empty(sizes, at::kFloat).uniform_(-bound, bound, gen);
}

void move_to(NamedTensors& params, c10::Device device, c10::ScalarType dtype) {
  for (auto& p : params) {
    const bool grad = p.tensor.requires_grad();
    p.tensor = p.tensor.detach().to(device, dtype).requires_grad_(grad);
  }
}

void set_requires_grad(NamedTensors& params, bool on) {
  for (auto& p : params) p.tensor.requires_grad_(on);
}

std::int64_t element_count(const NamedTensors& params) {
  std::int64_t n = 0;
  for (const auto& p : params) n += p.tensor.numel();
  return n;
}

std::int64_t SaturatingCount::product(std::initializer_list<std::int64_t> factors) {
  std::int64_t p = 1;
  for (std::int64_t f : factors)
    if (f < 0 || __builtin_mul_overflow(p, f, &p)) return INT64_MAX;
  return p;
}

void SaturatingCount::add(std::initializer_list<std::int64_t> factors) {
  if (__builtin_add_overflow(total, product(factors), &total)) total = INT64_MAX;
}

void store(const NamedTensors& params, TensorArchive& archive, const std::string& prefix,
           bool keep_dtype) {
  for (const auto& p : params)
    archive.put(prefix + p.name, keep_dtype ? p.tensor.detach() : p.tensor.detach().to(at::kFloat));
}

void restore(NamedTensors& params, const TensorArchive& archive, const std::string& prefix) {
  for (auto& p : params) {
    const at::Tensor stored = archive.tensor(prefix + p.name);
    if (stored.sizes() != p.tensor.sizes())
      throw FormatError("'" + archive.source() + "': entry '" + prefix + p.name + "' has shape " +
                        shape_string(stored.sizes()) + ", the network expects " +
                        shape_string(p.tensor.sizes()));
    const bool grad = p.tensor.requires_grad();
    p.tensor = stored.to(p.tensor.device(), p.tensor.scalar_type()).requires_grad_(grad);
  }
}

c10::Device device_of(const NamedTensors& params) {
  return params.empty() ? c10::Device(c10::kCPU) : params.front().tensor.device();
}

c10::ScalarType dtype_of(const NamedTensors& params) {
  return params.empty() ? at::kFloat : params.front().tensor.scalar_type();
}

std::string shape_string(at::IntArrayRef sizes) {
  std::string s = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(sizes[i]);
  }
  return s + "]";
}

} // namespace demix::detail

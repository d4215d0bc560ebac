#include <demix/core/errors.hpp>
#include <demix/separation/contamination.hpp>

#include "core/detail/sizes_text.hpp"
#include "separation/detail/annuli.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <string>

namespace demix {

using detail::sizes_text;

namespace {

void check_map(const at::Tensor& t, at::IntArrayRef shape, const char* what) {
  if (!t.defined() || t.sizes() != shape)
    throw ShapeError(std::string("draw_contamination: the ") + what + " must be " +
                     sizes_text(at::empty(shape)) + ", got " +
                     (t.defined() ? sizes_text(t) : std::string("nothing")));
  if (t.is_complex() || !at::isFloatingType(t.scalar_type()))
    throw ValueError(std::string("draw_contamination: the ") + what + " must be real");
  const at::Tensor bad = ~(at::isfinite(t) & (t >= 0));
  if (bad.any().item<bool>())
    throw ValueError(std::string("draw_contamination: the ") + what + " has " +
                     std::to_string(bad.sum().item<int64_t>()) + " negative or non-finite values");
}

} // namespace

at::Tensor draw_contamination(const ContaminationModel& model, int64_t M, at::IntArrayRef shape,
                              std::uint64_t seed) {
  if (M < 1) throw ValueError("draw_contamination: " + std::to_string(M) + " realizations");
  if (shape.size() != 3)
    throw ShapeError("draw_contamination: maps must be (C, H, W), got " +
                     sizes_text(at::empty(shape)));
  std::vector<int64_t> full = shape.vec();
  full.insert(full.begin(), M);
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Tensor w = at::normal(0, 1, full, gen, at::TensorOptions().dtype(at::kDouble));
  if (const auto* white = std::get_if<WhiteNoise>(&model)) {
    if (!(white->sigma > 0) || !std::isfinite(white->sigma))
      throw ValueError("draw_contamination: sigma " + std::to_string(white->sigma) +
                       " must be > 0 and finite");
    return white->sigma * w;
  }
  if (const auto* pixel = std::get_if<PixelNoise>(&model)) {
    check_map(pixel->sigma, shape, "deviation map");
    return w * pixel->sigma.to(at::kCPU, at::kDouble);
  }
  const auto& spectrum = std::get<SpectrumNoise>(model);
  check_map(spectrum.power, shape, "power per mode");
  // White noise of unit variance has E|fft|^2 = H W per mode: its Fourier transform scaled by
  // sqrt(P) has E|fft|^2 / (H W) = P. Taking the real part of a field built from a non-symmetric
  // power would halve it; powers of isotropic spectra are symmetric (P(k) = P(-k)).
  const at::Tensor amplitude = spectrum.power.to(at::kCPU, at::kDouble).sqrt();
  return at::real(at::fft_ifft2(at::fft_fft2(w) * amplitude)).contiguous();
}

at::Tensor spectrum_per_mode(const at::Tensor& radial, int64_t channels, int64_t height,
                             int64_t width) {
  if (!radial.defined() || radial.dim() < 1 || radial.dim() > 2 ||
      (radial.dim() == 2 && radial.size(0) != channels))
    throw ShapeError("spectrum_per_mode: the spectrum must be (K) or (" + std::to_string(channels) +
                     ", K), got " +
                     (radial.defined() ? sizes_text(radial) : std::string("nothing")));
  const at::Tensor r = radial.to(at::kCPU, at::kDouble).reshape({-1, radial.size(-1)});
  const auto [ring, needed] = detail::annuli(height, width, at::TensorOptions());
  if (r.size(1) < needed)
    throw ShapeError("spectrum_per_mode: " + std::to_string(r.size(1)) + " annuli do not cover a " +
                     std::to_string(height) + " x " + std::to_string(width) + " grid (|k| up to " +
                     std::to_string(needed - 1) + ": " + std::to_string(needed) +
                     " values needed)");
  return r.index_select(1, ring.flatten())
      .view({-1, height, width})
      .expand({channels, height, width})
      .contiguous();
}

} // namespace demix

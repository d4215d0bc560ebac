#include <demix/core/errors.hpp>
#include <demix/viz/preview.hpp>
#include <demix/viz/rgb.hpp>

#include <ATen/ATen.h>

#include <cmath>

namespace demix {

at::Tensor render_rgb(const at::Tensor& image, const RgbOptions& o) {
  if (image.dim() != 3 || image.size(0) != 3 || image.is_complex())
    throw ShapeError(
        "an RGB picture needs a real (3, H, W) image, got " + std::to_string(image.dim()) +
        " dimension(s)" +
        (image.dim() == 3 ? " with " + std::to_string(image.size(0)) + " planes" : ""));
  if (!(o.q > 0) || !std::isfinite(o.q))
    throw ValueError("RGB softening Q must be > 0, got " + std::to_string(o.q));
  if (o.stretch && (!(*o.stretch > 0) || !std::isfinite(*o.stretch)))
    throw ValueError("RGB stretch must be > 0, got " + std::to_string(*o.stretch));
  if (!o.scales.empty() && o.scales.size() != 3)
    throw ValueError("RGB scales: give 3 values (R, G, B), got " + std::to_string(o.scales.size()));
  at::Tensor x = image.detach().to(at::kCPU, at::kDouble) - o.minimum;
  if (!o.scales.empty())
    x = x * at::tensor(at::ArrayRef<double>(o.scales), at::kDouble).view({3, 1, 1});
  const at::Tensor finite = at::isfinite(x).all(0); // (H, W)
  x = at::where(finite.unsqueeze(0), x, at::zeros_like(x));
  const at::Tensor intensity = x.mean(0); // (H, W)
  double stretch = 1.0;
  if (o.stretch) {
    stretch = *o.stretch;
  } else {
    const at::Tensor values = intensity.masked_select(finite);
    if (values.numel() > 0) stretch = values.max().item<double>();
    if (!(stretch > 0)) stretch = 1.0; // blank or negative image: anything works
  }
  // f(I) / I, with its limit Q / (stretch asinh Q) at I -> 0.
  const double limit = o.q / (stretch * std::asinh(o.q));
  const at::Tensor safe = at::where(intensity.abs() > 1e-12 * stretch, intensity,
                                    at::full_like(intensity, 1e-12 * stretch));
  const at::Tensor factor = at::where(intensity.abs() > 1e-12 * stretch,
                                      at::asinh(o.q * safe / stretch) / std::asinh(o.q) / safe,
                                      at::full_like(intensity, limit));
  at::Tensor rgb = (x * factor.unsqueeze(0)).clamp_min(0); // (3, H, W)
  const at::Tensor peak = std::get<0>(rgb.max(0)).clamp_min(1.0);
  rgb = rgb / peak.unsqueeze(0);
  at::Tensor bytes = (rgb * 255).round().clamp(0, 255).to(at::kByte).permute({1, 2, 0});
  bytes = at::where(finite.unsqueeze(-1), bytes, at::full_like(bytes, 128));
  if (o.origin_lower) bytes = bytes.flip({0});
  return bytes.contiguous();
}

void write_rgb_png(const std::string& path, const at::Tensor& image, const RgbOptions& options) {
  write_png(path, render_rgb(image, options));
}

} // namespace demix

#include <demix/core/errors.hpp>
#include <demix/viz/preview.hpp>

#include "io/detail/atomic_file.hpp"
#include "viz/detail/colormaps.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include <png.h>

namespace demix {

namespace {

constexpr double kLogA = 1000.0; // LogStretch parameter (astropy's default)
constexpr double kAsinhB = 0.1;  // AsinhStretch softening (astropy's default)
constexpr unsigned char kNonFiniteGrey = 128;

double percentile(const at::Tensor& sorted /* (n,) float64 */, double p) {
  const int64_t n = sorted.numel();
  const double pos = p / 100.0 * static_cast<double>(n - 1);
  const int64_t lo = static_cast<int64_t>(std::floor(pos));
  const int64_t hi = std::min(lo + 1, n - 1);
  const double w = pos - static_cast<double>(lo);
  const double* v = sorted.data_ptr<double>();
  return v[lo] * (1 - w) + v[hi] * w;
}

at::Tensor stretch(const at::Tensor& x /* in [0, 1] */, Stretch s) {
  switch (s) {
  case Stretch::Linear: return x;
  case Stretch::Sqrt: return x.sqrt();
  case Stretch::Log: return at::log1p(kLogA * x) / std::log1p(kLogA);
  case Stretch::Asinh: return at::asinh(x / kAsinhB) / std::asinh(1.0 / kAsinhB);
  }
  return x;
}

} // namespace

double apply_stretch(Stretch s, double x) {
  switch (s) {
  case Stretch::Linear: return x;
  case Stretch::Sqrt: return std::sqrt(x);
  case Stretch::Log: return std::log1p(kLogA * x) / std::log1p(kLogA);
  case Stretch::Asinh: return std::asinh(x / kAsinhB) / std::asinh(1.0 / kAsinhB);
  }
  return x;
}

Rgb colormap_lookup(Colormap map, double t) {
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0);
  if (map == Colormap::Gray) {
    const auto v = static_cast<unsigned char>(std::lround(255 * t));
    return {v, v, v};
  }
  const auto& anchors = map == Colormap::Magma ? detail::kMagma : detail::kViridis;
  const double pos = t * (detail::kAnchors - 1);
  const int i = std::min(static_cast<int>(pos), detail::kAnchors - 2);
  const double w = pos - i;
  auto mix = [&](int c) {
    return static_cast<unsigned char>(std::lround(anchors[i][c] * (1 - w) + anchors[i + 1][c] * w));
  };
  return {mix(0), mix(1), mix(2)};
}

namespace {

void check_preview_input(const at::Tensor& map, const PreviewOptions& o) {
  if (map.dim() != 2 || map.is_complex())
    throw ShapeError("preview needs a real 2D map (H, W), got " + std::to_string(map.dim()) +
                     " dimension(s)" + (map.is_complex() ? ", complex" : ""));
  if (!(o.lower_percentile >= 0 && o.lower_percentile < o.upper_percentile &&
        o.upper_percentile <= 100))
    throw ValueError("preview percentiles must satisfy 0 <= lower < upper <= 100, got " +
                     std::to_string(o.lower_percentile) + " and " +
                     std::to_string(o.upper_percentile));
  if (o.vmin && o.vmax && !(*o.vmin < *o.vmax))
    throw ValueError("preview needs vmin < vmax, got vmin = " + std::to_string(*o.vmin) +
                     ", vmax = " + std::to_string(*o.vmax));
}

/// preview_range of x, a CPU float64 copy of the map.
std::pair<double, double> range_of(const at::Tensor& x, const PreviewOptions& o) {
  const at::Tensor sorted = std::get<0>(x.index({at::isfinite(x)}).sort());
  double vmin = 0, vmax = 1;
  if (sorted.numel() > 0) {
    vmin = o.vmin.value_or(percentile(sorted, o.lower_percentile));
    vmax = o.vmax.value_or(percentile(sorted, o.upper_percentile));
  } else {
    vmin = o.vmin.value_or(0.0);
    vmax = o.vmax.value_or(vmin + 1.0);
  }
  if (!(vmax > vmin)) vmax = vmin + 1.0; // constant map: draw it at the bottom of the colour map
  return {vmin, vmax};
}

} // namespace

std::pair<double, double> preview_range(const at::Tensor& map, const PreviewOptions& o) {
  check_preview_input(map, o);
  return range_of(map.detach().to(at::kCPU, at::kDouble).contiguous(), o);
}

at::Tensor render_preview(const at::Tensor& map, const PreviewOptions& o) {
  check_preview_input(map, o);
  const at::Tensor x = map.detach().to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor finite_mask = at::isfinite(x);
  const auto [vmin, vmax] = range_of(x, o);
  const at::Tensor t = stretch(((x - vmin) / (vmax - vmin)).clamp(0.0, 1.0), o.stretch);

  // A 256-entry table, then one gather: cheap even for 4096 x 4096 maps.
  at::Tensor lut = at::empty({257, 3}, at::kByte);
  auto* l = lut.data_ptr<unsigned char>();
  for (int i = 0; i < 256; ++i) {
    const Rgb c = colormap_lookup(o.colormap, i / 255.0);
    l[3 * i] = c.r, l[3 * i + 1] = c.g, l[3 * i + 2] = c.b;
  }
  l[3 * 256] = l[3 * 256 + 1] = l[3 * 256 + 2] = kNonFiniteGrey; // entry 256: NaN / Inf
  at::Tensor index =
      at::where(finite_mask, (t.nan_to_num(0.0) * 255).round(), at::full({}, 256.0, x.options()))
          .to(at::kLong);
  if (o.origin == Origin::Lower) index = index.flip({0});
  return lut.index_select(0, index.flatten()).view({x.size(0), x.size(1), 3}).contiguous();
}

void write_png(const std::string& path, const at::Tensor& rgb) {
  if (rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != at::kByte)
    throw ShapeError("write_png needs an (H, W, 3) uint8 tensor");
  const at::Tensor pixels = rgb.to(at::kCPU).contiguous();
  detail::AtomicFile out(path);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(pixels.size(1));
  image.height = static_cast<png_uint_32>(pixels.size(0));
  image.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&image, out.temp_path().c_str(), 0, pixels.data_ptr<unsigned char>(),
                               0, nullptr))
    throw IoError("cannot write PNG '" + path + "': " + image.message);
  out.commit();
}

void write_preview(const std::string& path, const at::Tensor& map, const PreviewOptions& options) {
  write_png(path, render_preview(map, options));
}

} // namespace demix

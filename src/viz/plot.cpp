#include <demix/core/errors.hpp>
#include <demix/viz/plot.hpp>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace demix {

at::Tensor plot_series(const std::vector<at::Tensor>& ys, const std::vector<Rgb>& colours,
                       const std::vector<int64_t>& separators, int width, int height) {
  if (width < 16 || height < 16)
    throw ValueError("plot_series: the picture must be at least 16 x 16 pixels, got " +
                     std::to_string(width) + " x " + std::to_string(height));
  if (colours.size() != ys.size())
    throw ValueError("plot_series: " + std::to_string(ys.size()) + " series but " +
                     std::to_string(colours.size()) + " colours");
  std::vector<at::Tensor> series; // (N_i,) float64 CPU
  int64_t n = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t s = 0; s < ys.size(); ++s) {
    const at::Tensor& y = ys[s];
    if (!y.defined() || y.dim() != 1 || y.is_complex())
      throw ShapeError("plot_series: series " + std::to_string(s) +
                       " must be a 1-D real tensor, got " +
                       (y.defined() ? std::to_string(y.dim()) + " dimensions" : "undefined"));
    series.push_back(y.detach().to(at::kCPU, at::kDouble).contiguous());
    n = std::max(n, y.size(0));
    const double* v = series.back().data_ptr<double>();
    for (int64_t i = 0; i < y.size(0); ++i)
      if (std::isfinite(v[i])) {
        lo = std::min(lo, v[i]);
        hi = std::max(hi, v[i]);
      }
  }
  for (int64_t s : separators)
    if (s <= 0 || s >= n)
      throw ValueError("plot_series: separator " + std::to_string(s) + " outside 1.." +
                       std::to_string(n - 1));
  if (lo > hi) lo = hi = 0; // nothing finite: the range does not matter
  if (lo == hi) {
    lo -= 0.5;
    hi += 0.5;
  }

  at::Tensor rgb = at::full({height, width, 3}, 255, at::kByte);
  uint8_t* px = rgb.data_ptr<uint8_t>();
  const auto put = [&](int64_t row, int64_t col, Rgb c) {
    if (row < 0 || row >= height || col < 0 || col >= width) return;
    uint8_t* p = px + (row * width + col) * 3;
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  };
  const int m = kPlotMargin;
  const double span_x = width - 1 - 2 * m, span_y = height - 1 - 2 * m;
  const auto column_of = [&](double i) {
    return n <= 1 ? static_cast<int64_t>(width / 2) : m + std::llround(i * span_x / double(n - 1));
  };
  const auto row_of = [&](double y) { return m + std::llround((hi - y) * span_y / (hi - lo)); };

  for (int64_t s : separators) {
    const int64_t col = column_of(s - 0.5);
    for (int64_t row = 0; row < height; ++row) put(row, col, kSeparatorColour);
  }
  for (std::size_t s = 0; s < series.size(); ++s) {
    const double* v = series[s].data_ptr<double>();
    for (int64_t i = 0; i < series[s].size(0); ++i) {
      if (!std::isfinite(v[i])) continue;
      const int64_t col = column_of(static_cast<double>(i)), row = row_of(v[i]);
      for (int64_t dr = -1; dr <= 1; ++dr)
        for (int64_t dc = -1; dc <= 1; ++dc) put(row + dr, col + dc, colours[s]);
    }
  }
  return rgb;
}

} // namespace demix

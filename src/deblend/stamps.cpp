#include <demix/core/errors.hpp>
#include <demix/deblend/stamps.hpp>

#include "core/detail/sizes_text.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <string>

namespace demix {

using detail::sizes_text;

BlendGalaxies BlendGalaxies::from_list(const std::vector<at::Tensor>& positions) {
  std::vector<at::Tensor> xy, blend;
  for (size_t n = 0; n < positions.size(); ++n) {
    const at::Tensor& p = positions[n];
    if (p.dim() != 2 || p.size(1) != 2)
      throw ShapeError("galaxy positions of blend " + std::to_string(n) +
                       " must be (G, 2) (x, y), got " + sizes_text(p));
    xy.push_back(p.to(at::kCPU, at::kDouble));
    blend.push_back(at::full({p.size(0)}, static_cast<int64_t>(n), at::kLong));
  }
  BlendGalaxies g;
  g.num_blends = static_cast<int64_t>(positions.size());
  g.xy = xy.empty() ? at::zeros({0, 2}, at::kDouble) : at::cat(xy);
  g.blend = blend.empty() ? at::zeros({0}, at::kLong) : at::cat(blend);
  g.check("BlendGalaxies::from_list");
  return g;
}

BlendGalaxies BlendGalaxies::from_padded(const at::Tensor& positions, const at::Tensor& counts) {
  if (positions.dim() != 3 || positions.size(2) != 2)
    throw ShapeError("padded galaxy positions must be (N, G_max, 2), got " + sizes_text(positions));
  if (counts.dim() != 1 || counts.size(0) != positions.size(0))
    throw ShapeError("galaxy counts must be (N) with N = " + std::to_string(positions.size(0)) +
                     ", got " + sizes_text(counts));
  const at::Tensor c = counts.to(at::kCPU, at::kLong);
  std::vector<at::Tensor> list;
  for (int64_t n = 0; n < positions.size(0); ++n) {
    const int64_t k = c[n].item<int64_t>();
    if (k < 0 || k > positions.size(1))
      throw ValueError("galaxy count of blend " + std::to_string(n) + " is " + std::to_string(k) +
                       ", outside [0, " + std::to_string(positions.size(1)) + "]");
    list.push_back(positions[n].narrow(0, 0, k));
  }
  return from_list(list);
}

BlendGalaxies BlendGalaxies::select_blends(const at::Tensor& blends) const {
  const at::Tensor keep = blends.to(at::kCPU, at::kLong);
  // New number of each kept blend, -1 for the others.
  const at::Tensor renumber = at::full({num_blends}, -1, at::kLong);
  renumber.index_put_({keep}, at::arange(keep.numel(), at::kLong));
  const at::Tensor new_blend = renumber.index_select(0, blend);
  const at::Tensor rows = (new_blend >= 0).nonzero().view({-1});
  BlendGalaxies g;
  g.xy = xy.index_select(0, rows);
  g.blend = new_blend.index_select(0, rows);
  g.num_blends = keep.numel();
  return g;
}

at::Tensor BlendGalaxies::positions_of(int64_t n) const {
  const at::Tensor f = first(), c = counts();
  return xy.narrow(0, f[n].item<int64_t>(), c[n].item<int64_t>());
}

at::Tensor BlendGalaxies::counts() const {
  return at::zeros({num_blends}, at::kLong).index_add_(0, blend, at::ones_like(blend));
}

at::Tensor BlendGalaxies::first() const {
  const at::Tensor c = counts();
  return c.cumsum(0) - c;
}

int64_t nearest_pixel(double v) { return static_cast<int64_t>(std::floor(v + 0.5)); }

at::Tensor nearest_pixel(const at::Tensor& v) { return at::floor(v + 0.5).to(at::kLong); }

at::Tensor BlendGalaxies::pixel() const { return nearest_pixel(xy); }

void BlendGalaxies::check(const char* what) const {
  const std::string w = what;
  if (!xy.defined() || !blend.defined())
    throw ValueError(w + ": galaxy positions or blend indices missing");
  if (xy.dim() != 2 || xy.size(1) != 2)
    throw ShapeError(w + ": galaxy positions must be (M, 2), got " + sizes_text(xy));
  if (blend.dim() != 1 || blend.size(0) != xy.size(0))
    throw ShapeError(w + ": blend indices must be (M) with M = " + std::to_string(xy.size(0)) +
                     ", got " + sizes_text(blend));
  if (xy.scalar_type() != at::kDouble || blend.scalar_type() != at::kLong ||
      !xy.device().is_cpu() || !blend.device().is_cpu())
    throw ValueError(w + ": positions must be float64 and blend indices int64, both on the CPU");
  if (num_blends < 0) throw ValueError(w + ": negative number of blends");
  if (blend.numel() == 0) return;
  if (!at::isfinite(xy).all().item<bool>())
    throw ValueError(w + ": a galaxy position is NaN or infinite");
  const int64_t lo = blend.min().item<int64_t>(), hi = blend.max().item<int64_t>();
  if (lo < 0 || hi >= num_blends)
    throw ValueError(w + ": blend index " + std::to_string(lo < 0 ? lo : hi) + " outside [0, " +
                     std::to_string(num_blends) + ")");
  if (blend.numel() > 1 &&
      (blend.narrow(0, 1, blend.numel() - 1) < blend.narrow(0, 0, blend.numel() - 1))
          .any()
          .item<bool>())
    throw ValueError(w + ": galaxies must be sorted by blend (each blend's galaxies contiguous)");
}

StampPlacer::StampPlacer(const BlendGalaxies& galaxies, int64_t channels, int64_t height,
                         int64_t width, int64_t stamp_size, c10::Device device)
    : N_(galaxies.num_blends), M_(galaxies.size()), C_(channels), H_(height), W_(width),
      S_(stamp_size) {
  galaxies.check("StampPlacer");
  if (stamp_size < 1 || stamp_size % 2 == 0)
    throw ValueError("stamp size must be odd and positive, got " + std::to_string(stamp_size));
  if (channels < 1 || height < 1 || width < 1)
    throw ValueError("blend images must have at least 1 channel of 1 x 1 pixel, got " +
                     std::to_string(channels) + " x " + std::to_string(height) + " x " +
                     std::to_string(width));
  const auto lopt = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor pix = galaxies.pixel().to(device);       // (M, 2) px, py
  const at::Tensor offsets = at::arange(S_, lopt) - S_ / 2; // (S)
  cols_ = pix.select(1, 0).unsqueeze(1) + offsets;          // (M, S)
  rows_ = pix.select(1, 1).unsqueeze(1) + offsets;          // (M, S)
  index_ = indices(galaxies.blend.to(device), N_);
}

at::Tensor StampPlacer::indices(const at::Tensor& frame_of, int64_t frames) const {
  const at::Tensor rows = rows_.unsqueeze(2), cols = cols_.unsqueeze(1); // (M, S, 1), (M, 1, S)
  const at::Tensor inside = (rows >= 0) & (rows < H_) & (cols >= 0) & (cols < W_);   // (M, S, S)
  const at::Tensor pixel = frame_of.view({-1, 1, 1}) * (H_ * W_) + rows * W_ + cols; // (M, S, S)
  const int64_t plane = frames * H_ * W_; // one channel of all frames
  const at::Tensor channel = at::arange(C_, pixel.options()).view({C_, 1, 1, 1}) * plane;
  return at::where(inside.unsqueeze(0), pixel.unsqueeze(0) + channel,
                   at::full({1, 1, 1, 1}, C_ * plane, pixel.options()))
      .reshape({-1});
}

void StampPlacer::check_frames(const at::Tensor& frames, int64_t n, bool channels_first,
                               const char* what) const {
  const int64_t c = channels_first ? 0 : 1;
  const bool ok = frames.dim() == 4 && frames.size(c) == C_ && frames.size(1 - c) == n &&
                  frames.size(2) == H_ && frames.size(3) == W_;
  if (!ok)
    throw ShapeError(std::string("StampPlacer::") + what + ": images must be (" +
                     (channels_first ? std::to_string(C_) + ", " + std::to_string(n)
                                     : std::to_string(n) + ", " + std::to_string(C_)) +
                     ", " + std::to_string(H_) + ", " + std::to_string(W_) + "), got " +
                     sizes_text(frames));
}

void StampPlacer::check_stamps(const at::Tensor& stamps, bool channels_first,
                               const char* what) const {
  const int64_t c = channels_first ? 0 : 1;
  const bool ok = stamps.dim() == 4 && stamps.size(c) == C_ && stamps.size(1 - c) == M_ &&
                  stamps.size(2) == S_ && stamps.size(3) == S_;
  if (!ok)
    throw ShapeError(std::string("StampPlacer::") + what + ": stamps must be (" +
                     (channels_first ? std::to_string(C_) + ", " + std::to_string(M_)
                                     : std::to_string(M_) + ", " + std::to_string(C_)) +
                     ", " + std::to_string(S_) + ", " + std::to_string(S_) + "), got " +
                     sizes_text(stamps));
}

at::Tensor StampPlacer::gather(const at::Tensor& frames_cf, const at::Tensor& index) const {
  // One zero past the last pixel: what out-of-image stamp pixels read.
  const at::Tensor flat = at::cat({frames_cf.reshape({-1}), at::zeros({1}, frames_cf.options())});
  return flat.index_select(0, index).view({C_, M_, S_, S_});
}

at::Tensor StampPlacer::scatter(const at::Tensor& stamps_cf, const at::Tensor& index,
                                int64_t frames) const {
  const int64_t size = C_ * frames * H_ * W_;
  // The extra element collects the out-of-image pixels; it is dropped.
  const at::Tensor sums =
      at::zeros({size + 1}, stamps_cf.options()).index_add_(0, index, stamps_cf.reshape({-1}));
  return sums.narrow(0, 0, size).view({C_, frames, H_, W_});
}

at::Tensor StampPlacer::extract_channels_first(const at::Tensor& frames) const {
  check_frames(frames, N_, true, "extract");
  return gather(frames, index_);
}

at::Tensor StampPlacer::render_channels_first(const at::Tensor& stamps) const {
  check_stamps(stamps, true, "render");
  return scatter(stamps, index_, N_);
}

at::Tensor StampPlacer::extract(const at::Tensor& frames) const {
  check_frames(frames, N_, false, "extract");
  return gather(frames.transpose(0, 1), index_).transpose(0, 1).contiguous();
}

at::Tensor StampPlacer::render(const at::Tensor& stamps) const {
  check_stamps(stamps, false, "render");
  return scatter(stamps.transpose(0, 1), index_, N_).transpose(0, 1).contiguous();
}

at::Tensor StampPlacer::render_each(const at::Tensor& stamps) const {
  check_stamps(stamps, false, "render_each");
  const at::Tensor own = indices(at::arange(M_, cols_.options()), M_);
  return scatter(stamps.transpose(0, 1), own, M_).transpose(0, 1).contiguous();
}

at::Tensor StampPlacer::extract_each(const at::Tensor& frames) const {
  check_frames(frames, M_, false, "extract_each");
  const at::Tensor own = indices(at::arange(M_, cols_.options()), M_);
  return gather(frames.transpose(0, 1), own).transpose(0, 1).contiguous();
}

} // namespace demix

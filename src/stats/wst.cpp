#include <demix/core/errors.hpp>
#include <demix/stats/wst.hpp>

#include "stats/detail/map_batch.hpp"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace demix {

namespace {

// Source row of each padded row for kymatio's reflection padding of `size` rows by `before` and
// `after` (reflection without repeating the edge). When the padding equals the size, kymatio pads
// by one less and then repeats the second and the second-to-last padded rows at the two ends.
std::vector<int64_t> reflect_indices(int64_t size, int64_t before, int64_t after) {
  const bool whole = before == size;
  const int64_t b = whole ? before - 1 : before, a = whole ? after - 1 : after;
  std::vector<int64_t> idx;
  for (int64_t i = -b; i < size + a; ++i) {
    int64_t r = i < 0 ? -i : i;
    if (r >= size) r = 2 * (size - 1) - r;
    idx.push_back(r);
  }
  if (whole) {
    idx.insert(idx.begin(), idx[1]);
    idx.push_back(idx[idx.size() - 2]);
  }
  for (int64_t r : idx)
    if (r < 0 || r >= size)
      throw ValueError("WST: reflection padding of " + std::to_string(size) + " pixels by (" +
                       std::to_string(before) + ", " + std::to_string(after) + ") is impossible");
  return idx;
}

// Subsampling by k in space = periodisation in Fourier: the mean of the k x k aliased blocks.
at::Tensor subsample_fourier(const at::Tensor& x /* (..., m, n) complex */, int64_t k) {
  if (k == 1) return x;
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end() - 2);
  const int64_t d = static_cast<int64_t>(shape.size());
  shape.insert(shape.end(), {k, x.size(-2) / k, k, x.size(-1) / k});
  return x.reshape(shape).mean(at::IntArrayRef{d, d + 2}); // (..., m/k, n/k)
}

// FFT2 of |IFFT2(subsample(U_hat psi_hat, k))|: the Fourier transform of the next layer.
at::Tensor modulus_layer(const at::Tensor& U_hat /* (..., m, n) complex */,
                         const at::Tensor& psi_hat /* (..., m, n) real */, int64_t k) {
  return at::fft_fft2(at::abs(at::fft_ifft2(subsample_fourier(U_hat * psi_hat, k))));
}

} // namespace

WstOperator::WstOperator(const WstOptions& options, const Grid2d& grid, const Context& context)
    : Statistic(grid, context), options_(options), tensor_options_(context.options()) {
  const int64_t height = grid.height, width = grid.width;
  const int J = options.J, L = options.L;
  if (J < 1 || J > 30) throw ValueError("WST: J must be >= 1, got " + std::to_string(J));
  if (L < 1) throw ValueError("WST: L must be >= 1, got " + std::to_string(L));
  if (options.max_order != 1 && options.max_order != 2)
    throw ValueError("WST: max_order must be 1 or 2, got " + std::to_string(options.max_order));
  const int64_t scale = int64_t{1} << J;
  if (height < scale || width < scale)
    throw ValueError("WST: the image (" + std::to_string(height) + " x " + std::to_string(width) +
                     ") must be at least 2^J = " + std::to_string(scale) + " pixels on each side");
  if (reflect()) {
    Mp_ = ((height + scale) / scale + 1) * scale;
    Np_ = ((width + scale) / scale + 1) * scale;
    const auto device_index = [&](const std::vector<int64_t>& v) {
      return at::tensor(v, at::kLong).to(context.device());
    };
    pad_rows_ = device_index(reflect_indices(height, (Mp_ - height) / 2, (Mp_ - height + 1) / 2));
    pad_cols_ = device_index(reflect_indices(width, (Np_ - width) / 2, (Np_ - width + 1) / 2));
  } else {
    if (height % scale || width % scale)
      throw ValueError("WST: periodic boundary needs the image size (" + std::to_string(height) +
                       " x " + std::to_string(width) +
                       ") divisible by 2^J = " + std::to_string(scale));
    Mp_ = height;
    Np_ = width;
  }
  bank_ = morlet_filter_bank({.J = J, .L = L, .variant = MorletVariant::Kymatio}, Mp_, Np_,
                             context.real_dtype(), context.device());

  // Channel labels in kymatio's order.
  std::vector<int64_t> rows; // (order, j1, t1, j2, t2) per channel
  rows.insert(rows.end(), {0, -1, -1, -1, -1});
  for (int j1 = 0; j1 < J; ++j1)
    for (int t1 = 0; t1 < L; ++t1) rows.insert(rows.end(), {1, j1, t1, -1, -1});
  if (options.max_order == 2)
    for (int j1 = 0; j1 < J; ++j1)
      for (int t1 = 0; t1 < L; ++t1)
        for (int j2 = j1 + 1; j2 < J; ++j2)
          for (int t2 = 0; t2 < L; ++t2) rows.insert(rows.end(), {2, j1, t1, j2, t2});
  const int64_t C = static_cast<int64_t>(rows.size()) / 5;
  labels_.classes = {"S0", "S1", "S2"};
  labels_.label_names = {"order", "j1", "t1", "j2", "t2"};
  labels_.labels = at::tensor(rows, at::kLong).view({C, 5});
  labels_.class_id = labels_.labels.select(1, 0).clone();
}

std::vector<StatisticKeyword> WstOperator::keywords() const {
  return {{"J", "J", static_cast<long long>(options_.J), "number of dyadic scales"},
          {"L", "L", static_cast<long long>(options_.L), "number of orientations in [0, pi)"},
          {"BOUNDARY", "boundary", std::string(boundary_name(std::get<Grid2d>(grid()).boundary)),
           "boundary conditions"}};
}

at::Tensor WstOperator::check_input(const at::Tensor& x) const {
  const at::Tensor y = detail::map_batch(x, plane().height, plane().width, "WST");
  if (x.is_complex() || !at::isFloatingType(x.scalar_type()))
    throw ValueError(std::string("WST: the input must be real floating point, got ") +
                     c10::toString(x.scalar_type()));
  return y.to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
}

at::Tensor WstOperator::unpad(const at::Tensor& s) const {
  if (!reflect()) return s;
  return s.narrow(-2, 1, s.size(-2) - 2).narrow(-1, 1, s.size(-1) - 2);
}

// The S map of a layer known at resolution 2^-res: unpad(Re IFFT2(subsample(U_hat phi_res))).
at::Tensor WstOperator::low_pass(const at::Tensor& U_hat /* (..., m, n) complex */, int res) const {
  const int64_t k = int64_t{1} << (options_.J - res);
  return unpad(at::real(at::fft_ifft2(subsample_fourier(U_hat * bank_.phi_levels[res], k))));
}

at::Tensor WstOperator::forward_maps(const at::Tensor& x_in) const {
  const int J = options_.J, L = options_.L;
  at::Tensor x = check_input(x_in); // (B, H, W)
  const int64_t B = x.size(0);
  if (reflect()) x = x.index_select(1, pad_rows_).index_select(2, pad_cols_); // (B, Mp, Np)
  const at::Tensor U0 = at::fft_fft2(x);                                      // (B, Mp, Np) complex

  std::vector<at::Tensor> s1, s2;                     // pieces (B, c, h, w)
  const at::Tensor s0 = low_pass(U0, 0).unsqueeze(1); // (B, 1, h, w)
  for (int j1 = 0; j1 < J; ++j1) {
    // (B, L, Mp/2^j1, Np/2^j1) complex: FFT of |x * psi_j1|
    const at::Tensor U1 = modulus_layer(U0.unsqueeze(1), bank_.psi_levels[0][j1], int64_t{1} << j1);
    s1.push_back(low_pass(U1, j1)); // (B, L, h, w)
    if (options_.max_order < 2 || j1 == J - 1) {
      if (options_.progress) options_.progress(j1 + 1, J);
      continue;
    }
    std::vector<at::Tensor> by_j2; // each (B, L1, L2, h, w)
    for (int j2 = j1 + 1; j2 < J; ++j2) {
      // (B, L1, L2, Mp/2^j2, Np/2^j2) complex
      const at::Tensor U2 =
          modulus_layer(U1.unsqueeze(2), bank_.psi_levels[j1][j2], int64_t{1} << (j2 - j1));
      by_j2.push_back(low_pass(U2, j2));
    }
    const at::Tensor block = at::stack(by_j2, 2); // (B, L1, J-1-j1, L2, h, w)
    s2.push_back(block.reshape({B, L * (J - 1 - j1) * L, block.size(-2), block.size(-1)}));
    if (options_.progress) options_.progress(j1 + 1, J);
  }
  std::vector<at::Tensor> all{s0};
  all.insert(all.end(), s1.begin(), s1.end());
  all.insert(all.end(), s2.begin(), s2.end());
  at::Tensor out = at::cat(all, 1); // (B, C, h, w)
  return x_in.dim() == 2 ? out.squeeze(0) : out;
}

Coefficients WstOperator::forward(const at::Tensor& x, const Reference& ref) const {
  ref.require_empty("WST");
  at::Tensor maps = forward_maps(x);
  if (x.dim() == 2) maps = maps.unsqueeze(0);
  Coefficients c = labels_;
  c.values = maps.mean({-2, -1}); // (B, C)
  return c;
}

} // namespace demix

#include "sim/detail/radial_table.hpp"

#include <demix/core/errors.hpp>

#include <ATen/ATen.h>

#include <cmath>
#include <string>

namespace demix::detail {

namespace {
constexpr double kSmallest = 1e-14; // below this the Mellin-Barnes values are rounding noise
}

RadialTable::RadialTable(const std::function<double(double)>& f, double kappa_min, double kappa_max,
                         int per_decade) {
  if (!(kappa_min > 0 && kappa_max > kappa_min && per_decade >= 4))
    throw ValueError("RadialTable: bad grid (" + std::to_string(kappa_min) + ", " +
                     std::to_string(kappa_max) + ", " + std::to_string(per_decade) + ")");
  log_kappa_min_ = std::log(kappa_min);
  step_ = std::log(10.0) / per_decade;
  const int n = static_cast<int>(std::ceil((std::log(kappa_max) - log_kappa_min_) / step_)) + 1;
  for (int i = 0; i < n; ++i) {
    const double v = f(std::exp(log_kappa_min_ + i * step_));
    if (!(v > kSmallest)) {
      stops_at_zero_ = true;
      break;
    }
    log_f_.push_back(std::log(v));
  }
  if (log_f_.size() < 4)
    throw ValueError("RadialTable: the function falls below 1e-14 within 4 grid points");
  f_min_ = std::exp(log_f_[0]);
  // The fine grid, filled by the cubic interpolation itself.
  constexpr int kRefine = 16;
  const auto n_fine = static_cast<int64_t>((log_f_.size() - 1) * kRefine + 1);
  const at::Tensor u = at::arange(n_fine, at::kDouble) / kRefine;
  const at::Tensor f_fine = (*this)((log_kappa_min_ + u * step_).exp()).clamp_min(1e-300);
  const at::Tensor lf = f_fine.log().contiguous();
  fine_log_f_.assign(lf.data_ptr<double>(), lf.data_ptr<double>() + n_fine);
  if (stops_at_zero_) fine_log_f_.push_back(-700.0); // one step past the end: f ~ 0
}

at::Tensor RadialTable::from_log_kappa(const at::Tensor& log_kappa) const {
  const auto n = static_cast<int64_t>(fine_log_f_.size());
  const double fine_step = step_ / 16;
  const at::Tensor table =
      at::tensor(at::ArrayRef<double>(fine_log_f_.data(), fine_log_f_.size()), at::kDouble)
          .to(log_kappa.options());
  const at::Tensor u =
      ((log_kappa - log_kappa_min_) / fine_step).clamp(0, static_cast<double>(n - 1));
  const at::Tensor i0 = u.floor().clamp_max(static_cast<double>(n - 2));
  const at::Tensor w = u - i0;
  const at::Tensor i = i0.to(at::kLong);
  const at::Tensor v0 = at::take(table, i), v1 = at::take(table, i + 1);
  return (v0 + w * (v1 - v0)).exp();
}

at::Tensor RadialTable::operator()(const at::Tensor& kappa) const {
  const auto opts = kappa.options();
  const auto n = static_cast<int64_t>(log_f_.size());
  const at::Tensor table =
      at::tensor(at::ArrayRef<double>(log_f_.data(), log_f_.size()), at::kDouble).to(opts);
  const at::Tensor k = kappa.clamp_min(0);
  // Continuous grid coordinate u; segment [i, i + 1] with the 4-point Lagrange cubic through
  // i - 1 .. i + 2 (exact for cubics: error ~ h^4 |4th derivative| / 40).
  const at::Tensor u = (k.clamp_min(1e-300).log() - log_kappa_min_) / step_;
  const at::Tensor i = u.floor().clamp(0, static_cast<double>(n - 2));
  const at::Tensor t = (u - i).clamp(0, 1);
  const at::Tensor i1 = i.to(at::kLong);
  auto val = [&](const at::Tensor& idx) { return at::take(table, idx.clamp(0, n - 1)); };
  const at::Tensor p0 = val(i1 - 1), p1 = val(i1), p2 = val(i1 + 1), p3 = val(i1 + 2);
  // At the table ends the missing neighbour is extrapolated linearly.
  const at::Tensor q0 = at::where(i1 == 0, 2 * p1 - p2, p0);
  const at::Tensor q3 = at::where(i1 + 2 > n - 1, 2 * p2 - p1, p3);
  const at::Tensor tm1 = t - 1, tm2 = t - 2, tp1 = t + 1;
  at::Tensor log_f = -t * tm1 * tm2 / 6 * q0 + tp1 * tm1 * tm2 / 2 * p1 - tp1 * t * tm2 / 2 * p2 +
                     tp1 * t * tm1 / 6 * q3;
  at::Tensor out = log_f.exp();
  // Beyond the last point: power law of the last segment, or zero where the table stopped.
  const double last_slope = log_f_[n - 1] - log_f_[n - 2];
  const at::Tensor beyond = u > static_cast<double>(n - 1);
  const at::Tensor tail =
      stops_at_zero_ ? at::zeros_like(out)
                     : (log_f_[n - 1] + (u - static_cast<double>(n - 1)) * last_slope).exp();
  out = at::where(beyond, tail, out);
  // Below the first point: 1 - (1 - f_min) (kappa / kappa_min)^2.
  const double kappa_min = std::exp(log_kappa_min_);
  const at::Tensor small = 1 - (1 - f_min_) * (k / kappa_min).square();
  return at::where(k < kappa_min, small, out);
}

double RadialTable::at(double kappa) const {
  return (*this)(at::full({1}, kappa, at::kDouble)).item<double>();
}

} // namespace demix::detail

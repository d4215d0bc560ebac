#pragma once
// A positive, decreasing radial function f(kappa), f(0) = 1 (the Fourier transform of a unit-flux
// galaxy or PSF profile), tabulated once on a logarithmic grid and evaluated on tensors of any
// shape and device by cubic (4-point Lagrange) interpolation of log f against log kappa.

#include <ATen/core/TensorBody.h>

#include <functional>
#include <vector>

namespace demix::detail {

class RadialTable {
public:
  /// Tabulates `f` on [kappa_min, kappa_max] with `per_decade` points per decade. Below
  /// kappa_min, f = 1 - (1 - f(kappa_min)) (kappa / kappa_min)^2 (the small-frequency behaviour of
  /// any profile with a finite second moment). The table stops at the first value below 1e-14
  /// (beyond which the transforms are not resolved in double precision); past its end f = 0 if it
  /// stopped there, else f continues with the power law of its last two points.
  RadialTable(const std::function<double(double)>& f, double kappa_min, double kappa_max,
              int per_decade);

  /// f at every element of `kappa` (>= 0), in kappa's dtype and on its device.
  at::Tensor operator()(const at::Tensor& kappa) const; // any shape -> same shape
  /// f at one point (for tests and small tables), by the same interpolation.
  double at(double kappa) const;

  /// Fast path for per-pixel work: f from log(kappa), by linear interpolation of log f on a grid
  /// 16 times finer than the table (itself filled by the cubic interpolation; added error
  /// < 1e-6 for the smooth transforms tabulated here), clamped to the table's range: log kappa
  /// below the first point gives f(kappa_min), beyond the last f(kappa_max) (or 0).
  at::Tensor from_log_kappa(const at::Tensor& log_kappa) const; // any shape -> same shape

  std::size_t size() const { return log_f_.size(); }

private:
  double log_kappa_min_ = 0, step_ = 0; // log grid: log kappa_i = log_kappa_min_ + i step_
  double f_min_ = 1;                    // f(kappa_min)
  bool stops_at_zero_ = false;          // the table ended because f fell below 1e-14
  std::vector<double> log_f_;
  std::vector<double> fine_log_f_; // log f on the 16x finer grid
};

} // namespace demix::detail

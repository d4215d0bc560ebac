#pragma once
// Matching demix's WPH coefficients to pywph's stored ones by label, for the pywph regression
// tests.

#include <demix/stats/coefficients.hpp>

#include <ATen/ATen.h>

namespace demix::test {

/// Relative error per coefficient, with a floor at 1e-6 of the largest |value| so that coefficients
/// which vanish analytically (e.g. imaginary parts of S11 at tau = 0, ~1e-17) do not count.
double max_relative_error(const at::Tensor& ours, const at::Tensor& ref);

/// Positions in `got` (map 0) of pywph's moments: rows of wph_idx [j1 t1 p1 j2 t2 p2 n a pseudo],
/// then of sm_idx [j p1 p2 pseudo]. Fails the test (and returns empty) if a label is missing or
/// duplicated, or if `got` holds moments pywph does not.
std::vector<int64_t> pywph_order(const Coefficients& got, const at::Tensor& wph_idx,
                                 const at::Tensor& sm_idx);

} // namespace demix::test

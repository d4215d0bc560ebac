#pragma once
// WPH covariances of periodic maps computed in Fourier space, where most of them are cheap.
//
// A covariance <a(r + tau) conj(b(r))> equals (1/N^2) sum_k a^(k) conj(b^(k)) e^{2 pi i k.tau/N}
// (Parseval). When a or b is a plain wavelet field x * psi, its spectrum vanishes outside the
// wavelet's compact support, so the sum runs over a small box of frequencies around the origin,
// and the few shifts tau of the "exp" grid are a separable DFT of that box (two small matmuls).
// The phase-harmonic fields and this covariance stage are custom autograd functions that save only
// their inputs and recompute the rest in backward, so a 512 x 512 gradient stays well under 1 GB.

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace demix::detail {

/// Covariances sharing one frequency box (the support of their band-limited side).
struct SpectralGroup {
  int64_t bh = 0, bw = 0;  // box extent (rows, columns)
  at::Tensor box;          // (bh * bw) int64 flat frequency indices, undefined for the whole grid
  at::Tensor ey;           // (n_ty, bh) complex: e^{2 pi i ky ty / H}
  at::Tensor ex;           // (bw, n_tx) complex: e^{2 pi i kx tx / W} / N^2
  at::Tensor fa, fb;       // (n_cov) int64: field (spectrum) of each side
  at::Tensor m_lin;        // (n_m) int64: moment position in (n_cov, n_ty, n_tx)
  std::vector<int64_t> first_moment;  // per covariance: offset of its moments (n_cov + 1)
  int64_t n_cov = 0;
};

struct SpectralPlan {
  int64_t n_ty = 0, n_tx = 0;
  std::vector<SpectralGroup> groups;
};

/// [z]^p = |z| e^{i p arg z} of the selected wavelet fields: (B, n, H, W) complex. Backward uses the
/// Wirtinger derivatives of |z|^{1-p} z^p from wt alone (no intermediate is kept); both passes
/// work on chunks of fields whose temporaries fit in `budget` bytes.
at::Tensor phase_harmonics(const at::Tensor& wt /* (B, n_psi, H, W) complex */,
                           const at::Tensor& index /* (n) int64 */,
                           const at::Tensor& p /* (n) real */, int64_t budget);

/// Every moment of every group, in group order: (B, n_moments) complex. Covariances are taken in
/// chunks whose temporaries fit in `budget` bytes (forward and backward).
at::Tensor spectral_covariances(const at::Tensor& spectra /* (B, n_fields, H * W) complex */,
                                const std::shared_ptr<const SpectralPlan>& plan, int64_t budget);

}  // namespace demix::detail

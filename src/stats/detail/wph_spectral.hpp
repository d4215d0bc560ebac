#pragma once
// WPH covariances of periodic maps computed in Fourier space, where most of them are cheap.
//
// A covariance <a(r + tau) conj(b(r))> equals (1/N^2) sum_k a^(k) conj(b^(k)) e^{2 pi i k.tau/N}
// (Parseval). When a or b is a plain wavelet field x * psi, its spectrum vanishes outside the
// wavelet's compact support, so the sum runs over a small box of frequencies around the origin,
// and the few shifts tau of the "exp" grid are a separable DFT of that box (two small matmuls).
//
// One custom autograd function does it all from the Fourier transform of the maps and their
// wavelet transform: it builds every field's spectrum ([x*psi]^p through an FFT, chunk by chunk),
// keeps only the boxes each group of covariances needs (all of a chunk's boxes copied by one
// kernel, box_gather.hpp), and in backward sends the gradients back through the same chunks. It
// saves the wavelet transform and those boxes, nothing of full size.

#include "stats/detail/box_gather.hpp"

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace demix::detail {

/// Covariances sharing one frequency box (the support of their band-limited side).
struct SpectralGroup {
  int64_t bh = 0, bw = 0;            // box extent (rows, columns)
  int64_t n_slots = 0;               // fields whose boxes the group keeps
  int64_t offset = 0;                // its boxes' offset in the plan's box buffer, per map
  at::Tensor ey;                     // (n_ty, bh) complex: e^{2 pi i ky ty / H}
  at::Tensor ex;                     // (bw, n_tx) complex: e^{2 pi i kx tx / W} / N^2
  at::Tensor fa, fb;                 // (n_cov) int64: slot of each side
  at::Tensor m_lin;                  // (n_m) int64: moment position in (n_cov, n_ty, n_tx)
  std::vector<int64_t> first_moment; // per covariance: offset of its moments (n_cov + 1)
  int64_t n_cov = 0;
};

struct SpectralPlan {
  int64_t height = 0, width = 0;
  int64_t n_ty = 0, n_tx = 0;
  // Source fields: plain wavelet fields x * psi (spectrum x^ psi^), then [x * psi]^p, p != 1.
  at::Tensor psi_plain; // (n_plain, H, W) real: Fourier filters of the plain fields
  int64_t plain_per_map =
      0;               // plain fields come map by map (two maps for cross-WPH), this many each
  at::Tensor nl_index; // (n_nl) int64: wavelet of each nonlinear field (map * n_psi + wavelet)
  at::Tensor nl_p;     // (n_nl) real: its exponent p
  // Fields = sources, then conjugated copies conj(F(-x)) of some sources (pseudo moments).
  at::Tensor conj_source; // (n_conj) int64
  std::vector<SpectralGroup> groups;
  // The copies of the sources' spectra into the groups' boxes: a field's box holds its source's
  // spectrum at the box frequencies, or conj(F(-k)) for a conjugated field.
  BoxTasks box_tasks;
  int64_t n_plain() const { return psi_plain.size(0); }
  int64_t n_sources() const { return psi_plain.size(0) + nl_index.numel(); }
  int64_t n_fields() const { return n_sources() + conj_source.numel(); }
};

/// How each field's mean (its spectrum at k = 0, divided by N) is removed.
enum class DcMode {
  Own,         ///< its own mean, in the graph: the k = 0 term and its gradient vanish
  OwnConstant, ///< its own mean held constant: the value vanishes, the gradient passes
  Reference,   ///< a given mean (the reference map's), held constant
};

struct SpectralResult {
  at::Tensor values; // (B, n_moments) complex, in group order
  at::Tensor mean;   // (B, n_fields) complex: each field's own mean (not differentiable)
  at::Tensor
      power; // (B, n_fields) real: mean |F - m|^2 (not differentiable; OwnConstant only, else 0)
};

/// Every moment of every group. Temporaries are chunked to fit in `budget` bytes; `progress`, if
/// set, hears (chunks done, chunks in all) after each chunk of the forward computation.
SpectralResult spectral_wph(const at::Tensor& xhat /* (B, n_maps, H, W) complex */,
                            const at::Tensor& wt /* (B, n_maps * n_psi, H, W) complex */,
                            const std::shared_ptr<const SpectralPlan>& plan, DcMode mode,
                            const at::Tensor& ref_mean /* (B0, n_fields) complex, Reference only */,
                            int64_t budget,
                            const std::function<void(int64_t, int64_t)>& progress = {});

} // namespace demix::detail

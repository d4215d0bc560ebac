#include "stats/detail/phase_harmonic.hpp"

#include <demix/core/errors.hpp>

#include "stats/detail/own_kernels.hpp"
#include "stats/detail/phase_harmonic_math.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#ifdef DEMIX_CUDA_KERNELS
#include "stats/cuda/phase_harmonic_cuda.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <string>

namespace demix::detail {

namespace {

void check(const at::Tensor& wt, const at::Tensor& idx, const at::Tensor& p, const char* what) {
  if (!wt.is_complex() || wt.dim() != 4 || idx.dim() != 1 || idx.scalar_type() != at::kLong ||
      p.numel() != idx.numel() || idx.device() != wt.device() || p.device() != wt.device())
    throw ShapeError(std::string(what) +
                     ": expected wt (B, F, H, W) complex with idx (n) int64 and p (n) on " +
                     wt.device().str() + ", got wt " + c10::toString(wt.scalar_type()) + " of " +
                     std::to_string(wt.dim()) + " dimensions, idx of " +
                     std::to_string(idx.numel()) + ", p of " + std::to_string(p.numel()));
}

} // namespace

at::Tensor gather_harmonics_composite(const at::Tensor& wt, const at::Tensor& idx,
                                      const at::Tensor& p) {
  const at::Tensor z = wt.index_select(1, idx);
  const at::Tensor pv = p.to(z.abs().scalar_type()).view({1, -1, 1, 1});
  return at::polar(z.abs(), at::angle(z) * pv);
}

void add_harmonics_backward_composite(at::Tensor& gwt, const at::Tensor& wt, const at::Tensor& idx,
                                      const at::Tensor& p, const at::Tensor& grad) {
  const at::Tensor z = wt.index_select(1, idx);
  const at::Tensor pv = p.to(z.abs().scalar_type()).view({1, -1, 1, 1});
  const at::Tensor w = grad * at::polar(z.abs(), at::angle(z) * pv).conj();
  const at::Tensor zero = z.abs() == 0;
  at::Tensor num = at::complex(at::real(w), at::imag(w) * pv);
  num.div_(at::where(zero, at::ones_like(z), z.conj()));
  gwt.index_add_(1, idx, num.masked_fill_(zero, 0));
}

at::Tensor gather_harmonics(const at::Tensor& wt_in, const at::Tensor& idx,
                            const at::Tensor& p_in) {
  check(wt_in, idx, p_in, "gather_harmonics");
  if (!have_own_kernel(wt_in)) return gather_harmonics_composite(wt_in, idx, p_in);
  const at::Tensor wt = wt_in.contiguous();
  const int64_t B = wt.size(0), F = wt.size(1), n = idx.numel(), HW = wt.size(2) * wt.size(3);
  at::Tensor out = at::empty({B, n, wt.size(2), wt.size(3)}, wt.options());
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(wt.scalar_type()), "gather_harmonics", [&] {
    const at::Tensor p = p_in.to(c10::CppTypeToScalarType<scalar_t>::value).contiguous();
    const at::Tensor ix = idx.contiguous();
#ifdef DEMIX_CUDA_KERNELS
    if (wt.is_cuda()) {
      const c10::cuda::CUDAGuard guard(wt.device());
      const char* err = cuda::gather_harmonics<scalar_t>(
          as_real<scalar_t>(wt), ix.data_ptr<int64_t>(), p.data_ptr<scalar_t>(),
          as_real<scalar_t>(out), B, F, n, HW, c10::cuda::getCurrentCUDAStream().stream());
      if (err) throw DeviceError(std::string("gather_harmonics: CUDA kernel failed: ") + err);
      return;
    }
#endif
    const scalar_t* src = as_real<scalar_t>(wt);
    scalar_t* dst = as_real<scalar_t>(out);
    const int64_t* ii = ix.data_ptr<int64_t>();
    const scalar_t* pp = p.data_ptr<scalar_t>();
    at::parallel_for(0, B * n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t i = t % n, b = t / n;
        const scalar_t* z = src + (b * F + ii[i]) * HW * 2;
        scalar_t* o = dst + t * HW * 2;
        for (int64_t k = 0; k < HW; ++k)
          ph::harmonic(z[2 * k], z[2 * k + 1], pp[i], o[2 * k], o[2 * k + 1]);
      }
    });
  });
  return out;
}

void add_harmonics_backward(at::Tensor& gwt, const at::Tensor& wt_in, const at::Tensor& idx,
                            const at::Tensor& p_in, const at::Tensor& grad_in) {
  check(wt_in, idx, p_in, "add_harmonics_backward");
  const int64_t B = wt_in.size(0), F = wt_in.size(1), n = idx.numel(),
                HW = wt_in.size(2) * wt_in.size(3);
  if (!gwt.sizes().equals(wt_in.sizes()) || !gwt.is_contiguous() ||
      gwt.scalar_type() != wt_in.scalar_type() ||
      !grad_in.sizes().equals({B, n, wt_in.size(2), wt_in.size(3)}) ||
      grad_in.scalar_type() != wt_in.scalar_type())
    throw ShapeError(
        "add_harmonics_backward: gwt must be a contiguous tensor like wt and grad (B, n, H, W)");
  if (!have_own_kernel(wt_in))
    return add_harmonics_backward_composite(gwt, wt_in, idx, p_in, grad_in);
  const at::Tensor wt = wt_in.contiguous(), grad = grad_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(wt.scalar_type()), "add_harmonics_backward", [&] {
    const at::Tensor p = p_in.to(c10::CppTypeToScalarType<scalar_t>::value).contiguous();
    const at::Tensor ix = idx.contiguous();
#ifdef DEMIX_CUDA_KERNELS
    if (wt.is_cuda()) {
      const c10::cuda::CUDAGuard guard(wt.device());
      const char* err = cuda::add_harmonics_backward<scalar_t>(
          as_real<scalar_t>(gwt), as_real<scalar_t>(wt), ix.data_ptr<int64_t>(),
          p.data_ptr<scalar_t>(), as_real<scalar_t>(grad), B, F, n, HW,
          c10::cuda::getCurrentCUDAStream().stream());
      if (err) throw DeviceError(std::string("add_harmonics_backward: CUDA kernel failed: ") + err);
      return;
    }
#endif
    scalar_t* dst = as_real<scalar_t>(gwt);
    const scalar_t* z = as_real<scalar_t>(wt);
    const scalar_t* g = as_real<scalar_t>(grad);
    const int64_t* ii = ix.data_ptr<int64_t>();
    const scalar_t* pp = p.data_ptr<scalar_t>();
    // Parallel over (map, block of pixels), fields in sequence: repeated indices never race.
    constexpr int64_t kBlock = 1024;
    const int64_t blocks = (HW + kBlock - 1) / kBlock;
    at::parallel_for(0, B * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / blocks, k0 = (t % blocks) * kBlock, k1 = std::min(HW, k0 + kBlock);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t at = (b * F + ii[i]) * HW * 2, gi = (b * n + i) * HW * 2;
          for (int64_t k = k0; k < k1; ++k) {
            scalar_t re, im;
            ph::harmonic_backward(z[at + 2 * k], z[at + 2 * k + 1], pp[i], g[gi + 2 * k],
                                  g[gi + 2 * k + 1], re, im);
            dst[at + 2 * k] += re, dst[at + 2 * k + 1] += im;
          }
        }
      }
    });
  });
}

} // namespace demix::detail

#include "stats/detail/pair_product.hpp"

#include <demix/core/errors.hpp>

#include "stats/detail/own_kernels.hpp"
#include "stats/detail/pair_product_math.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#ifdef DEMIX_CUDA_KERNELS
#include "stats/cuda/pair_product_cuda.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <string>

namespace demix::detail {

namespace {

void check(const at::Tensor& x, const at::Tensor& g, const char* what) {
  if (!x.is_complex() || x.dim() != 3 || !g.is_complex() || g.dim() != 3 ||
      g.size(0) != x.size(0) || g.size(2) != x.size(2) || g.scalar_type() != x.scalar_type() ||
      g.device() != x.device())
    throw ShapeError(std::string(what) +
                     ": expected complex (B, F, K) and (B, n, K) of one type and device");
}

} // namespace

at::Tensor pair_products_composite(const at::Tensor& x, const at::Tensor& fa,
                                   const at::Tensor& fb) {
  return x.index_select(1, fa) * x.index_select(1, fb).conj();
}

void add_pair_products_backward_composite(at::Tensor& gx, const at::Tensor& x, const at::Tensor& fa,
                                          const at::Tensor& fb, const at::Tensor& g) {
  gx.index_add_(1, fa, g * x.index_select(1, fb));
  gx.index_add_(1, fb, g.conj() * x.index_select(1, fa));
}

at::Tensor pair_products(const at::Tensor& x_in, const at::Tensor& fa_in, const at::Tensor& fb_in) {
  if (!x_in.is_complex() || x_in.dim() != 3 || fa_in.numel() != fb_in.numel() ||
      fa_in.device() != x_in.device())
    throw ShapeError("pair_products: expected x (B, F, K) complex and two index lists of one "
                     "length on its device");
  if (!have_own_kernel(x_in)) return pair_products_composite(x_in, fa_in, fb_in);
  const at::Tensor x = x_in.contiguous(), fa = fa_in.contiguous(), fb = fb_in.contiguous();
  const int64_t B = x.size(0), F = x.size(1), K = x.size(2), n = fa.numel();
  at::Tensor out = at::empty({B, n, K}, x.options());
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(x.scalar_type()), "pair_products", [&] {
#ifdef DEMIX_CUDA_KERNELS
    if (x.is_cuda()) {
      const c10::cuda::CUDAGuard guard(x.device());
      const char* err = cuda::pair_products<scalar_t>(
          as_real<scalar_t>(x), fa.data_ptr<int64_t>(), fb.data_ptr<int64_t>(),
          as_real<scalar_t>(out), B, F, n, K, c10::cuda::getCurrentCUDAStream().stream());
      if (err) throw DeviceError(std::string("pair_products: CUDA kernel failed: ") + err);
      return;
    }
#endif
    const scalar_t* xs = as_real<scalar_t>(x);
    scalar_t* o = as_real<scalar_t>(out);
    const int64_t *ia = fa.data_ptr<int64_t>(), *ib = fb.data_ptr<int64_t>();
    at::parallel_for(0, B * n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t c = t % n, b = t / n;
        const scalar_t* a = xs + (b * F + ia[c]) * K * 2;
        const scalar_t* bb = xs + (b * F + ib[c]) * K * 2;
        scalar_t* r = o + t * K * 2;
        for (int64_t k = 0; k < K; ++k) {
          r[2 * k] = a[2 * k] * bb[2 * k] + a[2 * k + 1] * bb[2 * k + 1];
          r[2 * k + 1] = a[2 * k + 1] * bb[2 * k] - a[2 * k] * bb[2 * k + 1];
        }
      }
    });
  });
  return out;
}

void add_pair_products_backward(at::Tensor& gx, const at::Tensor& x_in, const at::Tensor& fa_in,
                                const at::Tensor& fb_in, const at::Tensor& g_in) {
  check(x_in, g_in, "add_pair_products_backward");
  if (!gx.sizes().equals(x_in.sizes()) || !gx.is_contiguous() ||
      gx.scalar_type() != x_in.scalar_type() || fa_in.numel() != g_in.size(1) ||
      fb_in.numel() != g_in.size(1))
    throw ShapeError("add_pair_products_backward: gx must be a contiguous tensor like x, and fa, "
                     "fb one per product");
  if (!have_own_kernel(x_in))
    return add_pair_products_backward_composite(gx, x_in, fa_in, fb_in, g_in);
  const int64_t B = x_in.size(0), F = x_in.size(1), K = x_in.size(2), n = g_in.size(1);
  const at::Tensor x = x_in.contiguous(), g = g_in.contiguous(), fa = fa_in.contiguous(),
                   fb = fb_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(
      c10::toRealValueType(x.scalar_type()), "add_pair_products_backward", [&] {
#ifdef DEMIX_CUDA_KERNELS
        if (x.is_cuda()) {
          const c10::cuda::CUDAGuard guard(x.device());
          const char* err = cuda::add_pair_products_backward<scalar_t>(
              as_real<scalar_t>(gx), as_real<scalar_t>(x), fa.data_ptr<int64_t>(),
              fb.data_ptr<int64_t>(), as_real<scalar_t>(g), B, F, n, K,
              c10::cuda::getCurrentCUDAStream().stream());
          if (err)
            throw DeviceError(std::string("add_pair_products_backward: CUDA kernel failed: ") +
                              err);
          return;
        }
#endif
        scalar_t* out = as_real<scalar_t>(gx);
        const scalar_t *xs = as_real<scalar_t>(x), *gs = as_real<scalar_t>(g);
        const int64_t *ia = fa.data_ptr<int64_t>(), *ib = fb.data_ptr<int64_t>();
        // Parallel over (map, block of frequencies), products in sequence: repeated fields never
        // race.
        constexpr int64_t kBlock = 256;
        const int64_t blocks = (K + kBlock - 1) / kBlock;
        at::parallel_for(0, B * blocks, 1, [&](int64_t begin, int64_t end) {
          for (int64_t t = begin; t < end; ++t) {
            const int64_t b = t / blocks, k0 = (t % blocks) * kBlock, k1 = std::min(K, k0 + kBlock);
            for (int64_t k = k0; k < k1; ++k)
              pair::backward_at(out + b * F * K * 2, xs + b * F * K * 2, ia, ib, gs + b * n * K * 2,
                                n, K, k);
          }
        });
      });
}

} // namespace demix::detail

#include "stats/detail/wph_spectral.hpp"

#include "stats/detail/box_gather.hpp"
#include "stats/detail/pair_product.hpp"
#include "stats/detail/phase_harmonic.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

namespace demix::detail {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// z * r for complex z and real r (broadcast): a real product on z's (re, im) pairs, which spares
/// the promotion of r to complex (a full copy on the CPU).
at::Tensor times_real(const at::Tensor& z, const at::Tensor& r) {
  return at::view_as_complex(at::view_as_real(z) * r.unsqueeze(-1));
}

int64_t items_per_chunk(int64_t bytes_per_item, int64_t budget, int64_t total) {
  return std::clamp<int64_t>(budget / std::max<int64_t>(1, bytes_per_item), 1,
                             std::max<int64_t>(1, total));
}

/// Calls fn(map, first, count) for the plain sources [s0, s1), in runs that filter one map each.
template <class Fn> void for_map_runs(const SpectralPlan& plan, int64_t s0, int64_t s1, Fn&& fn) {
  for (int64_t s = s0; s < s1;) {
    const int64_t map = s / plan.plain_per_map, end = std::min(s1, (map + 1) * plan.plain_per_map);
    fn(map, s, end - s);
    s = end;
  }
}

/// Spectra of sources [s0, s0 + c) without mean removal: (B, c, H * W).
at::Tensor source_spectra(const SpectralPlan& plan, const at::Tensor& xhat, const at::Tensor& wt,
                          int64_t s0, int64_t c) {
  const int64_t n_plain = plan.n_plain(), B = xhat.size(0);
  std::vector<at::Tensor> parts;
  const int64_t plain_end = std::min(s0 + c, n_plain);
  for_map_runs(plan, s0, plain_end, [&](int64_t map, int64_t s, int64_t n) {
    parts.push_back(times_real(xhat.narrow(1, map, 1), plan.psi_plain.narrow(0, s, n)));
  });
  const int64_t nl0 = std::max(s0, n_plain) - n_plain, nl1 = s0 + c - n_plain;
  if (nl1 > nl0) {
    const at::Tensor idx = plan.nl_index.narrow(0, nl0, nl1 - nl0);
    parts.push_back(at::fft_fft2(gather_harmonics(wt, idx, plan.nl_p.narrow(0, nl0, nl1 - nl0))));
  }
  const at::Tensor out = parts.size() == 1 ? parts[0] : at::cat(parts, 1);
  return out.reshape({B, c, -1});
}

/// Group g's boxes in the plan's flat box buffer: (B, slots, bh * bw), contiguous.
at::Tensor group_boxes(const at::Tensor& buffer, const SpectralGroup& g, int64_t B) {
  const int64_t per_map = g.n_slots * g.bh * g.bw;
  return buffer.narrow(0, B * g.offset, B * per_map).view({B, g.n_slots, g.bh * g.bw});
}

/// Covariances [s, s + n) of group g from its boxes: (B, moments of those covariances).
at::Tensor group_chunk(const at::Tensor& boxes /* (B, F_g, bh*bw) */, const SpectralGroup& g,
                       const SpectralPlan& plan, int64_t s, int64_t n) {
  const int64_t B = boxes.size(0);
  const at::Tensor prod = pair_products(boxes, g.fa.narrow(0, s, n), g.fb.narrow(0, s, n));
  const at::Tensor r = at::matmul(g.ey, at::matmul(prod.view({B, n, g.bh, g.bw}), g.ex));
  const int64_t m0 = g.first_moment[s], nm = g.first_moment[s + n] - m0;
  return r.reshape({B, -1}).index_select(1, g.m_lin.narrow(0, m0, nm) - s * plan.n_ty * plan.n_tx);
}

struct PlanHolder : torch::CustomClassHolder {
  std::shared_ptr<const SpectralPlan> plan;
};

struct SpectralFn : torch::autograd::Function<SpectralFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& xhat,
                               const at::Tensor& wt_in,
                               const std::shared_ptr<const SpectralPlan>& plan, int64_t mode,
                               const at::Tensor& ref_mean, int64_t budget,
                               const std::function<void(int64_t, int64_t)>* progress) {
    const SpectralPlan& p = *plan;
    const at::Tensor wt = wt_in.contiguous(); // the harmonics' kernels read it as laid out
    const int64_t B = xhat.size(0), HW = p.height * p.width, item = xhat.element_size();
    const double n_pix = static_cast<double>(HW);
    const auto real = c10::toRealValueType(xhat.scalar_type());
    at::Tensor mean = at::empty({B, p.n_fields()}, xhat.options());
    at::Tensor power = at::zeros({B, p.n_fields()}, xhat.options().dtype(real));
    at::Tensor buffer = at::empty({B * p.box_tasks.per_map}, xhat.options()); // every group's boxes

    const int64_t n_src = p.n_sources();
    const int64_t chunk = items_per_chunk(8 * B * HW * item, budget, n_src);
    // Per chunk only what needs its spectra (k = 0 terms, norms); the scalings once at the end.
    const bool reference = mode == static_cast<int64_t>(DcMode::Reference);
    const bool deviations = mode == static_cast<int64_t>(DcMode::OwnConstant); // norm Auto only
    const at::Tensor ref_dc = reference ? ref_mean * n_pix : at::Tensor();
    // Progress in chunks: those of the sources, then those of each group's covariances.
    // Each group's covariances per chunk, counted here and used below.
    std::vector<int64_t> per_group;
    int64_t chunks_done = 0, chunks = (n_src + chunk - 1) / chunk;
    for (const SpectralGroup& g : p.groups) {
      per_group.push_back(items_per_chunk(4 * B * g.bh * g.bw * item, budget, g.n_cov));
      chunks += (g.n_cov + per_group.back() - 1) / per_group.back();
    }
    const auto step = [&] {
      if (progress && *progress) (*progress)(++chunks_done, chunks);
    };
    for (int64_t s0 = 0; s0 < n_src; s0 += chunk) {
      const int64_t c = std::min(chunk, n_src - s0);
      at::Tensor spec = source_spectra(p, xhat, wt, s0, c); // (B, c, HW)
      at::Tensor dc = spec.select(2, 0);
      mean.narrow(1, s0, c).copy_(dc);
      if (reference)
        dc.sub_(ref_dc.narrow(1, s0, c));
      else
        dc.zero_();
      if (deviations) power.narrow(1, s0, c).copy_(at::linalg_vector_norm(spec, 2, {-1}));
      gather_boxes(buffer, spec, p.box_tasks, s0);
      step();
    }
    mean.narrow(1, 0, n_src).div_(n_pix);
    if (deviations) power.narrow(1, 0, n_src).square_().div_(n_pix * n_pix);
    // Conjugated fields: mean conj(m), same power as their source.
    if (p.conj_source.numel()) {
      mean.narrow(1, n_src, p.conj_source.numel())
          .copy_(mean.index_select(1, p.conj_source).conj());
      power.narrow(1, n_src, p.conj_source.numel()).copy_(power.index_select(1, p.conj_source));
    }

    std::vector<at::Tensor> out;
    for (std::size_t gi = 0; gi < p.groups.size(); ++gi) {
      const SpectralGroup& g = p.groups[gi];
      const int64_t per = per_group[gi];
      const at::Tensor boxes = group_boxes(buffer, g, B);
      for (int64_t s = 0; s < g.n_cov; s += per) {
        out.push_back(group_chunk(boxes, g, p, s, std::min(per, g.n_cov - s)));
        step();
      }
    }
    ctx->save_for_backward({wt, buffer});
    auto holder = c10::make_intrusive<PlanHolder>();
    holder->plan = plan;
    ctx->saved_data["plan"] = at::IValue::make_capsule(holder);
    ctx->saved_data["mode"] = mode;
    ctx->saved_data["budget"] = budget;
    ctx->saved_data["maps"] = xhat.size(1);
    ctx->mark_non_differentiable({mean, power});
    return {at::cat(out, 1), mean, power};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& wt = saved[0]; // contiguous (forward saved it so)
    const auto holder = ctx->saved_data["plan"].toCapsule();
    const SpectralPlan& p = *static_cast<PlanHolder*>(holder.get())->plan;
    const int64_t mode = ctx->saved_data["mode"].toInt(),
                  budget = ctx->saved_data["budget"].toInt();
    const at::Tensor& grad = grads[0]; // (B, n_moments)
    const int64_t B = wt.size(0), H = p.height, W = p.width, HW = H * W, item = wt.element_size();

    // Gradients of the boxes: R = ey P ex at the moments gives grad_P = ey^H grad_R ex^H, and
    // P = a conj(b) gives grad_a = grad_P b, grad_b = conj(grad_P) a.
    const at::Tensor& buffer = saved[1];
    at::Tensor gbuffer = at::zeros_like(buffer);
    int64_t offset = 0;
    for (const SpectralGroup& g : p.groups) {
      const at::Tensor boxes = group_boxes(buffer, g, B);
      at::Tensor gb = group_boxes(gbuffer, g, B);
      const at::Tensor ey_h = g.ey.conj().transpose(0, 1), ex_h = g.ex.conj().transpose(0, 1);
      const int64_t per = items_per_chunk(4 * B * g.bh * g.bw * item, budget, g.n_cov);
      for (int64_t s = 0; s < g.n_cov; s += per) {
        const int64_t n = std::min(per, g.n_cov - s);
        const int64_t m0 = g.first_moment[s], nm = g.first_moment[s + n] - m0;
        at::Tensor gr = at::zeros({B, n * p.n_ty * p.n_tx}, grad.options());
        gr.index_add_(1, g.m_lin.narrow(0, m0, nm) - s * p.n_ty * p.n_tx,
                      grad.narrow(1, offset, nm));
        offset += nm;
        const at::Tensor gp = at::matmul(at::matmul(ey_h, gr.view({B, n, p.n_ty, p.n_tx})), ex_h)
                                  .reshape({B, n, g.bh * g.bw});
        add_pair_products_backward(gb, boxes, g.fa.narrow(0, s, n), g.fb.narrow(0, s, n), gp);
      }
    }

    // Back to the sources, chunk by chunk: full-grid spectrum gradients, then x^ (plain fields)
    // or, through the adjoint of the FFT (N ifft2) and [z]^p, the wavelet transform.
    at::Tensor gxhat = at::zeros({B, ctx->saved_data["maps"].toInt(), H, W}, wt.options());
    at::Tensor gwt = at::zeros_like(wt, at::MemoryFormat::Contiguous);
    const int64_t n_src = p.n_sources(), n_plain = p.n_plain();
    const int64_t chunk = items_per_chunk(10 * B * HW * item, budget, n_src);
    for (int64_t s0 = 0; s0 < n_src; s0 += chunk) {
      const int64_t c = std::min(chunk, n_src - s0);
      at::Tensor gfull = at::zeros({B, c, HW}, wt.options());
      add_boxes_backward(gfull, gbuffer, p.box_tasks, s0);
      if (mode == static_cast<int64_t>(DcMode::Own)) gfull.select(2, 0).zero_();
      const at::Tensor g4 = gfull.view({B, c, H, W});
      const int64_t plain_end = std::min(s0 + c, n_plain);
      for_map_runs(p, s0, plain_end, [&](int64_t map, int64_t s, int64_t n) {
        gxhat.narrow(1, map, 1).add_(
            times_real(g4.narrow(1, s - s0, n), p.psi_plain.narrow(0, s, n)).sum(1, true));
      });
      const int64_t nl0 = std::max(s0, n_plain) - n_plain, nl1 = s0 + c - n_plain;
      if (nl1 > nl0) {
        const at::Tensor idx = p.nl_index.narrow(0, nl0, nl1 - nl0);
        // The adjoint of the FFT is N ifft2, the unnormalised inverse ("forward" norm).
        add_harmonics_backward(gwt, wt, idx, p.nl_p.narrow(0, nl0, nl1 - nl0),
                               at::fft_ifft2(g4.narrow(1, c - (nl1 - nl0), nl1 - nl0), c10::nullopt,
                                             {-2, -1}, "forward"));
      }
    }
    // (one per input of forward: xhat, wt, plan, mode, ref_mean, budget, progress)
    return {gxhat, gwt, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

} // namespace

SpectralResult spectral_wph(const at::Tensor& xhat, const at::Tensor& wt,
                            const std::shared_ptr<const SpectralPlan>& plan, DcMode mode,
                            const at::Tensor& ref_mean, int64_t budget,
                            const std::function<void(int64_t, int64_t)>& progress) {
  // LibTorch 1.13 cannot describe an undefined tensor input: an empty one stands for "none".
  const at::Tensor ref = ref_mean.defined() ? ref_mean : at::empty({0}, xhat.options());
  const variable_list out =
      SpectralFn::apply(xhat, wt, plan, static_cast<int64_t>(mode), ref, budget, &progress);
  return {out[0], out[1], out[2]};
}

} // namespace demix::detail

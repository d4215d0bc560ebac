#include "wph_spectral.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

namespace demix::detail {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor harmonic_values(const at::Tensor& z, const at::Tensor& pv /* (1, n, 1, 1) */) {
  return at::polar(z.abs(), at::angle(z) * pv);
}

/// Fields per chunk so that `temporaries` tensors like one field of the batch fit in `budget`.
int64_t fields_per_chunk(const at::Tensor& wt, int64_t budget, int64_t temporaries) {
  const int64_t per_field = temporaries * wt.size(0) * wt.size(2) * wt.size(3) * wt.element_size();
  return std::max<int64_t>(1, budget / std::max<int64_t>(1, per_field));
}

struct PhaseHarmonicFn : torch::autograd::Function<PhaseHarmonicFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& wt, const at::Tensor& index,
                            const at::Tensor& p, int64_t budget) {
    ctx->save_for_backward({wt, index, p});
    ctx->saved_data["budget"] = budget;
    const int64_t n = index.numel(), chunk = fields_per_chunk(wt, budget, 4);
    at::Tensor out = at::empty({wt.size(0), n, wt.size(2), wt.size(3)}, wt.options());
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t c = std::min(chunk, n - s);
      out.narrow(1, s, c).copy_(harmonic_values(wt.index_select(1, index.narrow(0, s, c)),
                                                p.narrow(0, s, c).view({1, -1, 1, 1})));
    }
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &wt = saved[0], &index = saved[1], &p = saved[2];
    const int64_t n = index.numel(), chunk = fields_per_chunk(wt, ctx->saved_data["budget"].toInt(), 8);
    at::Tensor gwt = at::zeros_like(wt);
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t c = std::min(chunk, n - s);
      const at::Tensor idx = index.narrow(0, s, c), pv = p.narrow(0, s, c).view({1, -1, 1, 1});
      const at::Tensor z = wt.index_select(1, idx);
      const at::Tensor f = harmonic_values(z, pv);
      const at::Tensor g = grads[0].narrow(1, s, c);
      // f = z^{(1+p)/2} conj(z)^{(1-p)/2}: grad_z = ((1-p) conj(g) f + (1+p) g conj(f)) / (2 conj(z)),
      // set to 0 where z = 0 (as LibTorch's angle() does).
      at::Tensor num = (1 - pv) * g.conj() * f;
      num.add_((1 + pv) * g * f.conj());
      const at::Tensor zero = z.abs() == 0;
      num.div_(2 * at::where(zero, at::ones_like(z), z.conj()));
      gwt.index_add_(1, idx, num.masked_fill_(zero, 0));
    }
    return {gwt, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct PlanHolder : torch::CustomClassHolder {
  std::shared_ptr<const SpectralPlan> plan;
};

/// Covariances [start, start + n) of group g, and what backward needs: (B, n_moments_of_chunk).
at::Tensor group_chunk(const at::Tensor& boxed /* (B, F, bh*bw) */, const SpectralGroup& g,
                       const SpectralPlan& plan, int64_t start, int64_t n) {
  const int64_t B = boxed.size(0);
  const at::Tensor a = boxed.index_select(1, g.fa.narrow(0, start, n));
  const at::Tensor b = boxed.index_select(1, g.fb.narrow(0, start, n));
  const at::Tensor prod = (a * b.conj()).view({B, n, g.bh, g.bw});
  const at::Tensor r = at::matmul(g.ey, at::matmul(prod, g.ex));  // (B, n, n_ty, n_tx)
  const int64_t m0 = g.first_moment[start], nm = g.first_moment[start + n] - m0;
  const at::Tensor lin = g.m_lin.narrow(0, m0, nm) - start * plan.n_ty * plan.n_tx;
  return r.reshape({B, -1}).index_select(1, lin);
}

int64_t chunk_size(const SpectralGroup& g, int64_t budget, int64_t batch, int64_t item) {
  const int64_t per_cov = 4 * batch * g.bh * g.bw * item;  // two sides, product, its gradient
  return std::clamp<int64_t>(budget / std::max<int64_t>(1, per_cov), 1, g.n_cov);
}

struct CovariancesFn : torch::autograd::Function<CovariancesFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& spectra,
                            const std::shared_ptr<const SpectralPlan>& plan, int64_t budget) {
    ctx->save_for_backward({spectra});
    ctx->saved_data["budget"] = budget;
    auto holder = c10::make_intrusive<PlanHolder>();
    holder->plan = plan;
    ctx->saved_data["plan"] = at::IValue::make_capsule(holder);
    std::vector<at::Tensor> out;
    const int64_t B = spectra.size(0), item = spectra.element_size();
    for (const SpectralGroup& g : plan->groups) {
      const at::Tensor boxed = g.box.defined() ? spectra.index_select(2, g.box) : spectra;
      const int64_t chunk = chunk_size(g, budget, B, item);
      for (int64_t s = 0; s < g.n_cov; s += chunk)
        out.push_back(group_chunk(boxed, g, *plan, s, std::min(chunk, g.n_cov - s)));
    }
    return at::cat(out, 1);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor spectra = ctx->get_saved_variables()[0];
    const auto holder = ctx->saved_data["plan"].toCapsule();
    const SpectralPlan& plan = *static_cast<PlanHolder*>(holder.get())->plan;
    const int64_t budget = ctx->saved_data["budget"].toInt();
    const at::Tensor& grad = grads[0];  // (B, n_moments)
    const int64_t B = spectra.size(0), item = spectra.element_size();
    at::Tensor gspec = at::zeros_like(spectra);
    int64_t offset = 0;
    for (const SpectralGroup& g : plan.groups) {
      const at::Tensor boxed = g.box.defined() ? spectra.index_select(2, g.box) : spectra;
      at::Tensor gboxed = g.box.defined() ? at::zeros_like(boxed) : gspec;
      const int64_t chunk = chunk_size(g, budget, B, item);
      const at::Tensor ey_h = g.ey.conj().transpose(0, 1), ex_h = g.ex.conj().transpose(0, 1);
      for (int64_t s = 0; s < g.n_cov; s += chunk) {
        const int64_t n = std::min(chunk, g.n_cov - s);
        const int64_t m0 = g.first_moment[s], nm = g.first_moment[s + n] - m0;
        // R = ey P ex at the moments' entries: grad_P = ey^H grad_R ex^H.
        at::Tensor gr = at::zeros({B, n * plan.n_ty * plan.n_tx}, grad.options());
        gr.index_add_(1, g.m_lin.narrow(0, m0, nm) - s * plan.n_ty * plan.n_tx,
                       grad.narrow(1, offset, nm));
        offset += nm;
        const at::Tensor gp = at::matmul(at::matmul(ey_h, gr.view({B, n, plan.n_ty, plan.n_tx})), ex_h)
                                  .reshape({B, n, g.bh * g.bw});
        // P = a conj(b): grad_a = grad_P b, grad_b = conj(grad_P) a.
        const at::Tensor fa = g.fa.narrow(0, s, n), fb = g.fb.narrow(0, s, n);
        const at::Tensor a = boxed.index_select(1, fa), b = boxed.index_select(1, fb);
        gboxed.index_add_(1, fa, gp * b);
        gboxed.index_add_(1, fb, gp.conj() * a);
      }
      if (g.box.defined()) gspec.index_add_(2, g.box, gboxed);
    }
    return {gspec, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor phase_harmonics(const at::Tensor& wt, const at::Tensor& index, const at::Tensor& p,
                           int64_t budget) {
  return PhaseHarmonicFn::apply(wt, index, p, budget);
}

at::Tensor spectral_covariances(const at::Tensor& spectra,
                                const std::shared_ptr<const SpectralPlan>& plan, int64_t budget) {
  return CovariancesFn::apply(spectra, plan, budget);
}

}  // namespace demix::detail

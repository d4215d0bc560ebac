// WPH execution: wavelet transform, fields, covariances (Fourier-space engine for periodic maps,
// spatial path otherwise), scaling moments, and the chunked loss + gradient. The tables come from
// the plan (wph_plan.cpp).

#include <demix/core/errors.hpp>
#include <demix/stats/wph.hpp>

#include "stats/detail/map_batch.hpp"
#include "stats/detail/wph_plan.hpp"
#include "stats/detail/wph_spectral.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <functional>
#include <utility>

namespace demix {

using detail::WphPlan;

namespace {

/// Receives each chunk of moments: values (B, n) and their output rows (n), in a fixed order.
using Sink = std::function<void(const at::Tensor& values, const at::Tensor& rows)>;

struct Fields {
  at::Tensor xhat;    // (B, H, W) complex: Fourier transform of the maps
  at::Tensor wt;      // (B, n_psi, h, w) complex: wavelet transform (cut when NonPeriodic)
  at::Tensor wt_mod;  // (B, n_psi, h, w) real: its modulus (spatial path only, else undefined)
  at::Tensor lowpass; // (B, n_phi, h, w) complex: low-pass transform minus its mean
};

/// The normalisation statistics of the maps of a slice: the reference's, or (undefined tensors)
/// each map's own. What compute() used is returned the same way (for Statistic::reference).
struct Stats {
  at::Tensor field_mean; // (B0, n_fields) complex
  at::Tensor field_std;  // (B0, n_fields) complex (real values); undefined under norm None
  at::Tensor sm;         // (B0, n_sm, side, [mean, std]) complex: scaling moments

  bool defined() const { return field_mean.defined(); }
  Stats narrow(int64_t start, int64_t n) const {
    if (field_mean.size(0) == 1) return *this;
    return {field_mean.narrow(0, start, n), field_std.narrow(0, start, n), sm.narrow(0, start, n)};
  }
};

Stats stats_of(const Reference& ref) {
  if (ref.empty()) return {};
  return {ref.get("field_mean"), ref.get("field_std"), ref.get("scaling")};
}

/// (z - m) / s over the last two axes, with m, s the reference's when given, else z's own: None
/// subtracts the mean only (kept in the graph), Auto also divides by the deviation, both held
/// constant as pywph's stored normalisation is. Returns the result, and the m and s used (s
/// undefined for None).
std::tuple<at::Tensor, at::Tensor, at::Tensor>
standardise(const at::Tensor& z /* (B, P, h, w) */, WphNorm norm,
            const at::Tensor& ref_mean /* (B0, P, 1, 1) or undefined */,
            const at::Tensor& ref_std) {
  at::Tensor mean, scale;
  if (ref_mean.defined()) {
    mean = ref_mean;
    scale = ref_std;
  } else if (norm == WphNorm::None) {
    mean = z.mean({-2, -1}, true);
  } else {
    const at::Tensor d = z.detach();
    mean = d.mean({-2, -1}, true);
    const at::Tensor sd = at::sqrt((d - mean).abs().square().mean({-2, -1}, true));
    scale = at::where(sd == 0, at::ones_like(sd), sd).to(d.scalar_type());
  }
  return {scale.defined() ? (z - mean) / scale : z - mean, mean, scale};
}

at::Tensor pixels_axes(const at::Tensor& t) { return t.unsqueeze(-1).unsqueeze(-1); }
at::Tensor drop_pixel_axes(const at::Tensor& t) { return t.squeeze(-1).squeeze(-1); }

/// One call's execution of a plan.
class Execution {
public:
  Execution(const WphPlan& plan, const WphOptions& options, const Context& context)
      : p_(plan), o_(options), context_(context) {}

  /// x as (B, H, W) complex on the device (differentiably).
  at::Tensor prepare(const at::Tensor& x) const {
    const at::Tensor b = detail::map_batch(x, p_.height, p_.width, "WPH");
    if (x.is_complex() && !o_.complex_data)
      throw ValueError("WPH: complex input needs options.complex_data = true");
    return b.to(context_.device(), context_.complex_dtype());
  }

  /// The reference's statistics for a batch of `batch` maps (empty under norm None).
  Stats reference_stats(const Reference& ref, int64_t batch) const {
    ref.check("wph", batch, "WPH");
    if (o_.norm != WphNorm::Auto || ref.empty()) return {};
    const Stats s = stats_of(ref);
    if (s.field_mean.size(1) != p_.n_fields)
      throw ValueError("WPH: the reference holds " + std::to_string(s.field_mean.size(1)) +
                       " fields, this operator's model has " + std::to_string(p_.n_fields) +
                       " (a reference of other options?)");
    return {s.field_mean.to(context_.device()), s.field_std.to(context_.device()),
            s.sm.to(context_.device())};
  }

  Fields transform(const at::Tensor& xc) const {
    const at::Tensor f = at::fft_fft2(xc).unsqueeze(1); // (B, 1, H, W)
    Fields out;
    out.xhat = f.squeeze(1);
    // ifft2 = (1/N) x the unnormalised inverse: 1/N applied to x^ once, not to every filtered
    // copy (and again in their backward).
    const at::Tensor f_n = f * (1.0 / static_cast<double>(p_.height * p_.width));
    out.wt = at::fft_ifft2(f_n * p_.psi.unsqueeze(0), c10::nullopt, {-2, -1}, "forward");
    at::Tensor low = at::fft_ifft2(f_n * p_.phi.unsqueeze(0), c10::nullopt, {-2, -1}, "forward");
    if (!p_.periodic) {
      using at::indexing::Slice;
      const auto ys = Slice(p_.cut_y, p_.height - p_.cut_y);
      const auto xs = Slice(p_.cut_x, p_.width - p_.cut_x);
      out.wt = out.wt.index({"...", ys, xs});
      low = low.index({"...", ys, xs});
    }
    if (!p_.spectral.plan) out.wt_mod = out.wt.abs(); // the spatial path's; spectral: from wt
    out.lowpass = low - low.mean({-2, -1}, true);
    return out;
  }

  /// Every moment, chunk by chunk, into `sink`, normalised with `ref` (or the maps' own
  /// statistics); returns the statistics used.
  Stats compute(const Fields& f, const Stats& ref, const Sink& sink, bool cut_graph = false) const {
    Stats used = p_.spectral.plan
                     ? compute_spectral(p_.spectral, f.xhat.unsqueeze(1), f.wt, o_.norm, ref, sink)
                     : compute_spatial(f, o_.norm, ref, sink, cut_graph);
    used.sm = compute_scaling(f.lowpass, f.lowpass, o_.norm, ref.sm, sink);
    return used;
  }

  /// Periodic maps: the covariances of `tables` in Fourier space.
  Stats compute_spectral(const WphPlan::SpectralTables& tables,
                         const at::Tensor& xhat /* (B, maps, H, W) */,
                         const at::Tensor& wt /* (B, maps * n_psi, H, W) */, WphNorm norm,
                         const Stats& ref, const Sink& sink) const {
    // Temporaries are capped well below the budget: larger kernels gain little, memory is the
    // limit. But a call whose temporaries fit one chunk of at most 768 MB (the backward's
    // estimate: ten spectra per source) runs as one chunk: at small sizes the time is the number
    // of launches. Batches of many maps take up to 8 sources a chunk (at most 4 GiB): one source
    // at a time, a batch of 100 256^2 maps launched ~4000 ops for its statistics.
    const int64_t per_source = 10 * wt.size(0) * wt.size(-2) * wt.size(-1) * wt.element_size();
    const int64_t one_chunk = per_source * tables.plan->n_sources();
    const int64_t cap =
        std::max<int64_t>(int64_t{256} << 20, std::min<int64_t>(8 * per_source, int64_t{4} << 30));
    const int64_t work =
        std::min<int64_t>(budget(), one_chunk <= (int64_t{768} << 20) ? one_chunk : cap);
    const detail::DcMode mode = ref.defined()           ? detail::DcMode::Reference
                                : norm == WphNorm::None ? detail::DcMode::Own
                                                        : detail::DcMode::OwnConstant;
    const detail::SpectralResult r =
        detail::spectral_wph(xhat, wt, tables.plan, mode, ref.field_mean, work, o_.progress);
    // Deviations divide the covariances (the reference's, or the field's own held constant).
    Stats used;
    at::Tensor scale;
    if (ref.defined()) {
      scale = ref.field_std;
    } else if (norm == WphNorm::Auto) {
      const at::Tensor sd = at::sqrt(r.power);
      scale = at::where(sd == 0, at::ones_like(sd), sd).to(r.mean.scalar_type());
      used.field_mean = r.mean, used.field_std = scale;
    }
    at::Tensor values = r.values;
    if (scale.defined())
      values = values / (scale.index_select(1, tables.fa) * scale.index_select(1, tables.fb));
    sink(values, tables.rows);
    return used;
  }

  /// The fields [x*psi]^p (conjugated copies for pseudo moments): (B, n_fields, h, w) complex.
  at::Tensor build_fields(const Fields& f) const {
    std::vector<at::Tensor> parts;
    if (p_.field_psi_p1.numel()) parts.push_back(f.wt.index_select(1, p_.field_psi_p1));
    if (p_.field_psi_p0.numel())
      parts.push_back(f.wt_mod.index_select(1, p_.field_psi_p0).to(f.wt.scalar_type()));
    if (p_.field_psi_ph.numel()) { // |z| e^{i p arg z}
      const at::Tensor z = f.wt.index_select(1, p_.field_psi_ph);
      parts.push_back(
          at::polar(f.wt_mod.index_select(1, p_.field_psi_ph), at::angle(z) * p_.field_exp_ph));
    }
    at::Tensor fields = at::cat(parts, 1); // (B, n_base, h, w)
    if (p_.field_conj_src.numel())
      fields = at::cat({fields, fields.index_select(1, p_.field_conj_src).conj()}, 1);
    return fields;
  }

  /// Non-periodic maps: covariances of the fields in pixel space (shifts through their spectra).
  /// cut_graph: sinks backpropagate chunk by chunk into detached copies of the shared tensors,
  /// which then backpropagate once each (instead of once per chunk).
  Stats compute_spatial(const Fields& f, WphNorm norm, const Stats& ref, const Sink& sink,
                        bool cut_graph) const {
    const int64_t B = f.wt.size(0), h = f.wt.size(-2), w = f.wt.size(-1);
    const double norm_mn = static_cast<double>(p_.height * p_.width);
    const int64_t item = f.wt.element_size();
    // Normalised fields: (F - m) / s with m, s the field's own (None: m only, kept in the graph;
    // Auto: held constant) or the reference's statistics.
    const at::Tensor fields = build_fields(f); // (B, n_fields, h, w) complex
    const auto [normed_full, mean, scale] =
        standardise(fields, norm, ref.defined() ? pixels_axes(ref.field_mean) : at::Tensor(),
                    ref.defined() ? pixels_axes(ref.field_std) : at::Tensor());
    Stats used;
    if (!ref.defined() && scale.defined())
      used.field_mean = drop_pixel_axes(mean), used.field_std = drop_pixel_axes(scale);
    const at::Tensor normed = cut_graph ? normed_full.detach().requires_grad_(true) : normed_full;

    for (const WphPlan::Group& g : p_.groups) {
      if (!g.shifted) {
        // tau = 0: every needed sum of a conj(b) is an entry of the Gram matrix of the two sides.
        const int64_t na = g.fields_a.numel(), nb = g.fields_b.numel();
        const at::Tensor fa = normed.index_select(1, g.fields_a).reshape({B, na, h * w});
        const at::Tensor fb = normed.index_select(1, g.fields_b).reshape({B, nb, h * w});
        const at::Tensor gram = at::matmul(fa, fb.conj().transpose(1, 2)); // (B, na, nb)
        const at::Tensor lin = g.fa * nb + g.fb;
        const at::Tensor cov =
            gram.reshape({B, -1}).index_select(1, lin).index_select(1, g.m_pos) / norm_mn;
        sink(cov * g.m_weight, g.m_row);
        continue;
      }
      // Shifts: cross-correlations through the fields' Fourier transforms, once per field.
      const at::Tensor gf = normed.index_select(1, g.fields); // (B, n_group_fields, h, w)
      const at::Tensor spectra_full =
          at::fft_fft2(at::constant_pad_nd(gf, {0, p_.pad_x, 0, p_.pad_y}));
      const at::Tensor spectra =
          cut_graph ? spectra_full.detach().requires_grad_(true) : spectra_full;
      const int64_t hh = spectra.size(-2), ww = spectra.size(-1);
      const int64_t chunk =
          std::max<int64_t>(1, budget() / std::max<int64_t>(1, 3 * B * hh * ww * item));
      for (int64_t start = 0; start < g.n_cov; start += chunk) {
        const int64_t P = std::min(g.n_cov, start + chunk) - start;
        const at::Tensor cross =
            at::fft_ifft2(spectra.index_select(1, g.fa.narrow(0, start, P)) *
                          spectra.index_select(1, g.fb.narrow(0, start, P)).conj());
        const int64_t m0 = g.first_moment[start], nm = g.first_moment[start + P] - m0;
        const at::Tensor lin =
            ((g.m_pos.narrow(0, m0, nm) - start) * hh + g.m_y.narrow(0, m0, nm)) * ww +
            g.m_x.narrow(0, m0, nm);
        const at::Tensor cov = cross.reshape({B, -1}).index_select(1, lin) / norm_mn;
        sink(cov * g.m_weight.narrow(0, m0, nm), g.m_row.narrow(0, m0, nm));
      }
      if (cut_graph && spectra.grad().defined()) spectra_full.backward(spectra.grad());
    }
    if (cut_graph && normed.grad().defined()) normed_full.backward(normed.grad());
    return used;
  }

  /// Scaling moments: covariances of low-pass fields at tau = 0, averaged over the valid region;
  /// each side is |low| or low (p = 0 or 1), side b conjugated for pseudo moments. Returns the
  /// statistics used, (B, n_sm, side, [mean, std]).
  at::Tensor compute_scaling(const at::Tensor& low_a, const at::Tensor& low_b, WphNorm norm,
                             const at::Tensor& ref_sm /* (B0, n_sm, 2, 2) or undefined */,
                             const Sink& sink) const {
    auto sides = [](const at::Tensor& low) {
      return at::cat({low.abs().to(low.scalar_type()), low}, 1);
    };
    const at::Tensor a = sides(low_a).index_select(1, p_.sm_a); // (B, n_sm, h, w)
    at::Tensor b = sides(low_b).index_select(1, p_.sm_b);
    b = at::where(p_.sm_pseudo, b.conj(), b);
    auto ref = [&](int side, int what) { // reference statistics (B0, n_sm, 1, 1)
      return ref_sm.defined() ? pixels_axes(ref_sm.select(2, side).select(2, what)) : at::Tensor();
    };
    const auto [na, m1, s1] = standardise(a, norm, ref(0, 0), ref(0, 1));
    const auto [nb, m2, s2] = standardise(b, norm, ref(1, 0), ref(1, 1));
    sink((na * nb.conj()).mean({-2, -1}), p_.sm_rows);
    if (!s1.defined()) return {};
    return at::stack({at::stack({m1, s1}, -1), at::stack({m2, s2}, -1)}, -2)
        .reshape({m1.size(0), m1.size(1), 2, 2});
  }

  int64_t budget() const {
    return o_.memory_bytes > 0 ? o_.memory_bytes : context_.free_memory_bytes() / 5 * 2;
  }

  /// Maps per slice of a batch, from the budget.
  int64_t batch_slice(int64_t batch) const {
    const int64_t item = static_cast<int64_t>(c10::elementSize(context_.complex_dtype()));
    // What one map keeps alive with its graph: the wavelet transform, the fields or their spectra
    // and their gradients (spectral path), or the fields and their copies (spatial path).
    const int64_t per_map =
        (3 * p_.psi.size(0) + 3 * p_.n_fields) * p_.field_height() * p_.field_width() * item;
    return std::clamp<int64_t>(budget() / std::max<int64_t>(1, per_map), 1, batch);
  }

  /// Chunks of shifted covariances for `batch` maps (spatial path).
  int64_t shifted_chunks(int64_t batch) const {
    for (const WphPlan::Group& g : p_.groups) {
      if (!g.shifted) continue;
      const int64_t hh = p_.field_height(), ww = p_.field_width();
      const int64_t item = static_cast<int64_t>(c10::elementSize(context_.complex_dtype()));
      const int64_t chunk =
          std::max<int64_t>(1, budget() / std::max<int64_t>(1, 3 * batch * hh * ww * item));
      return (g.n_cov + chunk - 1) / chunk;
    }
    return 0;
  }

  /// body(maps of the slice, their reference statistics, index of the slice's first map).
  template <typename Body>
  void for_each_slice(const at::Tensor& xc, const Stats& ref, const Body& body) const {
    const int64_t B = xc.size(0), step = batch_slice(B);
    for (int64_t b0 = 0; b0 < B; b0 += step) {
      const int64_t n = std::min(step, B - b0);
      body(xc.narrow(0, b0, n), ref.defined() ? ref.narrow(b0, n) : Stats{}, b0);
    }
  }

private:
  const WphPlan& p_;
  const WphOptions& o_;
  const Context& context_;
};

Coefficients with_values(const Coefficients& labels, const std::vector<at::Tensor>& slices) {
  Coefficients out = labels;
  out.values = slices.size() == 1 ? slices[0] : at::cat(slices, 0);
  return out;
}

} // namespace

WphOperator::WphOperator(const WphOptions& options, const Grid2d& grid, const Context& context)
    : Statistic(grid, context), options_(options),
      plan_(detail::make_wph_plan(options, grid, context)) {}

const Coefficients& WphOperator::labels() const { return plan_->labels; }

bool WphOperator::supports_cross() const { return plan_->cross.plan != nullptr; }

std::vector<StatisticKeyword> WphOperator::keywords() const {
  return {{"J", "J", static_cast<long long>(options_.J), "number of dyadic scales"},
          {"L", "L", static_cast<long long>(options_.L), "number of orientations in [0, pi)"},
          {"DN", "dn", static_cast<long long>(options_.dn), "radial shift steps"},
          {"NORM", "norm", std::string(options_.norm == WphNorm::Auto ? "auto" : "none"),
           "normalisation: none or auto"},
          {"BOUNDARY", "boundary", std::string(boundary_name(std::get<Grid2d>(grid()).boundary)),
           "boundary conditions"}};
}

Reference WphOperator::reference(const at::Tensor& maps) const {
  if (options_.norm != WphNorm::Auto) return {};
  c10::AutoGradMode no_grad(false);
  const Execution e(*plan_, options_, context());
  const Stats s =
      e.compute(e.transform(e.prepare(maps)), {}, [](const at::Tensor&, const at::Tensor&) {});
  return Reference("wph", {{"field_mean", s.field_mean.detach()},
                           {"field_std", s.field_std.detach()},
                           {"scaling", s.sm.detach()}});
}

Coefficients WphOperator::forward(const at::Tensor& x, const Reference& ref) const {
  const Execution e(*plan_, options_, context());
  const at::Tensor xc = e.prepare(x);
  std::vector<at::Tensor> slices;
  e.for_each_slice(
      xc, e.reference_stats(ref, xc.size(0)), [&](const at::Tensor& xs, const Stats& rs, int64_t) {
        std::vector<at::Tensor> values; // chunks in a fixed order: row_order sorts
        e.compute(e.transform(xs), rs,
                  [&](const at::Tensor& v, const at::Tensor&) { values.push_back(v); });
        slices.push_back(at::cat(values, 1).index_select(1, plan_->row_order));
      });
  return with_values(plan_->labels, slices);
}

Coefficients WphOperator::forward_cross(const at::Tensor& x, const at::Tensor& y,
                                        const Reference& ref) const {
  if (!supports_cross())
    throw ValueError("WPH: cross statistics are implemented for periodic maps only (a "
                     "Boundary::Periodic grid)");
  if (options_.norm == WphNorm::Auto && !ref.empty())
    throw ValueError("WPH: cross statistics normalise each map by its own statistics; pass no "
                     "reference to forward_cross()");
  const Execution e(*plan_, options_, context());
  const at::Tensor xc = e.prepare(x), yc = e.prepare(y);
  if (xc.size(0) != yc.size(0))
    throw ShapeError("WPH: cross statistics need as many maps on each side, got " +
                     std::to_string(xc.size(0)) + " and " + std::to_string(yc.size(0)));
  const int64_t B = xc.size(0), step = std::max<int64_t>(1, e.batch_slice(B) / 2);
  std::vector<at::Tensor> slices;
  for (int64_t b0 = 0; b0 < B; b0 += step) {
    const int64_t n = std::min(step, B - b0);
    const Fields fx = e.transform(xc.narrow(0, b0, n)), fy = e.transform(yc.narrow(0, b0, n));
    std::vector<at::Tensor> values; // chunks arrive in a fixed order: row_order sorts them
    const Sink sink = [&](const at::Tensor& v, const at::Tensor&) { values.push_back(v); };
    e.compute_spectral(plan_->cross, at::stack({fx.xhat, fy.xhat}, 1), at::cat({fx.wt, fy.wt}, 1),
                       options_.norm, {}, sink);
    e.compute_scaling(fx.lowpass, fy.lowpass, options_.norm, {}, sink);
    slices.push_back(at::cat(values, 1).index_select(1, plan_->row_order));
  }
  return with_values(plan_->labels, slices);
}

LossResult WphOperator::loss_and_grad(const at::Tensor& x, const CoefficientLoss& loss,
                                      const Reference& ref, bool want_grad) const {
  c10::AutoGradMode grad_mode(want_grad);
  const Execution e(*plan_, options_, context());
  const at::Tensor leaf = x.detach().requires_grad_(want_grad);
  const at::Tensor xc = e.prepare(leaf);
  const auto real = at::TensorOptions().dtype(context().real_dtype()).device(xc.device());
  std::vector<at::Tensor> losses; // (b) per slice
  e.for_each_slice(
      xc, e.reference_stats(ref, xc.size(0)),
      [&](const at::Tensor& xs, const Stats& rs, int64_t b0) {
        const Fields f = e.transform(xs);
        at::Tensor slice_loss = at::zeros({xs.size(0)}, real);
        if (!want_grad || plan_->spectral.plan || e.shifted_chunks(xs.size(0)) <= 1) {
          // Everything in one graph (the spectral path chunks internally), one backward pass:
          // fewer, larger kernels.
          e.compute(f, rs, [&](const at::Tensor& v, const at::Tensor& rows) {
            slice_loss = slice_loss + loss.chunk(v, rows, b0);
          });
          if (want_grad) slice_loss.sum().backward();
        } else {
          // Chunks backpropagate into detached copies of the shared tensors one at a time, so that
          // the graph of only one chunk is alive; those copies then backpropagate to x once each.
          const Fields cut{f.xhat.detach(), f.wt.detach().requires_grad_(true),
                           f.wt_mod.detach().requires_grad_(true),
                           f.lowpass.detach().requires_grad_(true)};
          e.compute(
              cut, rs,
              [&](const at::Tensor& v, const at::Tensor& rows) {
                const at::Tensor l = loss.chunk(v, rows, b0);
                l.sum().backward();
                slice_loss = slice_loss + l.detach();
              },
              /*cut_graph=*/true);
          std::vector<at::Tensor> outs, grads;
          for (const auto& [o, c] :
               {std::pair{f.wt, cut.wt}, {f.wt_mod, cut.wt_mod}, {f.lowpass, cut.lowpass}})
            if (c.grad().defined()) outs.push_back(o), grads.push_back(c.grad());
          if (!outs.empty()) torch::autograd::backward(outs, grads);
        }
        losses.push_back(slice_loss.detach());
      });
  LossResult r;
  r.loss = losses.size() == 1 ? losses[0] : at::cat(losses);
  if (want_grad) r.grad = leaf.grad().defined() ? leaf.grad() : at::zeros_like(leaf);
  return r;
}

Coefficients wph(const at::Tensor& x, const WphOptions& options, const Context& context) {
  return WphOperator(options, Grid2d{x.size(-2), x.size(-1)}, context).forward(x);
}

} // namespace demix

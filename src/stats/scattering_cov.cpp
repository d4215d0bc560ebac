#include <demix/core/errors.hpp>
#include <demix/stats/morlet.hpp>
#include <demix/stats/scattering_cov.hpp>

#include "stats/detail/map_batch.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace demix {

struct ScatteringCovOperator::Compact {
  at::Tensor mean, var; // (B,) real
  at::Tensor P00, S1;   // (B, J, L) real
  at::Tensor C01;       // (B, K2) complex, normalised, canonical order (j1, j2, l1, l2)
  at::Tensor C11_pre;   // (B, K3) complex, canonical order (j1, j2, j3, l1, l2, l3)
  at::Tensor C11;       // (B, K3) complex, normalised
  at::Tensor P11;       // (B, K2) real, canonical order (j1, j2, l1, l2)
};

namespace {

// Frequency indices kept on an axis of `size` for scale j: Cheng's cut_high_k_off.
std::vector<int64_t> kept_frequencies(int64_t size, int j, ScovFrequencySum sum) {
  std::vector<int64_t> idx;
  if (sum == ScovFrequencySum::Full) {
    for (int64_t k = 0; k < size; ++k) idx.push_back(k);
    return idx;
  }
  const int64_t scale = int64_t{1} << j;
  const int64_t d =
      std::min(std::max<int64_t>(8, std::min((size + scale - 1) / scale, size / 2)), size / 2);
  const int64_t odd = size % 2;
  for (int64_t k = 0; k < d + odd; ++k) idx.push_back(k);
  for (int64_t k = size - d; k < size; ++k) idx.push_back(k);
  return idx;
}

at::Tensor long_tensor(const std::vector<int64_t>& v, c10::Device device) {
  return at::tensor(v, at::kLong).to(device);
}

at::Tensor label_rows(const std::vector<int64_t>& v) { // (K, 6) int64 CPU
  return at::tensor(v, at::kLong).view({-1, 6});
}

/// Scatters (B, K) values to the positions given by label columns `columns` (of extents
/// `extents`) in a NaN-filled (B, extents...) array.
at::Tensor scatter_by_labels(const at::Tensor& v, const at::Tensor& labels,
                             const std::vector<int>& columns, const std::vector<int64_t>& extents) {
  at::Tensor flat = at::zeros({labels.size(0)}, at::kLong);
  int64_t total = 1;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    flat = flat * extents[i] + labels.select(1, columns[i]);
    total *= extents[i];
  }
  std::vector<int64_t> shape{v.size(0)};
  shape.insert(shape.end(), extents.begin(), extents.end());
  return at::full({v.size(0), total}, std::nan(""), v.options())
      .index_copy(1, flat.to(v.device()), v)
      .view(shape);
}

} // namespace

ScatteringCovOperator::ScatteringCovOperator(const ScatteringCovOptions& options,
                                             const Grid2d& grid, const Context& context)
    : Statistic(grid, context), options_(options), tensor_options_(context.options()) {
  const int J = options.J, L = options.L;
  const int64_t height = grid.height, width = grid.width;
  if (grid.boundary != Boundary::Periodic)
    throw ValueError("scattering covariance: periodic maps only (as Cheng et al.'s code); a "
                     "non-periodic grid is not supported");
  if (J < 1 || J > 30)
    throw ValueError("scattering covariance: J must be >= 1, got " + std::to_string(J));
  if (L < 1) throw ValueError("scattering covariance: L must be >= 1, got " + std::to_string(L));
  if ((int64_t{1} << J) > std::min(height, width))
    throw ValueError("scattering covariance: 2^J = " + std::to_string(int64_t{1} << J) +
                     " must be <= min(H, W) for a " + std::to_string(height) + " x " +
                     std::to_string(width) + " image");
  const c10::Device device = context.device();
  const at::ScalarType real = context.real_dtype(), cplx = context.complex_dtype();

  // With ScovFilterRounding::Float32 the filters are stored in float32 and squared in float32, as
  // Cheng's code does with its single-precision bank; everything else runs in the context's dtype.
  const MorletOptions morlet{.J = J, .L = L, .variant = MorletVariant::Cheng};
  const bool f32 = options.filter_rounding == ScovFilterRounding::Float32;
  const at::Tensor stored = morlet_filter_bank(morlet, height, width, f32 ? at::kFloat : real,
                                               device)
                                .psi; // (J, L, H, W)
  psi_ = stored.to(real);
  for (int j = 0; j < J; ++j) {
    Scale s;
    s.rows = long_tensor(kept_frequencies(height, j, options.frequency_sum), device);
    s.cols = long_tensor(kept_frequencies(width, j, options.frequency_sum), device);
    const at::Tensor cut =
        stored[j].index_select(1, s.rows).index_select(2, s.cols).reshape({L, -1});
    s.psi = cut.to(cplx);
    s.psi2 = (cut * cut).to(cplx);
    // P11 as C11's diagonal (psi2's rounding) and as Cheng's C01 normalisation computes it without
    // a reference (psi_hat rounded, then squared in the working precision).
    s.psi2_sq = at::cat({(cut * cut).to(real), cut.to(real).square()});
    scales_.push_back(s);
  }

  // Canonical orders and the gather tables from the per-scale blocks. The block of the outer
  // scale j holds, for C01, entries [(j1 L + l1), l2] of shape (n, L) with n = (j + 1) L, and for
  // C11 entries [(j1 L + l1), (j2 L + l2), l3] of shape (n, n, L); blocks are concatenated in j.
  std::vector<int64_t> off01(J), off11(J);
  for (int64_t j = 0, o1 = 0, o2 = 0; j < J; ++j) {
    const int64_t n = (j + 1) * L;
    off01[j] = o1;
    off11[j] = o2;
    o1 += n * L;
    o2 += n * n * L;
  }
  std::vector<int64_t> g01, a01, b01, lab01, g11, a11, b11, lab11;
  std::vector<int64_t> iso01, iso11, labiso01, labiso11, p11a, p11b, nontrivial, iso_nontrivial;
  std::vector<int64_t> pair_index(J * J, -1), triple_index(J * J * J, -1);
  int64_t pairs = 0, triples = 0;
  for (int j1 = 0; j1 < J; ++j1)
    for (int j2 = j1; j2 < J; ++j2) {
      pair_index[j1 * J + j2] = pairs++;
      for (int l1 = 0; l1 < L; ++l1)
        for (int l2 = 0; l2 < L; ++l2) {
          g01.push_back(off01[j2] + (j1 * L + l1) * L + l2);
          a01.push_back(j1 * L + l1);
          b01.push_back(j2 * L + l2);
          lab01.insert(lab01.end(), {j1, j2, -1, l1, l2, -1});
        }
      for (int dl = 0; dl < L; ++dl) {
        labiso01.insert(labiso01.end(), {j1, j2, -1, -1, dl, -1});
        for (int l1 = 0; l1 < L; ++l1)
          iso01.push_back(pair_index[j1 * J + j2] * L * L + l1 * L + (l1 + dl) % L);
      }
    }
  for (int j1 = 0; j1 < J; ++j1)
    for (int j2 = j1; j2 < J; ++j2)
      for (int j3 = j2; j3 < J; ++j3) {
        const int64_t n = (j3 + 1) * L, q = triples++;
        for (int l1 = 0; l1 < L; ++l1)
          for (int l2 = 0; l2 < L; ++l2)
            for (int l3 = 0; l3 < L; ++l3) {
              if (j1 != j2 || l1 != l2) nontrivial.push_back(static_cast<int64_t>(a11.size()));
              g11.push_back(off11[j3] + ((j1 * L + l1) * n + (j2 * L + l2)) * L + l3);
              a11.push_back(j1 * L + l1);
              b11.push_back(j2 * L + l2);
              p11a.push_back(pair_index[j1 * J + j3] * L * L + l1 * L + l3);
              p11b.push_back(pair_index[j2 * J + j3] * L * L + l2 * L + l3);
              lab11.insert(lab11.end(), {j1, j2, j3, l1, l2, l3});
            }
        for (int d2 = 0; d2 < L; ++d2)
          for (int d3 = 0; d3 < L; ++d3) {
            if (j1 != j2 || d2 != 0)
              iso_nontrivial.push_back(static_cast<int64_t>(labiso11.size() / 6));
            labiso11.insert(labiso11.end(), {j1, j2, j3, -1, d2, d3});
            for (int l1 = 0; l1 < L; ++l1)
              iso11.push_back(q * L * L * L + l1 * L * L + ((l1 + d2) % L) * L + (l1 + d3) % L);
          }
      }
  c01_gather_ = long_tensor(g01, device);
  c01_norm_a_ = long_tensor(a01, device);
  c01_norm_b_ = long_tensor(b01, device);
  c11_gather_ = long_tensor(g11, device);
  c11_norm_a_ = long_tensor(a11, device);
  c11_norm_b_ = long_tensor(b11, device);
  c11_p11_a_ = long_tensor(p11a, device);
  c11_p11_b_ = long_tensor(p11b, device);
  c11_nontrivial_ = long_tensor(nontrivial, device);
  c11_iso_nontrivial_ = long_tensor(iso_nontrivial, device);
  c01_iso_ = long_tensor(iso01, device).view({-1, L});
  c11_iso_ = long_tensor(iso11, device).view({-1, L});
  c01_labels_ = label_rows(lab01);
  c11_labels_ = label_rows(lab11);
  c01_iso_labels_ = label_rows(labiso01);
  c11_iso_labels_ = label_rows(labiso11);
  c11_nontrivial_labels_ = c11_labels_.index_select(0, at::tensor(nontrivial, at::kLong));
  c11_iso_nontrivial_labels_ =
      c11_iso_labels_.index_select(0, at::tensor(iso_nontrivial, at::kLong));
  // Flat (j1, j2, l1, l2) position of each canonical pair: P11 of a reference to compact form.
  const at::Tensor l01 = c01_labels_;
  c01_flat_ =
      (((l01.select(1, 0) * J + l01.select(1, 1)) * L + l01.select(1, 3)) * L + l01.select(1, 4))
          .to(device);

  // The labels, from an all-zero statistics record (no map is transformed).
  const auto zeros = [&](std::vector<int64_t> shape, bool complex_valued) {
    return at::zeros(shape, tensor_options_.dtype(complex_valued ? cplx_type() : real));
  };
  Compact z;
  z.mean = zeros({1}, false), z.var = zeros({1}, false);
  z.P00 = zeros({1, J, L}, false), z.S1 = zeros({1, J, L}, false);
  z.C01 = zeros({1, c01_gather_.numel()}, true);
  z.C11_pre = z.C11 = zeros({1, c11_gather_.numel()}, true);
  z.P11 = zeros({1, c01_gather_.numel()}, false);
  labels_ = assemble(z, options.coefficients == ScovCoefficients::All);
  labels_.values = at::Tensor();
}

at::ScalarType ScatteringCovOperator::cplx_type() const {
  return c10::toComplexType(tensor_options_.dtype().toScalarType());
}

std::vector<StatisticKeyword> ScatteringCovOperator::keywords() const {
  const char* norm = options_.normalization == ScovNormalization::P00    ? "auto"
                     : options_.normalization == ScovNormalization::None ? "none"
                                                                         : "p11";
  std::vector<StatisticKeyword> k{
      {"J", "J", static_cast<long long>(options_.J), "number of dyadic scales"},
      {"L", "L", static_cast<long long>(options_.L), "number of orientations in [0, pi)"},
      {"NORM", "norm", std::string(norm), "normalisation: none, auto (P00) or p11"},
      {"BOUNDARY", "boundary", std::string("periodic"), "boundary conditions"}};
  if (options_.coefficients == ScovCoefficients::Isotropic)
    k.push_back({"ISO", "iso", std::string("true"), "isotropic coefficients only"});
  return k;
}

at::Tensor ScatteringCovOperator::check_input(const at::Tensor& x) const {
  const at::Tensor y = detail::map_batch(x, plane().height, plane().width, "scattering covariance");
  if (x.is_complex() || !at::isFloatingType(x.scalar_type()))
    throw ValueError(
        std::string("scattering covariance: the input must be real floating point, got ") +
        c10::toString(x.scalar_type()));
  return y.to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
}

Reference ScatteringCovOperator::reference(const at::Tensor& maps) const {
  if (options_.normalization == ScovNormalization::None) return {};
  const at::Tensor x = check_input(maps).detach(); // (B_ref, H, W)
  const at::Tensor I1 = at::abs(at::fft_ifft2(at::fft_fft2(x).unsqueeze(1).unsqueeze(1) * psi_));
  std::vector<std::pair<std::string, at::Tensor>> t{{"P00", (I1 * I1).mean({-2, -1})}};
  if (options_.normalization == ScovNormalization::P11) { // as Cheng's add_ref: C11's diagonal
    at::Tensor compact;
    p11(at::fft_fft2(I1).flatten(1, 2), &compact, nullptr);
    t.emplace_back("P11", scatter_pairs(compact));
  }
  return Reference("scov", std::move(t));
}

void ScatteringCovOperator::p11(const at::Tensor& I1_hat, at::Tensor* as_c11,
                                at::Tensor* squared) const {
  const int J = options_.J, L = options_.L;
  const int64_t B = I1_hat.size(0);
  std::vector<at::Tensor> a, b;
  for (int j = 0; j < J; ++j) {
    const Scale& s = scales_[j];
    const at::Tensor Ic = I1_hat.narrow(1, 0, (j + 1) * L)
                              .index_select(-2, s.rows)
                              .index_select(-1, s.cols)
                              .flatten(-2);               // (B, n, P)
    const at::Tensor power = at::real(Ic * at::conj(Ic)); // |I1_hat|^2, smooth at 0
    // [(j1, l1), as C11 / squared, l2]
    const at::Tensor block = at::matmul(power, s.psi2_sq.t()).view({B, -1, 2, L});
    a.push_back(block.select(2, 0).flatten(1));
    b.push_back(block.select(2, 1).flatten(1));
  }
  const double scale =
      1.0 / (static_cast<double>(plane().pixels()) * static_cast<double>(plane().pixels()));
  if (as_c11) *as_c11 = at::cat(a, 1).index_select(1, c01_gather_) * scale;
  if (squared) *squared = at::cat(b, 1).index_select(1, c01_gather_) * scale;
}

ScatteringCovOperator::Compact ScatteringCovOperator::compute(const at::Tensor& x_in,
                                                              const Reference& ref) const {
  const int J = options_.J, L = options_.L;
  const at::Tensor x = check_input(x_in); // (B, H, W)
  const int64_t B = x.size(0);
  ref.check("scov", B, "scattering covariance");
  const bool has_reference = !ref.empty() && options_.normalization != ScovNormalization::None;
  const double MN = static_cast<double>(plane().pixels());

  Compact c;
  c.mean = x.mean({-2, -1});
  c.var = x.var({-2, -1}, /*unbiased=*/true);
  const at::Tensor x_hat = at::fft_fft2(x); // (B, H, W)
  const at::Tensor I1 =
      at::abs(at::fft_ifft2(x_hat.unsqueeze(1).unsqueeze(1) * psi_)); // (B, J, L, H, W)
  c.P00 = (I1 * I1).mean({-2, -1});                                   // (B, J, L)
  c.S1 = I1.mean({-2, -1});                                           // (B, J, L)
  const at::Tensor I1_hat =
      at::fft_fft2(I1).view({B, J * L, plane().height, plane().width}); // (B, J L, H, W)
  const bool by_p11 = options_.normalization == ScovNormalization::P11;
  at::Tensor P11_c01; // Cheng's C01 normalisation without a reference
  p11(I1_hat, &c.P11, by_p11 && !has_reference ? &P11_c01 : nullptr);
  if (options_.progress) options_.progress(1, J + 1);

  std::vector<at::Tensor> blocks01, blocks11;
  for (int j = 0; j < J; ++j) {
    const Scale& s = scales_[j];
    const int64_t n = (j + 1) * L;
    const auto cut = [&](const at::Tensor& t) {
      return t.index_select(-2, s.rows).index_select(-1, s.cols).flatten(-2);
    };
    const at::Tensor xc = cut(x_hat);                  // (B, P)
    const at::Tensor Ic = cut(I1_hat.narrow(1, 0, n)); // (B, n, P)
    const at::Tensor Ic_conj = at::conj(Ic);
    // C01 block [(j1, l1), l2] = sum_k x_hat conj(I1_hat[j1,l1]) psi_hat[j,l2]
    blocks01.push_back(at::matmul(xc.unsqueeze(1) * Ic_conj, s.psi.t()).flatten(1)); // (B, n L)
    // C11 block [(j1, l1), (j2, l2), l3] = sum_k I1_hat[j1,l1] conj(I1_hat[j2,l2]) psi_hat[j,l3]^2
    const at::Tensor Z = (Ic_conj.unsqueeze(2) * s.psi2.unsqueeze(0).unsqueeze(0)).flatten(1, 2);
    blocks11.push_back(at::matmul(Ic, Z.transpose(-1, -2)).flatten(1)); // (B, n n L)
    if (options_.progress) options_.progress(j + 2, J + 1);
  }
  const double scale = 1.0 / (MN * MN);
  const at::Tensor C01 = at::cat(blocks01, 1).index_select(1, c01_gather_) * scale; // (B, K2)
  c.C11_pre = at::cat(blocks11, 1).index_select(1, c11_gather_) * scale;            // (B, K3)

  if (options_.normalization == ScovNormalization::None) {
    c.C01 = C01;
    c.C11 = c.C11_pre;
    return c;
  }
  // (B or B_ref, J L)
  const at::Tensor P =
      (has_reference ? ref.get("P00").to(x.device(), x.scalar_type()) : c.P00).flatten(1);
  if (by_p11) {
    const at::Tensor Q = // (B', K2)
        has_reference
            ? ref.get("P11").to(x.device(), x.scalar_type()).flatten(1).index_select(1, c01_flat_)
            : c.P11;
    c.C01 = C01 / at::sqrt(P.index_select(1, c01_norm_b_) * (has_reference ? Q : P11_c01));
    c.C11 = c.C11_pre / at::sqrt(Q.index_select(1, c11_p11_a_) * Q.index_select(1, c11_p11_b_));
    return c;
  }
  c.C01 = C01 / at::sqrt(P.index_select(1, c01_norm_a_) * P.index_select(1, c01_norm_b_));
  c.C11 = c.C11_pre / at::sqrt(P.index_select(1, c11_norm_a_) * P.index_select(1, c11_norm_b_));
  return c;
}

Coefficients ScatteringCovOperator::assemble(const Compact& c, bool anisotropic) const {
  const int J = options_.J, L = options_.L;
  const int64_t B = c.mean.size(0);
  const auto iso = [&](const at::Tensor& v, const at::Tensor& idx) { // (B, K) -> (B, K_iso)
    return at::real(v).index_select(1, idx.flatten()).view({B, idx.size(0), L}).mean(-1);
  };
  const at::ScalarType cplx = c.C01.scalar_type();
  std::vector<at::Tensor> values{c.mean.unsqueeze(1), c.var.unsqueeze(1)};
  std::vector<std::string> classes{"mean", "var"};
  std::vector<at::Tensor> labels{label_rows({-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1})};
  std::vector<int64_t> counts{1, 1};

  std::vector<int64_t> jl, j;
  for (int a = 0; a < J; ++a) {
    j.insert(j.end(), {a, -1, -1, -1, -1, -1});
    for (int l = 0; l < L; ++l) jl.insert(jl.end(), {a, -1, -1, l, -1, -1});
  }
  const auto add = [&](const std::string& name, const at::Tensor& v, const at::Tensor& lab) {
    values.push_back(v);
    classes.push_back(name);
    labels.push_back(lab);
    counts.push_back(v.size(1));
  };
  if (anisotropic) {
    add("P00", c.P00.flatten(1), label_rows(jl));
    add("S1", c.S1.flatten(1), label_rows(jl));
    add("C01", c.C01, c01_labels_);
    add("C11", c.C11, c11_labels_);
  }
  add("P00_iso", c.P00.mean(-1), label_rows(j));
  add("S1_iso", c.S1.mean(-1), label_rows(j));
  add("C01_iso", iso(c.C01, c01_iso_), c01_iso_labels_);
  add("C11_iso", iso(c.C11, c11_iso_), c11_iso_labels_);
  if (options_.normalization == ScovNormalization::P11) {
    if (anisotropic) add("P11", c.P11, c01_labels_);
    add("P11_iso", iso(c.P11, c01_iso_), c01_iso_labels_);
  }

  for (auto& v : values) v = v.to(cplx);
  Coefficients out;
  out.values = at::cat(values, 1); // (B, K) complex
  out.classes = classes;
  std::vector<at::Tensor> ids;
  for (std::size_t i = 0; i < counts.size(); ++i)
    ids.push_back(at::full({counts[i]}, static_cast<int64_t>(i), at::kLong));
  out.class_id = at::cat(ids);
  out.label_names = {"j1", "j2", "j3", "l1", "l2", "l3"};
  out.labels = at::cat(labels, 0);
  return out;
}

Coefficients ScatteringCovOperator::forward(const at::Tensor& x, const Reference& ref) const {
  return assemble(compute(x, ref), options_.coefficients == ScovCoefficients::All);
}

Coefficients ScatteringCovOperator::forward_iso(const at::Tensor& x, const Reference& ref) const {
  return assemble(compute(x, ref), false);
}

at::Tensor ScatteringCovOperator::scatter_pairs(const at::Tensor& v) const {
  const int64_t J = options_.J, L = options_.L;
  return scatter_by_labels(v, c01_labels_, {0, 1, 3, 4}, {J, J, L, L});
}

ScatteringCovTensors ScatteringCovOperator::forward_tensors(const at::Tensor& x,
                                                            const Reference& ref) const {
  const int64_t J = options_.J, L = options_.L;
  const Compact c = compute(x, ref);
  const int64_t B = c.mean.size(0);
  const auto iso = [&](const at::Tensor& v, const at::Tensor& idx) {
    return at::real(v).index_select(1, idx.flatten()).view({B, idx.size(0), L}).mean(-1);
  };
  const auto triples = [&](const at::Tensor& v) {
    return scatter_by_labels(v, c11_labels_, {0, 1, 2, 3, 4, 5}, {J, J, J, L, L, L});
  };
  const auto triples_iso = [&](const at::Tensor& v) {
    return scatter_by_labels(iso(v, c11_iso_), c11_iso_labels_, {0, 1, 2, 4, 5}, {J, J, J, L, L});
  };
  const auto pairs_iso = [&](const at::Tensor& v) {
    return scatter_by_labels(iso(v, c01_iso_), c01_iso_labels_, {0, 1, 4}, {J, J, L});
  };
  ScatteringCovTensors t;
  t.mean = c.mean;
  t.var = c.var;
  t.P00 = c.P00;
  t.S1 = c.S1;
  t.P00_iso = c.P00.mean(-1);
  t.S1_iso = c.S1.mean(-1);
  t.C01 = scatter_pairs(c.C01);
  t.C11 = triples(c.C11);
  t.C11_pre_norm = triples(c.C11_pre);
  t.C01_iso = pairs_iso(c.C01);
  t.C11_iso = triples_iso(c.C11);
  t.C11_pre_norm_iso = triples_iso(c.C11_pre);
  t.P11 = scatter_pairs(c.P11);
  t.P11_iso = pairs_iso(c.P11);
  return t;
}

Coefficients ScatteringCovOperator::synthesis_vector(const at::Tensor& x,
                                                     const Reference& ref) const {
  return assemble_synthesis(compute(x, ref), false);
}

Coefficients ScatteringCovOperator::synthesis_vector_iso(const at::Tensor& x,
                                                         const Reference& ref) const {
  return assemble_synthesis(compute(x, ref), true);
}

Coefficients ScatteringCovOperator::assemble_synthesis(const Compact& c, bool iso) const {
  const int J = options_.J, L = options_.L;
  const int64_t B = c.mean.size(0);
  const bool by_p11 = options_.normalization == ScovNormalization::P11;
  const auto average = [&](const at::Tensor& v, const at::Tensor& idx) {
    return at::real(v).index_select(1, idx.flatten()).view({B, idx.size(0), L}).mean(-1);
  };
  std::vector<at::Tensor> values{(c.mean / at::sqrt(c.var)).unsqueeze(1)};
  std::vector<at::Tensor> labels{label_rows({-1, -1, -1, -1, -1, -1})};
  std::vector<std::string> classes{"mean/std"};
  const auto add = [&](const std::string& name, const at::Tensor& v, const at::Tensor& lab) {
    values.push_back(v);
    labels.push_back(lab);
    classes.push_back(name);
  };
  std::vector<int64_t> jl, j;
  for (int a = 0; a < J; ++a) {
    j.insert(j.end(), {a, -1, -1, -1, -1, -1});
    for (int l = 0; l < L; ++l) jl.insert(jl.end(), {a, -1, -1, l, -1, -1});
  }
  if (!iso) {
    add("log P00", at::log(c.P00.flatten(1)), label_rows(jl));
    add("log S1", at::log(c.S1.flatten(1)), label_rows(jl));
    add("C01re", at::real(c.C01), c01_labels_);
    add("C01im", at::imag(c.C01), c01_labels_);
    const at::Tensor c11 = by_p11 ? c.C11.index_select(1, c11_nontrivial_) : c.C11;
    const at::Tensor& c11_labels = by_p11 ? c11_nontrivial_labels_ : c11_labels_;
    add("C11re", at::real(c11), c11_labels);
    add("C11im", at::imag(c11), c11_labels);
    if (by_p11) add("log P11", at::log(c.P11), c01_labels_);
  } else {
    add("log P00_iso", at::log(c.P00.mean(-1)), label_rows(j));
    add("log S1_iso", at::log(c.S1.mean(-1)), label_rows(j));
    add("C01_iso", average(c.C01, c01_iso_), c01_iso_labels_);
    const at::Tensor c11 = average(c.C11, c11_iso_);
    if (by_p11) {
      add("C11_iso", c11.index_select(1, c11_iso_nontrivial_), c11_iso_nontrivial_labels_);
      add("log P11_iso", at::log(average(c.P11, c01_iso_)), c01_iso_labels_);
    } else {
      add("C11_iso", c11, c11_iso_labels_);
    }
  }
  Coefficients out;
  std::vector<at::Tensor> ids;
  for (std::size_t i = 0; i < values.size(); ++i)
    ids.push_back(at::full({values[i].size(1)}, static_cast<int64_t>(i), at::kLong));
  out.values = at::cat(values, 1); // (B, K) real
  out.classes = classes;
  out.class_id = at::cat(ids);
  out.label_names = {"j1", "j2", "j3", "l1", "l2", "l3"};
  out.labels = at::cat(labels, 0);
  return out;
}

} // namespace demix

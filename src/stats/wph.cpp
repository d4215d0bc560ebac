#include <demix/core/errors.hpp>
#include <demix/optim/step_graph.hpp>
#include <demix/stats/filters.hpp>
#include <demix/stats/wph.hpp>

#include "stats/detail/map_batch.hpp"
#include "stats/detail/wph_spectral.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <list>
#include <map>
#include <mutex>
#include <numbers>
#include <set>
#include <tuple>

namespace demix {

namespace {

using std::numbers::pi;

const std::vector<std::string> kWphLabels{"j1", "t1", "p1", "j2", "t2", "p2", "n", "a", "pseudo"};
const std::vector<std::string> kWphClasses{"S11", "S00", "S01", "C01", "Cphase", "L"};

struct Moment {
  int cls;
  int j1, t1, p1, j2, t2, p2, n, a, pseudo;
};

/// pywph's default model, in pywph's order (classes S11, S00, S01, C01, Cphase; real or complex).
std::vector<Moment> default_moments(int J, int L, int dn, int A, bool cplx) {
  const int nt = (1 + cplx) * L, dl = L / 2;
  std::vector<Moment> m;
  // S11 and S00: lambda1 = lambda2, shifts over half of the alpha angles.
  for (int cls : {0, 1}) {
    const int p = cls == 0 ? 1 : 0;
    for (int j = 0; j < J; ++j) {
      for (int t = 0; t < nt; ++t)
        for (int n = 0; n <= dn; ++n)
          for (int a = 0; a < (n == 0 ? 1 : A); ++a) m.push_back({cls, j, t, p, j, t, p, n, a, 0});
      if (cls == 0 && cplx) // pseudo S11: Cov(x*psi_theta, conj(x*psi_{theta+pi}))
        for (int t = 0; t < L; ++t)
          for (int n = 0; n <= dn; ++n)
            for (int a = 0; a < (n == 0 ? 1 : 2 * A); ++a)
              m.push_back(
                  {0, j, t, 1, j, (t + L) % (2 * L), 1, n, n == 0 ? 0 : (a + A) % (2 * A), 1});
    }
  }
  for (int j = 0; j < J; ++j) // S01
    for (int t = 0; t < nt; ++t) m.push_back({2, j, t, 0, j, t, 1, 0, 0, 0});
  for (int j1 = 0; j1 < J; ++j1) // C01: j1 < j2, |t1 - t2| within pi/2 (and its pi-rotation)
    for (int j2 = j1 + 1; j2 < J; ++j2)
      for (int t1 = 0; t1 < nt; ++t1) {
        std::vector<int> t2s;
        for (int t2 = t1 - dl; t2 < t1 + dl; ++t2) t2s.push_back(t2);
        if (cplx)
          for (int t2 = t1 + L - dl; t2 < t1 + L + dl; ++t2) t2s.push_back(t2);
        for (int t2 : t2s) {
          if (t1 == t2) {
            for (int n = 0; n <= dn; ++n)
              for (int a = 0; a < (n == 0 ? 1 : 2 * A); ++a)
                m.push_back({3, j1, t1, 0, j2, t2, 1, n, a, 0});
          } else {
            m.push_back({3, j1, t1, 0, j2, ((t2 % nt) + nt) % nt, 1, 0, 0, 0});
          }
        }
      }
  for (int j1 = 0; j1 < J; ++j1) // Cphase: [x*psi_j1]^1 against [x*psi_j2]^(2^(j2-j1))
    for (int j2 = j1 + 1; j2 < J; ++j2)
      for (int t = 0; t < nt; ++t) {
        const int dn_eff = std::min(J - 1 - j2, dn);
        for (int n = 0; n <= dn_eff; ++n)
          for (int a = 0; a < (n == 0 ? 1 : 2 * A); ++a)
            m.push_back({4, j1, t, 1, j2, t, 1 << (j2 - j1), n, a, 0});
      }
  return m;
}

int64_t pymod(int64_t a, int64_t n) { return ((a % n) + n) % n; }

} // namespace

struct WphOperator::Fields {
  at::Tensor xhat;    // (B, H, W) complex: Fourier transform of the maps
  at::Tensor wt;      // (B, n_psi, h, w) complex: wavelet transform (cut when NonPeriodic)
  at::Tensor wt_mod;  // (B, n_psi, h, w) real: its modulus (spatial path only, else undefined)
  at::Tensor lowpass; // (B, n_phi, h, w) complex: low-pass transform minus its mean
};

WphOperator::WphOperator(const WphOptions& o, int64_t height, int64_t width, const Context& context)
    : options_(o), height_(height), width_(width), context_(context) {
  if (o.J < 1) throw ValueError("WPH: J must be >= 1, got " + std::to_string(o.J));
  if (o.L < 1) throw ValueError("WPH: L must be >= 1, got " + std::to_string(o.L));
  if (o.dn < 0) throw ValueError("WPH: dn must be >= 0, got " + std::to_string(o.dn));
  if (o.A < 1) throw ValueError("WPH: A must be >= 1, got " + std::to_string(o.A));
  if (o.memory_bytes < 0)
    throw ValueError("WPH: memory_bytes must be >= 0 (0 = automatic), got " +
                     std::to_string(o.memory_bytes));
  if (height < 8 || width < 8)
    throw ShapeError("WPH: maps must be at least 8 x 8, got " + std::to_string(height) + " x " +
                     std::to_string(width));
  if (o.J > 30 || (int64_t{1} << o.J) >= std::min(height, width))
    throw ValueError("WPH: J = " + std::to_string(o.J) + " is too large for a " +
                     std::to_string(height) + " x " + std::to_string(width) +
                     " map; the largest wavelet needs 2^J < min(H, W)");
  const int64_t M = height, N = width;
  int64_t Mc = M, Nc = N;
  if (o.boundary == WphBoundary::NonPeriodic) {
    cut_y_ = cut_x_ = static_cast<int64_t>(o.cut_param * std::pow(2.0, o.J));
    if (2 * cut_y_ >= M || 2 * cut_x_ >= N || cut_y_ < 0)
      throw ValueError("WPH: non-periodic cut of " + std::to_string(cut_y_) +
                       " pixels per side leaves nothing of a " + std::to_string(M) + " x " +
                       std::to_string(N) + " map; lower cut_param or J");
    Mc = M - 2 * cut_y_;
    Nc = N - 2 * cut_x_;
  }
  const int nt = (1 + o.complex_data) * o.L;
  psi_ = bump_steerable_bank(M, N, o.J, o.L, nt, context.options());

  // Moments, grouped into covariances (consecutive moments sharing the pair of fields).
  const std::vector<Moment> moments = default_moments(o.J, o.L, o.dn, o.A, o.complex_data);
  std::vector<int64_t> tx(moments.size()), ty(moments.size());
  for (std::size_t i = 0; i < moments.size(); ++i) {
    const Moment& m = moments[i];
    const double theta = m.t2 * pi / o.L, alpha = m.a * pi / o.A;
    const double r = m.n != 0 ? std::pow(2.0, m.n) : 0.0;
    tx[i] = pymod(static_cast<int64_t>(std::nearbyint(r * std::cos(theta - alpha))), N);
    ty[i] = pymod(static_cast<int64_t>(std::nearbyint(r * std::sin(theta - alpha))), M);
  }
  if (o.boundary == WphBoundary::NonPeriodic) { // pywph pads by the largest shift index
    pad_x_ = *std::max_element(tx.begin(), tx.end());
    pad_y_ = *std::max_element(ty.begin(), ty.end());
  }
  std::vector<int64_t> label_rows;
  std::vector<int64_t> class_ids;
  for (std::size_t i = 0; i < moments.size(); ++i) {
    const Moment& m = moments[i];
    const int psi1 = m.j1 * nt + m.t1, psi2 = m.j2 * nt + m.t2;
    if (covariances_.empty() || i == 0 || moments[i - 1].j1 != m.j1 || moments[i - 1].t1 != m.t1 ||
        moments[i - 1].p1 != m.p1 || moments[i - 1].j2 != m.j2 || moments[i - 1].t2 != m.t2 ||
        moments[i - 1].p2 != m.p2 || moments[i - 1].pseudo != m.pseudo)
      covariances_.push_back({psi1, m.p1, psi2, m.p2, m.pseudo, {}, {}, {}, {}});
    Covariance& c = covariances_.back();
    c.moments.push_back(static_cast<int64_t>(i));
    c.tx.push_back(tx[i]);
    c.ty.push_back(ty[i]);
    double weight = 1.0;
    if (o.boundary == WphBoundary::NonPeriodic) {
      // 1 / (overlap of the valid region with its shift) * (M N), as pywph's weight map on a
      // (2 Mc, 2 Nc) grid; pywph keeps it in float32, and so must we to reproduce it.
      if (ty[i] >= 2 * Mc || tx[i] >= 2 * Nc)
        throw ValueError("WPH: shift outside the non-periodic weight map; lower dn or J");
      const double overlap = static_cast<double>(std::abs(Mc - ty[i]) * std::abs(Nc - tx[i]));
      weight =
          static_cast<double>(static_cast<float>(1.0 / (overlap / static_cast<double>(M * N))));
    }
    c.weight.push_back(weight);
    label_rows.insert(label_rows.end(), {m.j1, m.t1, m.p1, m.j2, m.t2, m.p2, m.n, m.a, m.pseudo});
    class_ids.push_back(m.cls);
  }

  // Scaling moments: low-pass scales -1 .. J/4, (p1, p2) in {(0,0), (0,1), (1,1)} (+ pseudo).
  std::vector<int> js;
  for (int j = -1; j <= o.J / 4; ++j) js.push_back(j);
  phi_ = gaussian_lowpass_bank(M, N, js, context.options());
  int64_t row = static_cast<int64_t>(moments.size());
  for (std::size_t k = 0; k < js.size(); ++k)
    for (auto [p1, p2] : {std::pair{0, 0}, {0, 1}, {1, 1}})
      for (int pseudo = 0; pseudo <= (o.complex_data && p1 == 1 && p2 == 1 ? 1 : 0); ++pseudo) {
        scalings_.push_back({static_cast<int>(k), p1, p2, pseudo, row++});
        label_rows.insert(label_rows.end(), {js[k], -1, p1, js[k], -1, p2, -1, -1, pseudo});
        class_ids.push_back(5);
      }

  // Fields: the distinct [x*psi]^p (conjugated for pseudo moments) that covariances pair up. Each
  // is built and normalised once per call; plain covariances (tau = 0 only) are then a Gram matrix
  // of fields, the others products of the fields' Fourier transforms.
  const auto dev = context.device();
  auto longs = [&](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).to(dev); };
  std::vector<std::tuple<int, int, int, int>> keys; // (kind rank, psi, p, conj) per field
  auto kind_rank = [](int p) { return p == 1 ? 0 : p == 0 ? 1 : 2; };
  for (const auto& cv : covariances_) {
    keys.emplace_back(kind_rank(cv.p1), cv.psi1, cv.p1, 0);
    keys.emplace_back(kind_rank(cv.p2), cv.psi2, cv.p2, cv.pseudo);
  }
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return std::tuple(std::get<3>(a), std::get<0>(a), std::get<1>(a), std::get<2>(a)) <
           std::tuple(std::get<3>(b), std::get<0>(b), std::get<1>(b), std::get<2>(b));
  });
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::map<std::tuple<int, int, int>, int64_t> base_of; // (psi, p, conj) -> field index
  std::vector<int64_t> psi_p1, psi_p0, psi_ph, conj_src;
  std::vector<double> exp_ph;
  for (const auto& [rank, psi, p, conj] : keys) {
    if (conj) continue;
    base_of[{psi, p, 0}] = static_cast<int64_t>(base_of.size());
    (rank == 0 ? psi_p1 : rank == 1 ? psi_p0 : psi_ph).push_back(psi);
    if (rank == 2) exp_ph.push_back(p);
  }
  const int64_t n_base = static_cast<int64_t>(base_of.size());
  for (const auto& [rank, psi, p, conj] : keys)
    if (conj) {
      base_of[{psi, p, 1}] = n_base + static_cast<int64_t>(conj_src.size());
      conj_src.push_back(base_of.at({psi, p, 0})); // pseudo moments conjugate an existing field
    }
  n_fields_ = n_base + static_cast<int64_t>(conj_src.size());
  field_psi_p1_ = longs(psi_p1), field_psi_p0_ = longs(psi_p0), field_psi_ph_ = longs(psi_ph);
  field_exp_ph_ = at::tensor(exp_ph, at::kDouble).to(dev, context.real_dtype()).view({1, -1, 1, 1});
  field_conj_src_ = longs(conj_src);

  std::vector<int64_t> all_rows;
  for (bool shifted : {false, true}) {
    Group g;
    g.shifted = shifted;
    // Shifted covariances index one union of fields; plain ones index the two sides separately
    // (their Gram matrix is then sides_a x sides_b, not union x union).
    std::map<int64_t, int64_t> local, local_a, local_b;
    std::vector<int64_t> fields, fields_a, fields_b, fa, fb, pos, ys, xs, rows;
    std::vector<double> weights;
    auto local_in = [](std::map<int64_t, int64_t>& m, std::vector<int64_t>& list, int64_t field) {
      auto [it, fresh] = m.emplace(field, static_cast<int64_t>(list.size()));
      if (fresh) list.push_back(field);
      return it->second;
    };
    g.first_moment.push_back(0);
    for (const auto& cv : covariances_) {
      const bool zero = std::all_of(cv.tx.begin(), cv.tx.end(), [](int64_t v) { return v == 0; }) &&
                        std::all_of(cv.ty.begin(), cv.ty.end(), [](int64_t v) { return v == 0; });
      if (zero == shifted) continue;
      const int64_t position = static_cast<int64_t>(fa.size());
      const int64_t field_a = base_of.at({cv.psi1, cv.p1, 0});
      const int64_t field_b = base_of.at({cv.psi2, cv.p2, cv.pseudo});
      fa.push_back(shifted ? local_in(local, fields, field_a)
                           : local_in(local_a, fields_a, field_a));
      fb.push_back(shifted ? local_in(local, fields, field_b)
                           : local_in(local_b, fields_b, field_b));
      for (std::size_t m = 0; m < cv.moments.size(); ++m) {
        pos.push_back(position), ys.push_back(cv.ty[m]), xs.push_back(cv.tx[m]);
        weights.push_back(cv.weight[m]), rows.push_back(cv.moments[m]);
      }
      g.first_moment.push_back(static_cast<int64_t>(pos.size()));
    }
    if (fa.empty()) continue;
    g.n_cov = static_cast<int64_t>(fa.size());
    g.fields = longs(fields), g.fields_a = longs(fields_a), g.fields_b = longs(fields_b);
    g.fa = longs(fa), g.fb = longs(fb);
    g.m_pos = longs(pos), g.m_y = longs(ys), g.m_x = longs(xs), g.m_row = longs(rows);
    g.m_weight = at::tensor(weights, at::kDouble).to(dev, context.real_dtype());
    all_rows.insert(all_rows.end(), rows.begin(), rows.end());
    groups_.push_back(std::move(g));
  }
  if (o.boundary == WphBoundary::Periodic) {
    spectral_ = build_spectral_plan(base_of, false);
    cross_ = build_spectral_plan(base_of, true);
    all_rows.clear();
    const at::Tensor rows = spectral_.rows.cpu();
    all_rows.assign(rows.data_ptr<int64_t>(), rows.data_ptr<int64_t>() + rows.numel());
  }
  std::vector<int64_t> sm_rows, sm_a, sm_b;
  std::vector<uint8_t> sm_pseudo;
  const int64_t n_phi = static_cast<int64_t>(js.size());
  for (const Scaling& sc : scalings_) {
    all_rows.push_back(sc.row), sm_rows.push_back(sc.row);
    sm_a.push_back(sc.p1 * n_phi + sc.phi), sm_b.push_back(sc.p2 * n_phi + sc.phi);
    sm_pseudo.push_back(static_cast<uint8_t>(sc.pseudo));
  }
  sm_rows_ = longs(sm_rows), sm_a_ = longs(sm_a), sm_b_ = longs(sm_b);
  sm_pseudo_ = at::tensor(std::vector<int64_t>(sm_pseudo.begin(), sm_pseudo.end()), at::kLong)
                   .to(dev)
                   .ne(0)
                   .view({1, -1, 1, 1});
  row_order_ = at::argsort(at::tensor(all_rows, at::kLong)).to(dev);

  labels_.classes = kWphClasses;
  labels_.label_names = kWphLabels;
  labels_.class_id = at::tensor(class_ids, at::kLong);
  labels_.labels = at::tensor(label_rows, at::kLong).view({-1, 9});
}

WphOperator::SpectralTables
WphOperator::build_spectral_plan(const std::map<std::tuple<int, int, int>, int64_t>& field_of,
                                 bool cross) const {
  const int64_t H = height_, W = width_;
  // Cross statistics: sources [plain of x, plain of y, nonlinear of x, nonlinear of y], side a
  // from x, side b from y; conjugated copies (pseudo moments) of y's sources after them.
  const int64_t n_plain = field_psi_p1_.numel(), n_conj = field_conj_src_.numel();
  const int64_t n_src = n_fields_ - n_conj, n_nl = n_src - n_plain;
  auto on_x = [&](int64_t f) { return cross && f >= n_plain ? n_plain + f : f; };
  auto on_y = [&](int64_t f) {
    if (!cross) return f;
    return f < n_plain ? n_plain + f : f < n_src ? n_plain + n_nl + f : n_src + f;
  };
  const at::Tensor conj_src_host = field_conj_src_.cpu();
  std::vector<int64_t> conj_source;
  for (int64_t i = 0; i < n_conj; ++i)
    conj_source.push_back(on_y(conj_src_host[i].item<int64_t>()));
  const int64_t n_sources_total = cross ? 2 * n_src : n_src;
  const auto dev = context_.device();
  auto longs = [&](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).to(dev); };

  // Box half-extent of each wavelet's support in signed frequencies; -1 when it spans the axis.
  const at::Tensor support = psi_.detach().to(at::kCPU, at::kDouble).ne(0);
  std::vector<std::pair<int64_t, int64_t>> half(support.size(0));
  for (int64_t q = 0; q < support.size(0); ++q) {
    const at::Tensor nz = support[q].nonzero(); // (n, 2) rows, columns
    const auto at = nz.accessor<int64_t, 2>();
    int64_t ry = 0, rx = 0;
    for (int64_t i = 0; i < nz.size(0); ++i) {
      const int64_t ky = at[i][0], kx = at[i][1];
      ry = std::max(ry, std::min(ky, H - ky));
      rx = std::max(rx, std::min(kx, W - kx));
    }
    half[q] = {2 * ry + 1 >= H ? -1 : ry, 2 * rx + 1 >= W ? -1 : rx};
  }
  auto extent = [](int64_t r, int64_t n) { return r < 0 ? n : 2 * r + 1; };

  // The shifts of every moment, as one grid of distinct row and column offsets.
  std::vector<int64_t> tys, txs;
  for (const auto& cv : covariances_) {
    tys.insert(tys.end(), cv.ty.begin(), cv.ty.end());
    txs.insert(txs.end(), cv.tx.begin(), cv.tx.end());
  }
  for (auto* v : {&tys, &txs}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  auto position = [](const std::vector<int64_t>& v, int64_t x) {
    return static_cast<int64_t>(std::lower_bound(v.begin(), v.end(), x) - v.begin());
  };
  auto plan = std::make_shared<detail::SpectralPlan>();
  plan->n_ty = static_cast<int64_t>(tys.size());
  plan->n_tx = static_cast<int64_t>(txs.size());

  // Group the covariances by the box of their band-limited side (the smaller one when both are).
  std::map<std::pair<int64_t, int64_t>, std::vector<const Covariance*>> by_box;
  for (const auto& cv : covariances_) {
    std::pair<int64_t, int64_t> box{-1, -1};
    auto area = [&](std::pair<int64_t, int64_t> b) {
      return extent(b.first, H) * extent(b.second, W);
    };
    if (cv.p1 == 1 && area(half[cv.psi1]) < area(box)) box = half[cv.psi1];
    if (cv.p2 == 1 && area(half[cv.psi2]) < area(box)) box = half[cv.psi2];
    by_box[box].push_back(&cv);
  }
  // Small boxes (coarse scales) share one: fewer, larger kernels for a little padding.
  std::pair<int64_t, int64_t> small{-2, -2};
  for (const auto& [box, covs] : by_box)
    if (box.first >= 0 && box.second >= 0 &&
        extent(box.first, H) * extent(box.second, W) * 64 <= H * W)
      small = {std::max(small.first, box.first), std::max(small.second, box.second)};
  if (small.first >= 0)
    for (auto it = by_box.begin(); it != by_box.end();) {
      const auto box = it->first;
      if (box != small && box.first >= 0 && box.second >= 0 && box.first <= small.first &&
          box.second <= small.second) {
        auto& into = by_box[small];
        into.insert(into.end(), it->second.begin(), it->second.end());
        it = by_box.erase(it);
      } else {
        ++it;
      }
    }
  std::vector<int64_t> rows, mfa, mfb;
  std::vector<int64_t> box_indices; // the groups' box frequencies (and those of -k)
  int64_t buffer_per_map = 0;
  std::vector<detail::BoxCopy> copies; // one per slot of every group
  const double n2 = static_cast<double>(H * W) * static_cast<double>(H * W);
  for (const auto& [box, covs] : by_box) {
    detail::SpectralGroup g;
    std::vector<int64_t> ky, kx;
    for (int64_t u = 0; u < extent(box.first, H); ++u)
      ky.push_back(box.first < 0 ? u : u - box.first);
    for (int64_t v = 0; v < extent(box.second, W); ++v)
      kx.push_back(box.second < 0 ? v : v - box.second);
    g.bh = static_cast<int64_t>(ky.size()), g.bw = static_cast<int64_t>(kx.size());
    // e^{2 pi i k t / n}, with k and t as integers so that the phase is exact modulo 2 pi.
    auto phases = [&](const std::vector<int64_t>& k, const std::vector<int64_t>& t, int64_t n,
                      double scale) {
      std::vector<double> re, im;
      for (int64_t a : k)
        for (int64_t b : t) {
          const double phase =
              2 * pi * static_cast<double>(pymod(a * b, n)) / static_cast<double>(n);
          re.push_back(scale * std::cos(phase)), im.push_back(scale * std::sin(phase));
        }
      const auto opt = at::TensorOptions().dtype(at::kDouble);
      return at::complex(at::tensor(re, opt), at::tensor(im, opt))
          .view({static_cast<int64_t>(k.size()), -1});
    };
    g.ey = phases(ky, tys, H, 1.0).transpose(0, 1).contiguous().to(dev, context_.complex_dtype());
    g.ex = phases(kx, txs, W, 1.0 / n2).to(dev, context_.complex_dtype());
    std::vector<int64_t> fa, fb, m_lin, fields;
    std::map<int64_t, int64_t> slot_of; // global field -> slot in this group's boxes
    auto slot = [&](int64_t field) {
      auto [it, fresh] = slot_of.emplace(field, static_cast<int64_t>(fields.size()));
      if (fresh) fields.push_back(field);
      return it->second;
    };
    g.first_moment.push_back(0);
    for (const Covariance* cv : covs) {
      const int64_t c = static_cast<int64_t>(fa.size());
      const int64_t field_a = on_x(field_of.at({cv->psi1, cv->p1, 0}));
      const int64_t field_b = on_y(field_of.at({cv->psi2, cv->p2, cv->pseudo}));
      fa.push_back(slot(field_a)), fb.push_back(slot(field_b));
      for (std::size_t m = 0; m < cv->moments.size(); ++m) {
        m_lin.push_back((c * plan->n_ty + position(tys, cv->ty[m])) * plan->n_tx +
                        position(txs, cv->tx[m]));
        rows.push_back(cv->moments[m]), mfa.push_back(field_a), mfb.push_back(field_b);
      }
      g.first_moment.push_back(static_cast<int64_t>(m_lin.size()));
    }
    // Frequency indices of the box (-1: the grid in order), and of -k for conjugated fields.
    const int64_t box_size = g.bh * g.bw;
    int64_t box_table = -1, flip_table = -1;
    if (box.first >= 0 || box.second >= 0) {
      box_table = static_cast<int64_t>(box_indices.size());
      for (int64_t a : ky)
        for (int64_t b : kx) box_indices.push_back(pymod(a, H) * W + pymod(b, W));
    }
    if (std::any_of(fields.begin(), fields.end(),
                    [&](int64_t f) { return f >= n_sources_total; })) {
      flip_table = static_cast<int64_t>(box_indices.size());
      for (int64_t a : ky)
        for (int64_t b : kx) box_indices.push_back(pymod(-a, H) * W + pymod(-b, W));
    }
    g.n_slots = static_cast<int64_t>(fields.size());
    g.offset = buffer_per_map;
    buffer_per_map += g.n_slots * box_size;
    for (int64_t k = 0; k < g.n_slots; ++k) {
      const int64_t field = fields[static_cast<std::size_t>(k)];
      const bool conj = field >= n_sources_total;
      copies.push_back({conj ? conj_source[field - n_sources_total] : field, g.offset,
                        g.n_slots * box_size, k * box_size, conj ? flip_table : box_table, box_size,
                        conj});
    }
    g.n_cov = static_cast<int64_t>(fa.size());
    g.fa = longs(fa), g.fb = longs(fb), g.m_lin = longs(m_lin);
    plan->groups.push_back(std::move(g));
  }
  // Sources in field order: plain wavelet fields, moduli, higher harmonics (per map when cross).
  std::vector<int64_t> nl_index;
  std::vector<double> nl_p;
  const at::Tensor p0 = field_psi_p0_.cpu(), ph = field_psi_ph_.cpu(),
                   exps = field_exp_ph_.flatten().cpu().to(at::kDouble);
  const int64_t n_psi = psi_.size(0);
  for (int64_t map = 0; map < (cross ? 2 : 1); ++map) {
    for (int64_t i = 0; i < p0.numel(); ++i)
      nl_index.push_back(map * n_psi + p0[i].item<int64_t>()), nl_p.push_back(0.0);
    for (int64_t i = 0; i < ph.numel(); ++i)
      nl_index.push_back(map * n_psi + ph[i].item<int64_t>()),
          nl_p.push_back(exps[i].item<double>());
  }
  plan->height = H, plan->width = W;
  const at::Tensor psi_plain = psi_.index_select(0, field_psi_p1_);
  plan->psi_plain = cross ? at::cat({psi_plain, psi_plain}, 0) : psi_plain;
  plan->plain_per_map = n_plain;
  plan->nl_index = longs(nl_index);
  plan->nl_p = at::tensor(nl_p, at::kDouble).to(dev, context_.real_dtype());
  plan->conj_source = longs(conj_source);
  plan->box_tasks =
      detail::make_box_tasks(std::move(copies), box_indices, buffer_per_map, n_sources_total, dev);
  return {plan, longs(rows), longs(mfa), longs(mfb)};
}

at::Tensor WphOperator::prepare(const at::Tensor& x) const {
  const at::Tensor b = detail::map_batch(x, height_, width_, "WPH");
  if (x.is_complex() && !options_.complex_data)
    throw ValueError("WPH: complex input needs options.complex_data = true");
  return b.to(context_.device(), context_.complex_dtype());
}

WphOperator::Fields WphOperator::transform(const at::Tensor& xc) const {
  const at::Tensor f = at::fft_fft2(xc).unsqueeze(1); // (B, 1, H, W)
  Fields out;
  out.xhat = f.squeeze(1);
  // ifft2 = (1/N) x the unnormalised inverse: 1/N applied to x^ once, not to every filtered copy
  // (and again in their backward).
  const at::Tensor f_n = f * (1.0 / static_cast<double>(height_ * width_));
  out.wt = at::fft_ifft2(f_n * psi_.unsqueeze(0), c10::nullopt, {-2, -1}, "forward");
  at::Tensor low = at::fft_ifft2(f_n * phi_.unsqueeze(0), c10::nullopt, {-2, -1}, "forward");
  if (options_.boundary == WphBoundary::NonPeriodic) {
    using at::indexing::Slice;
    const auto ys = Slice(cut_y_, height_ - cut_y_), xs = Slice(cut_x_, width_ - cut_x_);
    out.wt = out.wt.index({"...", ys, xs});
    low = low.index({"...", ys, xs});
  }
  if (!spectral_.plan) out.wt_mod = out.wt.abs(); // the spatial path's fields; spectral: from wt
  out.lowpass = low - low.mean({-2, -1}, true);
  return out;
}

namespace {

/// (z - m) / s over the last two axes, with m, s the reference's when given, else z's own: None
/// subtracts the mean only (kept in the graph), Auto also divides by the deviation, both held
/// constant as pywph's stored normalisation is. Reports the m and s used (s undefined for None).
at::Tensor standardise(const at::Tensor& z /* (B, P, h, w) */, WphNorm norm,
                       const at::Tensor& ref_mean /* (B0, P, 1, 1) or undefined */,
                       const at::Tensor& ref_std, at::Tensor* mean_used, at::Tensor* scale_used) {
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
  if (mean_used) *mean_used = mean;
  if (scale_used) *scale_used = scale;
  return scale.defined() ? (z - mean) / scale : z - mean;
}

} // namespace

at::Tensor WphOperator::build_fields(const Fields& f) const {
  std::vector<at::Tensor> parts;
  if (field_psi_p1_.numel()) parts.push_back(f.wt.index_select(1, field_psi_p1_));
  if (field_psi_p0_.numel())
    parts.push_back(f.wt_mod.index_select(1, field_psi_p0_).to(f.wt.scalar_type()));
  if (field_psi_ph_.numel()) { // |z| e^{i p arg z}
    const at::Tensor z = f.wt.index_select(1, field_psi_ph_);
    parts.push_back(
        at::polar(f.wt_mod.index_select(1, field_psi_ph_), at::angle(z) * field_exp_ph_));
  }
  at::Tensor fields = at::cat(parts, 1); // (B, n_base, h, w)
  if (field_conj_src_.numel())
    fields = at::cat({fields, fields.index_select(1, field_conj_src_).conj()}, 1);
  return fields;
}

void WphOperator::compute(const Fields& f, WphNorm norm, const at::Tensor* ref_mean,
                          const at::Tensor* ref_std, const at::Tensor* ref_sm, const Sink& sink,
                          at::Tensor* field_stats, at::Tensor* stats_sm, bool cut_graph) const {
  if (spectral_.plan) {
    compute_spectral(spectral_, f.xhat.unsqueeze(1), f.wt, norm, ref_mean, ref_std, sink,
                     field_stats);
  } else {
    compute_spatial(f, norm, ref_mean, ref_std, sink, field_stats, cut_graph);
  }
  compute_scaling(f.lowpass, f.lowpass, norm, ref_sm, sink, stats_sm);
}

void WphOperator::compute_spectral(const SpectralTables& tables, const at::Tensor& xhat,
                                   const at::Tensor& wt, WphNorm norm, const at::Tensor* ref_mean,
                                   const at::Tensor* ref_std, const Sink& sink,
                                   at::Tensor* field_stats) const {
  // Temporaries are capped well below the budget: larger kernels gain little, memory is the limit.
  // But a call whose temporaries fit one chunk of at most 768 MB (the backward's estimate: ten
  // spectra per source) runs as one chunk: at small sizes the time is the number of launches.
  // Batches of many maps take up to 8 sources a chunk (at most 4 GiB): one source at a time, a
  // batch of 100 256^2 maps launched ~4000 ops for its statistics.
  const int64_t per_source = 10 * wt.size(0) * wt.size(-2) * wt.size(-1) * wt.element_size();
  const int64_t one_chunk = per_source * tables.plan->n_sources();
  const int64_t cap =
      std::max<int64_t>(int64_t{256} << 20, std::min<int64_t>(8 * per_source, int64_t{4} << 30));
  const int64_t work =
      std::min<int64_t>(budget(), one_chunk <= (int64_t{768} << 20) ? one_chunk : cap);
  const detail::DcMode mode = ref_mean                ? detail::DcMode::Reference
                              : norm == WphNorm::None ? detail::DcMode::Own
                                                      : detail::DcMode::OwnConstant;
  const detail::SpectralResult r =
      detail::spectral_wph(xhat, wt, tables.plan, mode, ref_mean ? *ref_mean : at::Tensor(), work);
  // Deviations divide the covariances (the reference's, or the field's own held constant).
  at::Tensor scale;
  if (ref_std) {
    scale = *ref_std;
  } else if (norm == WphNorm::Auto) {
    const at::Tensor sd = at::sqrt(r.power);
    scale = at::where(sd == 0, at::ones_like(sd), sd).to(r.mean.scalar_type());
    if (field_stats) *field_stats = at::stack({r.mean, scale}, -1);
  }
  at::Tensor values = r.values;
  if (scale.defined())
    values = values / (scale.index_select(1, tables.fa) * scale.index_select(1, tables.fb));
  sink(values, tables.rows);
}

void WphOperator::compute_spatial(const Fields& f, WphNorm norm, const at::Tensor* ref_mean,
                                  const at::Tensor* ref_std, const Sink& sink,
                                  at::Tensor* field_stats, bool cut_graph) const {
  const int64_t B = f.wt.size(0), h = f.wt.size(-2), w = f.wt.size(-1);
  const double norm_mn = static_cast<double>(height_ * width_);
  const bool periodic = options_.boundary == WphBoundary::Periodic;
  const int64_t item = f.wt.element_size();
  // Normalised fields: (F - m) / s with m, s the field's own (None: m only, kept in the graph;
  // Auto: held constant) or the reference's statistics.
  const at::Tensor fields = build_fields(f); // (B, n_fields, h, w) complex
  at::Tensor mean, scale;
  const at::Tensor normed_full =
      standardise(fields, norm, ref_mean ? ref_mean->unsqueeze(-1).unsqueeze(-1) : at::Tensor(),
                  ref_std ? ref_std->unsqueeze(-1).unsqueeze(-1) : at::Tensor(), &mean, &scale);
  if (field_stats && scale.defined())
    *field_stats = at::stack({mean.squeeze(-1).squeeze(-1), scale.squeeze(-1).squeeze(-1)}, -1);
  // cut_graph: sinks backpropagate chunk by chunk into detached copies of the shared tensors,
  // which then backpropagate once each (instead of once per chunk).
  const at::Tensor normed = cut_graph ? normed_full.detach().requires_grad_(true) : normed_full;

  for (const Group& g : groups_) {
    if (!g.shifted) {
      // tau = 0: every needed sum of a conj(b) is an entry of the Gram matrix of the two sides.
      const int64_t na = g.fields_a.numel(), nb = g.fields_b.numel();
      const at::Tensor fa = normed.index_select(1, g.fields_a).reshape({B, na, h * w});
      const at::Tensor fb = normed.index_select(1, g.fields_b).reshape({B, nb, h * w});
      const at::Tensor gram = at::matmul(fa, fb.conj().transpose(1, 2)); // (B, na, nb)
      const at::Tensor lin = g.fa * nb + g.fb;
      at::Tensor cov =
          gram.reshape({B, -1}).index_select(1, lin).index_select(1, g.m_pos) / norm_mn;
      if (!periodic) cov = cov * g.m_weight;
      sink(cov, g.m_row);
      continue;
    }
    // Shifts: cross-correlations through the fields' Fourier transforms, computed once per field.
    const at::Tensor gf = normed.index_select(1, g.fields); // (B, n_group_fields, h, w)
    const at::Tensor spectra_full =
        at::fft_fft2(periodic ? gf : at::constant_pad_nd(gf, {0, pad_x_, 0, pad_y_}));
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
      at::Tensor cov = cross.reshape({B, -1}).index_select(1, lin) / norm_mn;
      if (!periodic) cov = cov * g.m_weight.narrow(0, m0, nm);
      sink(cov, g.m_row.narrow(0, m0, nm));
    }
    if (cut_graph && spectra.grad().defined()) spectra_full.backward(spectra.grad());
  }
  if (cut_graph && normed.grad().defined()) normed_full.backward(normed.grad());
}

void WphOperator::compute_scaling(const at::Tensor& low_a, const at::Tensor& low_b, WphNorm norm,
                                  const at::Tensor* ref_sm, const Sink& sink,
                                  at::Tensor* stats_sm) const {
  // Scaling moments: covariances of low-pass fields at tau = 0, averaged over the valid region;
  // each side is |low| or low (p = 0 or 1), side b conjugated for pseudo moments.
  auto sides = [](const at::Tensor& low) {
    return at::cat({low.abs().to(low.scalar_type()), low}, 1);
  };
  at::Tensor a = sides(low_a).index_select(1, sm_a_),
             b = sides(low_b).index_select(1, sm_b_); // (B, n_sm, h, w)
  b = at::where(sm_pseudo_, b.conj(), b);
  auto ref = [&](int side, int what) { // reference statistics (B0, n_sm, 1, 1)
    return ref_sm ? ref_sm->select(2, side).select(2, what).unsqueeze(-1).unsqueeze(-1)
                  : at::Tensor();
  };
  at::Tensor m1, s1, m2, s2;
  a = standardise(a, norm, ref(0, 0), ref(0, 1), &m1, &s1);
  b = standardise(b, norm, ref(1, 0), ref(1, 1), &m2, &s2);
  if (stats_sm) // (B, n_sm, side, [mean, std])
    *stats_sm = at::stack({at::stack({m1, s1}, -1), at::stack({m2, s2}, -1)}, -2)
                    .reshape({m1.size(0), m1.size(1), 2, 2});
  sink((a * b.conj()).mean({-2, -1}), sm_rows_);
}

int64_t WphOperator::budget() const {
  return options_.memory_bytes > 0 ? options_.memory_bytes : context_.free_memory_bytes() / 5 * 2;
}

int64_t WphOperator::batch_slice(int64_t batch) const {
  const int64_t h = height_ - 2 * cut_y_ + pad_y_, w = width_ - 2 * cut_x_ + pad_x_;
  const int64_t item = static_cast<int64_t>(c10::elementSize(context_.complex_dtype()));
  // What one map keeps alive with its graph: the wavelet transform, the fields or their spectra
  // and their gradients (spectral path), or the fields and their copies (spatial path).
  const int64_t per_map = (3 * psi_.size(0) + 3 * n_fields_) * h * w * item;
  return std::clamp<int64_t>(budget() / std::max<int64_t>(1, per_map), 1, batch);
}

int64_t WphOperator::shifted_chunks(int64_t batch) const {
  for (const Group& g : groups_) {
    if (!g.shifted) continue;
    const int64_t hh = height_ - 2 * cut_y_ + pad_y_, ww = width_ - 2 * cut_x_ + pad_x_;
    const int64_t item = static_cast<int64_t>(c10::elementSize(context_.complex_dtype()));
    const int64_t chunk =
        std::max<int64_t>(1, budget() / std::max<int64_t>(1, 3 * batch * hh * ww * item));
    return (g.n_cov + chunk - 1) / chunk;
  }
  return 0;
}

template <typename Body>
void WphOperator::for_each_slice(const at::Tensor& xc, const Body& body) const {
  const bool use_ref = options_.norm == WphNorm::Auto && has_reference();
  const int64_t B = xc.size(0), ref_b = use_ref ? ref_field_mean_.size(0) : 1;
  if (use_ref && ref_b != 1 && ref_b != B)
    throw ShapeError("WPH: the reference holds " + std::to_string(ref_b) +
                     " maps but the batch has " + std::to_string(B));
  const int64_t step = batch_slice(B);
  for (int64_t b0 = 0; b0 < B; b0 += step) {
    const int64_t n = std::min(step, B - b0);
    at::Tensor rm, rs, rsm;
    if (use_ref) {
      rm = ref_b == 1 ? ref_field_mean_ : ref_field_mean_.narrow(0, b0, n);
      rs = ref_b == 1 ? ref_field_std_ : ref_field_std_.narrow(0, b0, n);
      rsm = ref_b == 1 ? ref_sm_ : ref_sm_.narrow(0, b0, n);
    }
    body(xc.narrow(0, b0, n), use_ref ? &rm : nullptr, use_ref ? &rs : nullptr,
         use_ref ? &rsm : nullptr);
  }
}

Coefficients WphOperator::forward(const at::Tensor& x) const {
  std::vector<at::Tensor> slices;
  for_each_slice(prepare(x), [&](const at::Tensor& xs, const at::Tensor* rm, const at::Tensor* rs,
                                 const at::Tensor* rsm) {
    std::vector<at::Tensor> values; // chunks arrive in a fixed order: row_order_ sorts them
    compute(
        transform(xs), options_.norm, rm, rs, rsm,
        [&](const at::Tensor& v, const at::Tensor&) { values.push_back(v); }, nullptr, nullptr);
    slices.push_back(at::cat(values, 1).index_select(1, row_order_));
  });
  Coefficients out = labels_;
  out.values = slices.size() == 1 ? slices[0] : at::cat(slices, 0);
  return out;
}

Coefficients WphOperator::forward_cross(const at::Tensor& x, const at::Tensor& y) const {
  if (!cross_.plan)
    throw ValueError(
        "WPH: cross statistics are implemented for periodic maps only (boundary Periodic)");
  if (options_.norm == WphNorm::Auto && has_reference())
    throw ValueError("WPH: cross statistics normalise each map by its own statistics; call "
                     "clear_reference() before forward_cross()");
  const at::Tensor xc = prepare(x), yc = prepare(y);
  if (xc.size(0) != yc.size(0))
    throw ShapeError("WPH: cross statistics need as many maps on each side, got " +
                     std::to_string(xc.size(0)) + " and " + std::to_string(yc.size(0)));
  const int64_t B = xc.size(0), step = std::max<int64_t>(1, batch_slice(B) / 2);
  std::vector<at::Tensor> slices;
  for (int64_t b0 = 0; b0 < B; b0 += step) {
    const int64_t n = std::min(step, B - b0);
    const Fields fx = transform(xc.narrow(0, b0, n)), fy = transform(yc.narrow(0, b0, n));
    std::vector<at::Tensor> values; // chunks arrive in a fixed order: row_order_ sorts them
    const Sink sink = [&](const at::Tensor& v, const at::Tensor&) { values.push_back(v); };
    compute_spectral(cross_, at::stack({fx.xhat, fy.xhat}, 1), at::cat({fx.wt, fy.wt}, 1),
                     options_.norm, nullptr, nullptr, sink, nullptr);
    compute_scaling(fx.lowpass, fy.lowpass, options_.norm, nullptr, sink, nullptr);
    slices.push_back(at::cat(values, 1).index_select(1, row_order_));
  }
  Coefficients out = labels_;
  out.values = slices.size() == 1 ? slices[0] : at::cat(slices, 0);
  return out;
}

namespace {

/// Intermediates of a call that loss_and_grad may record as a CUDA graph: the recording keeps them.
constexpr int64_t kGraphMemoryLimit = int64_t{1} << 30;
constexpr std::size_t kGraphsKept = 2;

} // namespace

/// Recorded loss_and_grad calls, most recently used first: each reads its inputs from its own
/// tensors, which a call fills before the replay.
struct WphOperator::GraphCache {
  struct Entry {
    std::vector<int64_t> key;
    at::Tensor x, target, weights; // inputs, at fixed addresses
    at::Tensor loss, grad;         // outputs, the recording's own
    StepGraph step;
  };
  std::mutex mutex; // one call at a time uses an entry's tensors
  std::list<Entry> entries;
};

WphOperator::GraphCacheHandle::GraphCacheHandle() : cache(std::make_unique<GraphCache>()) {}
WphOperator::GraphCacheHandle::GraphCacheHandle(const GraphCacheHandle&) : GraphCacheHandle() {}
WphOperator::GraphCacheHandle& WphOperator::GraphCacheHandle::operator=(const GraphCacheHandle&) {
  cache = std::make_unique<GraphCache>();
  return *this;
}
WphOperator::GraphCacheHandle::~GraphCacheHandle() = default;

bool WphOperator::graph_eligible(const at::Tensor& x) const {
  if (!options_.cuda_graphs || !context_.device().is_cuda() || x.device() != context_.device())
    return false;
  const int64_t B = x.dim() == 3 ? x.size(0) : 1;
  const int64_t h = height_ - 2 * cut_y_ + pad_y_, w = width_ - 2 * cut_x_ + pad_x_;
  const int64_t item = static_cast<int64_t>(c10::elementSize(context_.complex_dtype()));
  const int64_t per_map = (3 * psi_.size(0) + 3 * n_fields_) * h * w * item; // as batch_slice's
  // Periodic maps only: their spectral path is known to record (it makes no host synchronisation).
  return spectral_.plan && B * per_map <= kGraphMemoryLimit && batch_slice(B) >= B;
}

at::Tensor WphOperator::loss_and_grad(const at::Tensor& x, const at::Tensor& target,
                                      const at::Tensor& weights, at::Tensor* grad) const {
  detail::map_batch(x, height_, width_, "WPH"); // shape errors before anything is recorded
  if (!options_.cuda_graphs || !context_.device().is_cuda() || x.device() != context_.device() ||
      !target.defined())
    return loss_and_grad_eager(x, target, weights, grad);
  std::vector<int64_t> key(x.sizes().begin(), x.sizes().end());
  key.push_back(-1);
  key.insert(key.end(), target.sizes().begin(), target.sizes().end());
  key.insert(key.end(),
             {-1, static_cast<int64_t>(x.scalar_type()), static_cast<int64_t>(target.scalar_type()),
              weights.defined() ? weights.numel() : -1, grad != nullptr});
  GraphCache& cache = *graphs_.cache;
  std::unique_lock<std::mutex> lock(cache.mutex);
  auto& entries = cache.entries;
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const GraphCache::Entry& e) { return e.key == key; });
  if (it == entries.end()) {
    // A new shape: eligibility (which asks the device for its free memory) is checked once, here.
    if (!graph_eligible(x)) {
      lock.unlock();
      return loss_and_grad_eager(x, target, weights, grad);
    }
    const auto dev = context_.device();
    entries.push_front(GraphCache::Entry{
        key,
        at::empty_like(x, x.options().device(dev)),
        at::empty(target.sizes(), target.options().device(dev)),
        weights.defined() ? at::empty(weights.sizes(), weights.options().device(dev))
                          : at::Tensor(),
        {},
        {},
        StepGraph([] {}, dev)});
    GraphCache::Entry& e = entries.front();
    const bool want_grad = grad != nullptr;
    e.step = StepGraph(
        [this, &e, want_grad] {
          e.loss = loss_and_grad_eager(e.x, e.target, e.weights, want_grad ? &e.grad : nullptr);
        },
        dev);
    if (entries.size() > kGraphsKept) entries.pop_back();
    it = entries.begin();
  } else {
    entries.splice(entries.begin(), entries, it); // most recently used first (list nodes stay put)
  }
  GraphCache::Entry& e = *it;
  e.x.copy_(x);
  e.target.copy_(target);
  if (weights.defined()) e.weights.copy_(weights);
  e.step();
  if (grad) *grad = e.grad.clone();
  return e.loss.clone();
}

at::Tensor WphOperator::loss_and_grad_eager(const at::Tensor& x, const at::Tensor& target,
                                            const at::Tensor& weights, at::Tensor* grad) const {
  const at::Tensor leaf = x.detach().requires_grad_(grad != nullptr);
  const at::Tensor xc = prepare(leaf);
  const at::Tensor t = target.to(xc.device(), xc.scalar_type());
  const at::Tensor w = weights.defined() ? weights.to(xc.device(), context_.real_dtype()) : weights;
  at::Tensor total =
      at::zeros({}, at::TensorOptions().dtype(context_.real_dtype()).device(xc.device()));
  int64_t b0 = 0;
  for_each_slice(xc, [&](const at::Tensor& xs, const at::Tensor* rm, const at::Tensor* rs,
                         const at::Tensor* rsm) {
    const Fields f = transform(xs);
    const bool g = grad != nullptr;
    const at::Tensor ts = t.dim() == 2 && t.size(0) > 1 ? t.narrow(0, b0, xs.size(0)) : t;
    auto chunk_loss = [&](const at::Tensor& v, const at::Tensor& rows) {
      at::Tensor d = (v - ts.index_select(-1, rows)).abs().square(); // (b, n)
      if (w.defined()) d = d * w.index_select(-1, rows);
      return d.sum();
    };
    if (!g || spectral_.plan ||
        shifted_chunks(xs.size(0)) <= 1) { // the spectral path chunks internally
      // Everything fits in one chunk: one graph, one backward pass (fewer, larger kernels).
      at::Tensor slice_loss = at::zeros({}, total.options());
      compute(
          f, options_.norm, rm, rs, rsm,
          [&](const at::Tensor& v, const at::Tensor& rows) {
            slice_loss = slice_loss + chunk_loss(v, rows);
          },
          nullptr, nullptr);
      if (g) slice_loss.backward();
      total = total + slice_loss.detach();
    } else {
      // Chunks backpropagate into detached copies of the shared tensors one at a time, so that the
      // graph of only one chunk is alive; those copies then backpropagate to x once each.
      const Fields cut{f.xhat.detach(), f.wt.detach().requires_grad_(true),
                       f.wt_mod.detach().requires_grad_(true),
                       f.lowpass.detach().requires_grad_(true)};
      compute(
          cut, options_.norm, rm, rs, rsm,
          [&](const at::Tensor& v, const at::Tensor& rows) {
            const at::Tensor l = chunk_loss(v, rows);
            l.backward();
            total = total + l.detach();
          },
          nullptr, nullptr, /*cut_graph=*/true);
      std::vector<at::Tensor> outs, grads;
      for (const auto& [o, c] :
           {std::pair{f.wt, cut.wt}, {f.wt_mod, cut.wt_mod}, {f.lowpass, cut.lowpass}})
        if (c.grad().defined()) outs.push_back(o), grads.push_back(c.grad());
      if (!outs.empty()) torch::autograd::backward(outs, grads);
    }
    b0 += xs.size(0);
  });
  if (grad) *grad = leaf.grad().defined() ? leaf.grad() : at::zeros_like(leaf);
  return total;
}

void WphOperator::set_reference(const at::Tensor& reference) {
  c10::AutoGradMode no_grad(false);
  at::Tensor field_stats, sm_stats;
  compute(
      transform(prepare(reference)), WphNorm::Auto, nullptr, nullptr, nullptr,
      [](const at::Tensor&, const at::Tensor&) {}, &field_stats, &sm_stats);
  ref_field_mean_ = field_stats.select(-1, 0);
  ref_field_std_ = field_stats.select(-1, 1);
  ref_sm_ = sm_stats;
  graphs_.cache = std::make_unique<GraphCache>(); // recordings read the old reference's tensors
}

void WphOperator::clear_reference() {
  ref_field_mean_ = at::Tensor();
  ref_field_std_ = at::Tensor();
  ref_sm_ = at::Tensor();
  graphs_.cache = std::make_unique<GraphCache>();
}

Coefficients wph(const at::Tensor& x, const WphOptions& options, const Context& context) {
  return WphOperator(options, x.size(-2), x.size(-1), context).forward(x);
}

} // namespace demix

// The WPH plan: fields, covariance groups, scaling moments and Fourier-space tables, built once
// per operator from the model's moments (wph_moments.cpp).

#include "stats/detail/wph_plan.hpp"

#include <demix/core/errors.hpp>
#include <demix/stats/filters.hpp>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <set>
#include <tuple>

namespace demix::detail {

namespace {

using std::numbers::pi;

int64_t pymod(int64_t a, int64_t n) { return ((a % n) + n) % n; }

/// The Fourier-space tables of periodic maps: covariances grouped by the frequency box of their
/// band-limited side, sources and conjugated copies in field order. cross: side a from one map,
/// side b from another.
WphPlan::SpectralTables
spectral_tables(const WphPlan& wp, const std::map<std::tuple<int, int, int>, int64_t>& field_of,
                bool cross, const Context& context) {
  const int64_t H = wp.height, W = wp.width;
  // Cross statistics: sources [plain of x, plain of y, nonlinear of x, nonlinear of y], side a
  // from x, side b from y; conjugated copies (pseudo moments) of y's sources after them.
  const int64_t n_plain = wp.field_psi_p1.numel(), n_conj = wp.field_conj_src.numel();
  const int64_t n_src = wp.n_fields - n_conj, n_nl = n_src - n_plain;
  auto on_x = [&](int64_t f) { return cross && f >= n_plain ? n_plain + f : f; };
  auto on_y = [&](int64_t f) {
    if (!cross) return f;
    return f < n_plain ? n_plain + f : f < n_src ? n_plain + n_nl + f : n_src + f;
  };
  const at::Tensor conj_src_host = wp.field_conj_src.cpu();
  std::vector<int64_t> conj_source;
  for (int64_t i = 0; i < n_conj; ++i)
    conj_source.push_back(on_y(conj_src_host[i].item<int64_t>()));
  const int64_t n_sources_total = cross ? 2 * n_src : n_src;
  const auto dev = context.device();
  auto longs = [&](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).to(dev); };

  // Box half-extent of each wavelet's support in signed frequencies; -1 when it spans the axis.
  const at::Tensor support = wp.psi.detach().to(at::kCPU, at::kDouble).ne(0);
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
  for (const auto& cv : wp.covariances) {
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
  auto plan = std::make_shared<SpectralPlan>();
  plan->n_ty = static_cast<int64_t>(tys.size());
  plan->n_tx = static_cast<int64_t>(txs.size());

  // Group the covariances by the box of their band-limited side (the smaller one when both are).
  std::map<std::pair<int64_t, int64_t>, std::vector<const WphPlan::Covariance*>> by_box;
  for (const auto& cv : wp.covariances) {
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
  std::vector<BoxCopy> copies; // one per slot of every group
  const double n2 = static_cast<double>(H * W) * static_cast<double>(H * W);
  for (const auto& [box, covs] : by_box) {
    SpectralGroup g;
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
    g.ey = phases(ky, tys, H, 1.0).transpose(0, 1).contiguous().to(dev, context.complex_dtype());
    g.ex = phases(kx, txs, W, 1.0 / n2).to(dev, context.complex_dtype());
    std::vector<int64_t> fa, fb, m_lin, fields;
    std::map<int64_t, int64_t> slot_of; // global field -> slot in this group's boxes
    auto slot = [&](int64_t field) {
      auto [it, fresh] = slot_of.emplace(field, static_cast<int64_t>(fields.size()));
      if (fresh) fields.push_back(field);
      return it->second;
    };
    g.first_moment.push_back(0);
    for (const WphPlan::Covariance* cv : covs) {
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
  const at::Tensor p0 = wp.field_psi_p0.cpu(), ph = wp.field_psi_ph.cpu(),
                   exps = wp.field_exp_ph.flatten().cpu().to(at::kDouble);
  const int64_t n_psi = wp.psi.size(0);
  for (int64_t map = 0; map < (cross ? 2 : 1); ++map) {
    for (int64_t i = 0; i < p0.numel(); ++i)
      nl_index.push_back(map * n_psi + p0[i].item<int64_t>()), nl_p.push_back(0.0);
    for (int64_t i = 0; i < ph.numel(); ++i)
      nl_index.push_back(map * n_psi + ph[i].item<int64_t>()),
          nl_p.push_back(exps[i].item<double>());
  }
  plan->height = H, plan->width = W;
  const at::Tensor psi_plain = wp.psi.index_select(0, wp.field_psi_p1);
  plan->psi_plain = cross ? at::cat({psi_plain, psi_plain}, 0) : psi_plain;
  plan->plain_per_map = n_plain;
  plan->nl_index = longs(nl_index);
  plan->nl_p = at::tensor(nl_p, at::kDouble).to(dev, context.real_dtype());
  plan->conj_source = longs(conj_source);
  plan->box_tasks =
      make_box_tasks(std::move(copies), box_indices, buffer_per_map, n_sources_total, dev);
  return {plan, longs(rows), longs(mfa), longs(mfb)};
}

} // namespace

std::shared_ptr<const WphPlan> make_wph_plan(const WphOptions& o, const Grid2d& grid,
                                             const Context& context) {
  auto plan = std::make_shared<WphPlan>();
  WphPlan& wp = *plan;
  const int64_t height = grid.height, width = grid.width;
  wp.height = height, wp.width = width;
  wp.periodic = grid.boundary == Boundary::Periodic;
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
  if (!wp.periodic) {
    wp.cut_y = wp.cut_x = static_cast<int64_t>(o.cut_param * std::pow(2.0, o.J));
    if (2 * wp.cut_y >= M || 2 * wp.cut_x >= N || wp.cut_y < 0)
      throw ValueError("WPH: non-periodic cut of " + std::to_string(wp.cut_y) +
                       " pixels per side leaves nothing of a " + std::to_string(M) + " x " +
                       std::to_string(N) + " map; lower cut_param or J");
    Mc = M - 2 * wp.cut_y;
    Nc = N - 2 * wp.cut_x;
  }
  const int nt = (1 + o.complex_data) * o.L;
  wp.psi = bump_steerable_bank(M, N, o.J, o.L, nt, context.options());

  // Moments, grouped into covariances (consecutive moments sharing the pair of fields).
  const std::vector<WphMoment> moments = wph_default_moments(o.J, o.L, o.dn, o.A, o.complex_data);
  std::vector<int64_t> tx(moments.size()), ty(moments.size());
  for (std::size_t i = 0; i < moments.size(); ++i) {
    const WphMoment& m = moments[i];
    const double theta = m.t2 * pi / o.L, alpha = m.a * pi / o.A;
    const double r = m.n != 0 ? std::pow(2.0, m.n) : 0.0;
    tx[i] = pymod(static_cast<int64_t>(std::nearbyint(r * std::cos(theta - alpha))), N);
    ty[i] = pymod(static_cast<int64_t>(std::nearbyint(r * std::sin(theta - alpha))), M);
  }
  if (!wp.periodic) { // pywph pads by the largest shift index
    wp.pad_x = *std::max_element(tx.begin(), tx.end());
    wp.pad_y = *std::max_element(ty.begin(), ty.end());
  }
  std::vector<int64_t> label_rows;
  std::vector<int64_t> class_ids;
  for (std::size_t i = 0; i < moments.size(); ++i) {
    const WphMoment& m = moments[i];
    const int psi1 = m.j1 * nt + m.t1, psi2 = m.j2 * nt + m.t2;
    if (wp.covariances.empty() || i == 0 || moments[i - 1].j1 != m.j1 ||
        moments[i - 1].t1 != m.t1 || moments[i - 1].p1 != m.p1 || moments[i - 1].j2 != m.j2 ||
        moments[i - 1].t2 != m.t2 || moments[i - 1].p2 != m.p2 || moments[i - 1].pseudo != m.pseudo)
      wp.covariances.push_back({psi1, m.p1, psi2, m.p2, m.pseudo, {}, {}, {}, {}});
    WphPlan::Covariance& c = wp.covariances.back();
    c.moments.push_back(static_cast<int64_t>(i));
    c.tx.push_back(tx[i]);
    c.ty.push_back(ty[i]);
    double weight = 1.0;
    if (!wp.periodic) {
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
  wp.phi = gaussian_lowpass_bank(M, N, js, context.options());
  int64_t row = static_cast<int64_t>(moments.size());
  for (std::size_t k = 0; k < js.size(); ++k)
    for (auto [p1, p2] : {std::pair{0, 0}, {0, 1}, {1, 1}})
      for (int pseudo = 0; pseudo <= (o.complex_data && p1 == 1 && p2 == 1 ? 1 : 0); ++pseudo) {
        wp.scalings.push_back({static_cast<int>(k), p1, p2, pseudo, row++});
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
  for (const auto& cv : wp.covariances) {
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
  wp.n_fields = n_base + static_cast<int64_t>(conj_src.size());
  wp.field_psi_p1 = longs(psi_p1), wp.field_psi_p0 = longs(psi_p0), wp.field_psi_ph = longs(psi_ph);
  wp.field_exp_ph =
      at::tensor(exp_ph, at::kDouble).to(dev, context.real_dtype()).view({1, -1, 1, 1});
  wp.field_conj_src = longs(conj_src);

  std::vector<int64_t> all_rows;
  for (bool shifted : {false, true}) {
    WphPlan::Group g;
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
    for (const auto& cv : wp.covariances) {
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
    wp.groups.push_back(std::move(g));
  }
  if (wp.periodic) {
    wp.spectral = spectral_tables(wp, base_of, false, context);
    wp.cross = spectral_tables(wp, base_of, true, context);
    all_rows.clear();
    const at::Tensor rows = wp.spectral.rows.cpu();
    all_rows.assign(rows.data_ptr<int64_t>(), rows.data_ptr<int64_t>() + rows.numel());
  }
  std::vector<int64_t> sm_rows, sm_a, sm_b;
  std::vector<uint8_t> sm_pseudo;
  const int64_t n_phi = static_cast<int64_t>(js.size());
  for (const WphPlan::Scaling& sc : wp.scalings) {
    all_rows.push_back(sc.row), sm_rows.push_back(sc.row);
    sm_a.push_back(sc.p1 * n_phi + sc.phi), sm_b.push_back(sc.p2 * n_phi + sc.phi);
    sm_pseudo.push_back(static_cast<uint8_t>(sc.pseudo));
  }
  wp.sm_rows = longs(sm_rows), wp.sm_a = longs(sm_a), wp.sm_b = longs(sm_b);
  wp.sm_pseudo = at::tensor(std::vector<int64_t>(sm_pseudo.begin(), sm_pseudo.end()), at::kLong)
                     .to(dev)
                     .ne(0)
                     .view({1, -1, 1, 1});
  wp.row_order = at::argsort(at::tensor(all_rows, at::kLong)).to(dev);

  wp.labels.classes = kWphClasses;
  wp.labels.label_names = kWphLabels;
  wp.labels.class_id = at::tensor(class_ids, at::kLong);
  wp.labels.labels = at::tensor(label_rows, at::kLong).view({-1, 9});
  return plan;
}

} // namespace demix::detail

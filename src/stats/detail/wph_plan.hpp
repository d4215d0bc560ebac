#pragma once
// What a WphOperator builds once and every call reads: the model's moments (wph_moments.cpp), and
// the fields, covariance groups, scaling moments and Fourier-space tables that compute them
// (wph_plan.cpp). Immutable once built; shared by copies of the operator.

#include <demix/core/context.hpp>
#include <demix/core/grid.hpp>
#include <demix/stats/coefficients.hpp>
#include <demix/stats/wph.hpp>

#include "stats/detail/wph_spectral.hpp"

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace demix::detail {

/// One moment of the model: class (index into kWphClasses), both sides' wavelet (j, t) and
/// harmonic p, the shift (n, a) and whether side b is conjugated (pseudo moments of complex maps).
struct WphMoment {
  int cls;
  int j1, t1, p1, j2, t2, p2, n, a, pseudo;
};

/// The class names and label columns of WPH coefficients, in pywph's order.
extern const std::vector<std::string> kWphClasses;
extern const std::vector<std::string> kWphLabels;

/// pywph's default model (classes S11, S00, S01, C01, Cphase), in pywph's order.
std::vector<WphMoment> wph_default_moments(int J, int L, int dn, int A, bool complex_data);

struct WphPlan {
  struct Covariance { // one pair of fields; several moments (shifts) each
    int psi1, p1, psi2, p2, pseudo;
    std::vector<int64_t> moments; // rows of the output
    std::vector<int64_t> tx, ty;  // shift of each moment, as indices in the padded grid
    std::vector<double> weight;   // NonPeriodic reweighting of each moment
  };
  struct Scaling { // one scaling moment
    int phi;       // index into phi
    int p1, p2, pseudo;
    int64_t row;
  };
  /// Periodic maps: covariances in Fourier space (wph_spectral.hpp).
  struct SpectralTables {
    std::shared_ptr<const SpectralPlan> plan;
    at::Tensor rows;   // (n_m) int64: output row of each moment, in the plan's order
    at::Tensor fa, fb; // (n_m) int64: fields of each moment (for their deviations)
  };
  /// Covariances computed the same way in the spatial path (NonPeriodic maps): only tau = 0 (a
  /// Gram matrix), or with shifts (products of Fourier transforms); index tables on the device.
  struct Group {
    bool shifted = false;
    int64_t n_cov = 0;
    std::vector<int64_t> first_moment; // per covariance: offset of its moments (size n_cov + 1)
    at::Tensor fields;                 // shifted: union of the fields of both sides (n) int64
    at::Tensor fields_a, fields_b;     // plain: fields of each side
    at::Tensor fa, fb;                 // (n_cov) int64: position of each side's field
    at::Tensor m_pos, m_y, m_x;        // (n_moments) int64: covariance position, shift
    at::Tensor m_weight;               // (n_moments) real: NonPeriodic reweighting
    at::Tensor m_row;                  // (n_moments) int64: output row
  };

  int64_t height = 0, width = 0;
  bool periodic = true;
  int64_t cut_y = 0, cut_x = 0; // NonPeriodic border
  int64_t pad_y = 0, pad_x = 0; // NonPeriodic zero padding for shifts
  at::Tensor psi;               // (J * n_angles, H, W) real, Fourier
  at::Tensor phi;               // (n_lowpass, H, W) real, Fourier
  std::vector<Covariance> covariances;
  std::vector<Group> groups;
  int64_t n_fields = 0;
  at::Tensor field_psi_p1, field_psi_p0, field_psi_ph; // wavelets of the fields, by harmonic
  at::Tensor field_exp_ph;                             // (1, n, 1, 1) exponents p >= 2
  at::Tensor field_conj_src;                           // fields conjugated for pseudo moments
  at::Tensor row_order;    // (K) int64: output position of each computed value
  at::Tensor sm_rows;      // (n_sm) int64: output rows of the scaling moments
  at::Tensor sm_a, sm_b;   // (n_sm) int64: each side of a scaling moment in [|low|, low] (2 n_phi)
  at::Tensor sm_pseudo;    // (1, n_sm, 1, 1) bool: side b conjugated
  SpectralTables spectral; // one map (periodic only)
  SpectralTables cross;    // side a from one map, side b from another (periodic only)
  std::vector<Scaling> scalings;
  Coefficients labels; // values undefined

  /// Rows (pixels) of the fields: the grid less the NonPeriodic cut, plus the shift padding.
  int64_t field_height() const { return height - 2 * cut_y + pad_y; }
  int64_t field_width() const { return width - 2 * cut_x + pad_x; }
};

/// The plan of `options` on `grid`, its tensors on `context`'s device. The options' checks
/// (ValueError, ShapeError) are made here.
std::shared_ptr<const WphPlan> make_wph_plan(const WphOptions& options, const Grid2d& grid,
                                             const Context& context);

} // namespace demix::detail

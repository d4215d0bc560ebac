#pragma once
// Wavelet phase harmonics (Allys+2020, Regaldo-Saint Blancard+2021/2023), defined as pywph 1.1
// defines them: bump-steerable wavelets, Gaussian low-pass, the default model
// (S11, S00, S01, C01, Cphase, L) on the "exp" shift grid, norm none/auto, periodic or not.
//
//   C(lambda1, p1, lambda2, p2, tau) = < ([x*psi1]^p1 - m1)(r + tau) conj([x*psi2]^p2 - m2)(r) > /
//   (s1 s2)
//
// with [z]^p = |z| e^{i p arg z} (p = 0: modulus), m the spatial mean and s = 1 (norm None) or the
// standard deviation (norm Auto; the means and deviations then come from a reference map).

#include <demix/core/context.hpp>
#include <demix/stats/coefficients.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace demix {

namespace detail {
struct SpectralPlan;
}

enum class WphNorm {
  None, ///< subtract each field's own spatial mean (covariances), no scaling
  Auto, ///< subtract the reference map's means and divide by its standard deviations (pywph "auto")
};

enum class WphBoundary {
  Periodic, ///< periodic maps (simulation boxes): circular convolutions and shifts (pywph pbc=True)
  NonPeriodic, ///< cut 2^J * cut_param pixels on each side, zero-pad, reweight shifts (pbc=False)
};

struct WphOptions {
  int J = 7;                 ///< number of dyadic scales: 1 <= J and 2^J < min(H, W)
  int L = 4;                 ///< number of angles in [0, pi)
  int dn = 0;                ///< radial steps of the shift grid tau (0: no shifts); pywph's dn
  int A = 4;                 ///< azimuthal steps in [0, pi) of the shift grid; pywph's A
  bool complex_data = false; ///< complex maps (Q + iU): 2L angles in [0, 2 pi) and pseudo moments
  WphNorm norm = WphNorm::None;
  WphBoundary boundary = WphBoundary::Periodic;
  double cut_param = 0.5; ///< NonPeriodic only: border cut, in units of 2^J pixels
  /// Memory the intermediate results may take (bytes). Batches are split into slices of maps and
  /// covariances into chunks to stay within it. 0: 40% of the device's free memory at each call.
  int64_t memory_bytes = 0;
  /// On CUDA, loss_and_grad() records a call on periodic maps as a CUDA graph and replays it for
  /// later calls of the same shapes, when the call's intermediates fit one slice of at most 1 GiB
  /// (then the host's dispatch of its few hundred ops, not the GPU, sets its time). A recording
  /// keeps that memory reserved while the operator lives (two shapes at most, the latest used).
  /// false: every call dispatches its ops.
  bool cuda_graphs = true;
};

/// Builds the filters and the moment list once; forward() is const and batched.
class WphOperator {
public:
  WphOperator(const WphOptions& options, int64_t height, int64_t width, const Context& context);

  /// WPH and scaling moments of each map. Labels: j1 t1 p1 j2 t2 p2 n a pseudo (pywph's 9-tuple);
  /// for class "L" (scaling moments) j1 = j2 = the low-pass scale j (which may be -1), t = n = a =
  /// -1. Complex values. Differentiable with respect to x.
  Coefficients forward(const at::Tensor& x /* (B, H, W) or (H, W), real or complex */) const;

  /// Cross-WPH (pywph's cross=True): every moment with its first field [x*psi1]^p1 from x and its
  /// second field [y*psi2]^p2 from y, scaling moments alike; forward_cross(x, x) == forward(x).
  /// Periodic maps; norm Auto divides each field by its own map's deviation (held constant), as
  /// pywph's first call does. Differentiable with respect to x and y.
  Coefficients forward_cross(const at::Tensor& x /* (B, H, W) or (H, W) */,
                             const at::Tensor& y /* like x */) const;

  /// The loss sum_k w_k |phi_k(x) - target_k|^2 (summed over the batch) and, if `grad` is given,
  /// its gradient with respect to x, computed chunk by chunk so that memory stays at the wavelet
  /// transform plus one chunk (forward() + backward() keeps every chunk's graph alive).
  at::Tensor loss_and_grad(const at::Tensor& x /* (B, H, W) or (H, W) */,
                           const at::Tensor& target /* (K) or (B, K) complex */,
                           const at::Tensor& weights /* (K) real, or undefined for 1 */,
                           at::Tensor* grad /* -> like x, or null */) const; // -> () real

  /// Norm Auto: store the means and deviations of `reference` (one map, or B maps matching the
  /// batch later given to forward), reused by every later forward (as pywph's first call does).
  /// Without a reference, Auto normalises each map by its own statistics, held constant for
  /// gradients (as pywph's stored normalisation is).
  void set_reference(const at::Tensor& reference /* (B0, H, W) or (H, W) */);
  void clear_reference();
  bool has_reference() const { return ref_field_mean_.defined(); }

  const WphOptions& options() const { return options_; }
  int64_t size() const { return labels_.size(); }
  /// The labels of forward()'s output (values left undefined).
  const Coefficients& labels() const { return labels_; }

private:
  struct Covariance { // one pair of fields; several moments (shifts) each
    int psi1, p1, psi2, p2, pseudo;
    std::vector<int64_t> moments; // rows of the output
    std::vector<int64_t> tx, ty;  // shift of each moment, as indices in the padded grid
    std::vector<double> weight;   // NonPeriodic reweighting of each moment
  };
  struct Scaling { // one scaling moment
    int phi;       // index into phi_
    int p1, p2, pseudo;
    int64_t row;
  };
  struct Fields;
  struct SpectralTables { // periodic maps: covariances in Fourier space
                          // (src/stats/detail/wph_spectral.hpp)
    std::shared_ptr<const detail::SpectralPlan> plan;
    at::Tensor rows;   // (n_m) int64: output row of each moment, in the plan's order
    at::Tensor fa, fb; // (n_m) int64: fields of each moment (for their deviations)
  };
  SpectralTables build_spectral_plan(const std::map<std::tuple<int, int, int>, int64_t>& field_of,
                                     bool cross) const;
  /// Covariances computed the same way (only tau = 0: a Gram matrix; or with shifts: products of
  /// Fourier transforms), with their index tables on the device so forward() copies nothing.
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
  /// Receives each chunk of moments: values (B, n) and their output rows (n), in a fixed order.
  using Sink = std::function<void(const at::Tensor& values, const at::Tensor& rows)>;

  at::Tensor prepare(const at::Tensor& x) const;  // (B, H, W) complex on the device
  Fields transform(const at::Tensor& xc) const;   // wavelet and low-pass fields
  at::Tensor build_fields(const Fields& f) const; // (B, n_fields, h, w): [x*psi]^p (conj)
  /// Every moment, chunk by chunk, into `sink`. ref_*: the reference's field statistics (Auto).
  /// field_stats / stats_sm, if given, receive the statistics used (for set_reference()).
  void compute(const Fields& f, WphNorm norm, const at::Tensor* ref_mean, const at::Tensor* ref_std,
               const at::Tensor* ref_sm, const Sink& sink, at::Tensor* field_stats,
               at::Tensor* stats_sm, bool cut_graph = false) const;
  void compute_spectral(const SpectralTables& tables, const at::Tensor& xhat /* (B, maps, H, W) */,
                        const at::Tensor& wt /* (B, maps * n_psi, H, W) */, WphNorm norm,
                        const at::Tensor* ref_mean, const at::Tensor* ref_std, const Sink& sink,
                        at::Tensor* field_stats) const;
  void compute_spatial(const Fields& f, WphNorm norm, const at::Tensor* ref_mean,
                       const at::Tensor* ref_std, const Sink& sink, at::Tensor* field_stats,
                       bool cut_graph) const;
  void compute_scaling(const at::Tensor& low_a, const at::Tensor& low_b, WphNorm norm,
                       const at::Tensor* ref_sm, const Sink& sink, at::Tensor* stats_sm) const;
  int64_t budget() const;                      // memory_bytes, or the automatic budget
  int64_t batch_slice(int64_t batch) const;    // maps per slice, from the budget
  int64_t shifted_chunks(int64_t batch) const; // chunks of shifted covariances for `batch` maps
  template <typename Body> void for_each_slice(const at::Tensor& xc, const Body& body) const;
  at::Tensor loss_and_grad_eager(const at::Tensor& x, const at::Tensor& target,
                                 const at::Tensor& weights, at::Tensor* grad) const;
  bool graph_eligible(const at::Tensor& x) const; // loss_and_grad may replay a recording for x
  struct GraphCache; // recorded loss_and_grad calls (src/stats/wph.cpp)
  /// Owns the recordings, which call this operator: a copied or moved operator starts with none.
  struct GraphCacheHandle {
    std::unique_ptr<GraphCache> cache;
    GraphCacheHandle();
    GraphCacheHandle(const GraphCacheHandle&);
    GraphCacheHandle& operator=(const GraphCacheHandle&);
    ~GraphCacheHandle();
  };

  WphOptions options_;
  int64_t height_, width_;
  int64_t cut_y_ = 0, cut_x_ = 0; // NonPeriodic border
  int64_t pad_y_ = 0, pad_x_ = 0; // NonPeriodic zero padding for shifts
  Context context_;
  at::Tensor psi_; // (J * n_angles, H, W) real, Fourier
  at::Tensor phi_; // (n_lowpass, H, W) real, Fourier
  std::vector<Covariance> covariances_;
  std::vector<Group> groups_;
  int64_t n_fields_ = 0;
  at::Tensor field_psi_p1_, field_psi_p0_, field_psi_ph_; // wavelets of the fields, by harmonic
  at::Tensor field_exp_ph_;                               // (1, n, 1, 1) exponents p >= 2
  at::Tensor field_conj_src_;                             // fields conjugated for pseudo moments
  at::Tensor row_order_;    // (K) int64: output position of each computed value
  at::Tensor sm_rows_;      // (n_sm) int64: output rows of the scaling moments
  at::Tensor sm_a_, sm_b_;  // (n_sm) int64: each side of a scaling moment in [|low|, low] (2 n_phi)
  at::Tensor sm_pseudo_;    // (1, n_sm, 1, 1) bool: side b conjugated
  SpectralTables spectral_; // one map (periodic only)
  SpectralTables cross_;    // side a from one map, side b from another (periodic only)
  std::vector<Scaling> scalings_;
  Coefficients labels_;
  at::Tensor ref_field_mean_; // (B0, n_fields) complex: reference means of the fields
  at::Tensor ref_field_std_;  // (B0, n_fields) complex (real values): reference deviations
  at::Tensor ref_sm_;         // (B0, n_sm, 2, 2) complex: scaling-moment statistics
  GraphCacheHandle graphs_;   // emptied when the reference changes
};

/// One-shot convenience: builds the operator for x's shape and applies it.
Coefficients wph(const at::Tensor& x /* (B, H, W) */, const WphOptions& options = {},
                 const Context& context = Context());

} // namespace demix

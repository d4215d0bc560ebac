#include <demix/core/errors.hpp>
#include <demix/models/flow.hpp>

#include "models/detail/flow_frozen.hpp"
#include "models/detail/nn.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace demix {

namespace {

constexpr std::size_t kShift = 0, kLogScale = 1, kFirstBlock = 2;

void check_options(const FlowOptions& o) {
  const auto bad = [](const std::string& what) { throw ValueError("flow options: " + what); };
  if (o.dim < 2) bad("dim must be >= 2, got " + std::to_string(o.dim));
  if (o.blocks < 1) bad("blocks must be >= 1, got " + std::to_string(o.blocks));
  if (o.hidden.empty()) bad("hidden is empty (a MADE needs at least one hidden layer)");
  for (auto h : o.hidden)
    if (h < o.dim - 1)
      bad("each hidden width must be >= dim - 1 = " + std::to_string(o.dim - 1) +
          " so that every autoregressive degree is represented, got " + std::to_string(h));
  if (!(o.max_log_scale > 0) || !std::isfinite(o.max_log_scale))
    bad("max_log_scale must be positive, got " + std::to_string(o.max_log_scale));
}

/// MADE masks (Germain et al. 2015). Inputs have degrees 1..D, hidden unit k has degree
/// 1 + k mod (D - 1), and output o (mu_i for o = i, alpha_i for o = D + i) has degree i + 1.
/// A hidden unit sees inputs of degree <= its own; an output sees hidden units of degree < its own,
/// so output i depends on inputs 0..i-1 only.
std::vector<at::Tensor> made_masks(const FlowOptions& o) {
  const int64_t D = o.dim;
  std::vector<std::vector<int64_t>> degrees{{}};
  for (int64_t i = 0; i < D; ++i) degrees[0].push_back(i + 1);
  for (auto h : o.hidden) {
    degrees.emplace_back();
    for (int64_t k = 0; k < h; ++k) degrees.back().push_back(1 + k % (D - 1));
  }
  std::vector<at::Tensor> masks;
  for (std::size_t l = 1; l <= o.hidden.size() + 1; ++l) {
    const auto& prev = degrees[l - 1];
    const bool output = l == o.hidden.size() + 1;
    const int64_t n_out = output ? 2 * D : o.hidden[l - 1];
    at::Tensor m = at::zeros({n_out, static_cast<int64_t>(prev.size())}, at::kFloat);
    auto a = m.accessor<float, 2>();
    for (int64_t r = 0; r < n_out; ++r)
      for (std::size_t c = 0; c < prev.size(); ++c)
        a[r][c] = output ? (r % D + 1 > prev[c]) : (degrees[l][r] >= prev[c]);
    masks.push_back(m);
  }
  return masks;
}

} // namespace

/// The FrozenFlow of the weights (and masks) it was built from, each identified by its tensor and
/// version counter: replaced tensors (to(), restore, set_standardisation) and in-place updates
/// (an optimiser step) both invalidate it.
struct LatentFlow::FrozenCache {
  std::mutex mutex;
  std::vector<at::Tensor> sources;
  std::vector<int64_t> versions;
  std::shared_ptr<const detail::FrozenFlow> flow;

  std::shared_ptr<const detail::FrozenFlow> get(const NamedTensors& params,
                                                const std::vector<at::Tensor>& masks,
                                                const FlowOptions& options) {
    std::vector<at::Tensor> now;
    for (const auto& p : params) now.push_back(p.tensor);
    now.insert(now.end(), masks.begin(), masks.end());
    std::lock_guard<std::mutex> lock(mutex);
    bool valid = flow && sources.size() == now.size();
    for (std::size_t i = 0; valid && i < now.size(); ++i)
      valid = sources[i].is_same(now[i]) && versions[i] == now[i]._version();
    if (!valid) {
      std::vector<std::vector<std::pair<at::Tensor, at::Tensor>>> layers;
      for (int64_t k = 0; k < options.blocks; ++k) {
        layers.emplace_back();
        for (std::size_t l = 0; l < masks.size(); ++l) {
          const std::size_t w = kFirstBlock + 2 * (masks.size() * static_cast<std::size_t>(k) + l);
          layers.back().emplace_back(params[w].tensor, params[w + 1].tensor);
        }
      }
      flow = detail::freeze_flow(params[kShift].tensor, params[kLogScale].tensor, layers, masks,
                                 options.max_log_scale);
      sources = now;
      versions.clear();
      for (const auto& t : now) versions.push_back(t._version());
    }
    return flow;
  }
};

std::int64_t LatentFlow::weight_count(const FlowOptions& o) {
  check_options(o);
  // The constructor's shapes, below, counted without allocating (the masks are as large again,
  // once).
  detail::SaturatingCount n;
  n.add({2, o.dim});
  for (std::size_t l = 0; l <= o.hidden.size(); ++l) {
    const int64_t n_in = l == 0 ? o.dim : o.hidden[l - 1];
    const int64_t n_out = l == o.hidden.size() ? 2 * o.dim : o.hidden[l];
    n.add({o.blocks, n_out, n_in});
    n.add({o.blocks, n_out});
  }
  return n.total;
}

LatentFlow::LatentFlow(const FlowOptions& options, std::uint64_t seed)
    : options_(options), frozen_(std::make_shared<FrozenCache>()) {
  if (const std::int64_t n = weight_count(options_); n > detail::kMaxWeights)
    throw ValueError("flow options ask for " +
                     (n == INT64_MAX ? std::string("more than 2^63") : std::to_string(n)) +
                     " weights (at most 2^32)");
  at::Generator gen = detail::make_cpu_generator(seed);
  const int64_t D = options_.dim;
  params_.push_back({"standardise.shift", at::zeros({D}, at::kFloat)});
  params_.push_back({"standardise.log_scale", at::zeros({D}, at::kFloat)});
  masks_ = made_masks(options_);
  for (int64_t k = 0; k < options_.blocks; ++k) {
    for (std::size_t l = 0; l < masks_.size(); ++l) {
      const std::string n = "block" + std::to_string(k) + ".layer" + std::to_string(l);
      const int64_t n_out = masks_[l].size(0), n_in = masks_[l].size(1);
      const bool last = l + 1 == masks_.size();
      // The last layer starts at zero: each block starts as the identity (mu = 0, alpha = 0).
      params_.push_back(
          {n + ".weight", last ? at::zeros({n_out, n_in}, at::kFloat)
                               : detail::uniform({n_out, n_in}, std::sqrt(3.0 / n_in), gen)});
      params_.push_back({n + ".bias", at::zeros({n_out}, at::kFloat)});
    }
  }
}

void LatentFlow::check(const at::Tensor& t, const char* what) const {
  if (!t.defined() || t.dim() != 2 || t.size(1) != options_.dim)
    throw ShapeError(std::string("flow ") + what + ": expected shape (N, " +
                     std::to_string(options_.dim) + "), got " +
                     (t.defined() ? detail::shape_string(t.sizes()) : "undefined"));
  if (t.device() != device())
    throw DeviceError(std::string("flow ") + what + " are on " + t.device().str() +
                      ", the flow on " + device().str());
  if (t.scalar_type() != dtype())
    throw ValueError(std::string("flow ") + what + " are " + c10::toString(t.scalar_type()) +
                     ", the flow is " + c10::toString(dtype()));
}

std::pair<at::Tensor, at::Tensor> LatentFlow::made(std::size_t block, const at::Tensor& x) const {
  const int64_t D = options_.dim;
  const std::size_t first = kFirstBlock + 2 * masks_.size() * block;
  at::Tensor h = x;
  for (std::size_t l = 0; l < masks_.size(); ++l) {
    const at::Tensor& w = params_[first + 2 * l].tensor;
    h = at::linear(h, w * masks_[l], params_[first + 2 * l + 1].tensor);
    if (l + 1 < masks_.size()) h = at::tanh(h);
  }
  const double A = options_.max_log_scale;
  return {h.narrow(1, 0, D), A * at::tanh(h.narrow(1, D, D) / A)};
}

std::pair<at::Tensor, at::Tensor> LatentFlow::forward(const at::Tensor& z) const {
  check(z, "latents");
  const at::Tensor& log_scale = params_[kLogScale].tensor;
  at::Tensor x = (z - params_[kShift].tensor) * at::exp(-log_scale);
  at::Tensor log_det = (-log_scale.sum()).expand({z.size(0)});
  for (int64_t k = 0; k < options_.blocks; ++k) {
    const auto [mu, alpha] = made(static_cast<std::size_t>(k), x);
    x = ((x - mu) * at::exp(-alpha)).flip({1});
    log_det = log_det - alpha.sum(1);
  }
  return {x, log_det};
}

at::Tensor LatentFlow::inverse(const at::Tensor& u) const {
  check(u, "base vectors");
  at::Tensor x = u;
  for (int64_t k = options_.blocks - 1; k >= 0; --k) {
    const at::Tensor target = x.flip({1}); // block k's output, in its own order
    // x_i = target_i exp(alpha_i) + mu_i with mu_i, alpha_i functions of x_<i: pass i fixes x_i.
    at::Tensor y = at::zeros_like(target);
    for (int64_t i = 0; i < options_.dim; ++i) {
      const auto [mu, alpha] = made(static_cast<std::size_t>(k), y);
      y = target * at::exp(alpha) + mu;
    }
    x = y;
  }
  return x * at::exp(params_[kLogScale].tensor) + params_[kShift].tensor;
}

at::Tensor LatentFlow::log_prob(const at::Tensor& z) const {
  if (std::none_of(params_.begin(), params_.end(),
                   [](const NamedTensor& p) { return p.tensor.requires_grad(); })) {
    check(z, "latents");
    return detail::frozen_flow_log_prob(frozen_->get(params_, masks_, options_), z);
  }
  const auto [u, log_det] = forward(z);
  const double log_norm = 0.5 * static_cast<double>(options_.dim) * std::log(2 * M_PI);
  return -0.5 * u.square().sum(1) - log_norm + log_det;
}

at::Tensor LatentFlow::sample(std::int64_t n, at::Generator& generator) const {
  if (n < 0) throw ValueError("flow sample: n must be >= 0, got " + std::to_string(n));
  const at::Tensor u = at::randn({n, options_.dim}, generator, at::kDouble);
  return inverse(u.to(device(), dtype()));
}

void LatentFlow::set_standardisation(const at::Tensor& mean, const at::Tensor& std) {
  const int64_t D = options_.dim;
  if (!mean.defined() || !std.defined() || mean.numel() != D || std.numel() != D)
    throw ShapeError("flow set_standardisation: mean and std must have " + std::to_string(D) +
                     " values");
  const at::Tensor s = std.detach().to(at::kDouble).flatten().cpu();
  if (!(s > 0).all().item<bool>() || !at::isfinite(s).all().item<bool>() ||
      !at::isfinite(mean.detach().to(at::kDouble)).all().item<bool>())
    throw ValueError("flow set_standardisation: std must be positive and mean finite");
  auto& shift = params_[kShift].tensor;
  auto& log_scale = params_[kLogScale].tensor;
  const bool grad = shift.requires_grad();
  shift = mean.detach().flatten().to(shift.device(), shift.scalar_type()).requires_grad_(grad);
  log_scale = s.log().to(log_scale.device(), log_scale.scalar_type()).requires_grad_(grad);
}

std::int64_t LatentFlow::parameter_count() const { return detail::element_count(params_); }

void LatentFlow::to(c10::Device device, c10::ScalarType dtype) {
  if (!c10::isFloatingType(dtype))
    throw ValueError(std::string("LatentFlow::to: dtype must be floating, got ") +
                     c10::toString(dtype));
  detail::move_to(params_, device, dtype);
  for (auto& m : masks_) m = m.to(device, dtype);
  frozen_ = std::make_shared<FrozenCache>(); // (the old one would keep the old weights alive)
}

c10::Device LatentFlow::device() const { return detail::device_of(params_); }
c10::ScalarType LatentFlow::dtype() const { return detail::dtype_of(params_); }

LatentFlow LatentFlow::clone() const {
  LatentFlow copy = *this;
  copy.frozen_ = std::make_shared<FrozenCache>();
  for (auto& p : copy.params_)
    p.tensor = p.tensor.detach().clone().requires_grad_(p.tensor.requires_grad());
  return copy;
}

} // namespace demix

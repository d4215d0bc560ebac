#include <demix/core/errors.hpp>
#include <demix/models/vae.hpp>

#include "models/detail/nn.hpp"

#include <ATen/ATen.h>

#include <cmath>

namespace demix {

namespace {

constexpr double kMaxLogOutput = 30; // exp(30) s_b ~ 1e13 sigma: unreachable by real galaxies,
                                     // it only keeps a wandering MAP fit away from float overflow

std::string list_text(const std::vector<std::int64_t>& v) {
  std::string s;
  for (auto x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return "{" + s + "}";
}

void check_options(const VaeOptions& o) {
  const auto bad = [](const std::string& what) { throw ValueError("VAE options: " + what); };
  if (o.bands < 1) bad("bands must be >= 1, got " + std::to_string(o.bands));
  if (o.stamp_size < 3 || o.stamp_size % 2 == 0)
    bad("stamp_size must be odd and >= 3, got " + std::to_string(o.stamp_size));
  if (o.latent_dim < 2) bad("latent_dim must be >= 2, got " + std::to_string(o.latent_dim));
  if (o.encoder_channels.empty()) bad("encoder_channels is empty");
  if (o.decoder_channels.size() < 2)
    bad("decoder_channels needs at least 2 entries (one upsampling), got " +
        list_text(o.decoder_channels));
  for (auto c : o.encoder_channels)
    if (c < 1) bad("encoder_channels must be positive, got " + list_text(o.encoder_channels));
  for (auto c : o.decoder_channels)
    if (c < 1) bad("decoder_channels must be positive, got " + list_text(o.decoder_channels));
  if (o.dense_units < 1) bad("dense_units must be >= 1, got " + std::to_string(o.dense_units));
  if (static_cast<std::int64_t>(o.band_scales.size()) != o.bands)
    bad("band_scales has " + std::to_string(o.band_scales.size()) + " values for " +
        std::to_string(o.bands) + " bands");
  for (std::size_t b = 0; b < o.band_scales.size(); ++b)
    if (!(o.band_scales[b] > 0) || !std::isfinite(o.band_scales[b]))
      bad("band_scales[" + std::to_string(b) + "] must be positive and finite, got " +
          std::to_string(o.band_scales[b]));
}

// conv 3x3, stride 2, padding 1: ceil(s / 2), written so that s = INT64_MAX (options read from a
// corrupt file) cannot overflow.
std::int64_t halve(std::int64_t s) { return s - s / 2; }

void check_input(const at::Tensor& t, const char* what, std::vector<std::int64_t> expected,
                 c10::Device device, c10::ScalarType dtype) {
  if (!t.defined()) throw ShapeError(std::string("VAE ") + what + ": undefined tensor");
  bool ok = t.dim() == static_cast<int64_t>(expected.size());
  for (std::size_t i = 1; ok && i < expected.size(); ++i) ok = t.size(i) == expected[i];
  if (!ok) {
    std::string want = "(N";
    for (std::size_t i = 1; i < expected.size(); ++i) want += ", " + std::to_string(expected[i]);
    throw ShapeError(std::string("VAE ") + what + ": expected shape " + want + "), got " +
                     detail::shape_string(t.sizes()));
  }
  if (t.device() != device)
    throw DeviceError(std::string("VAE ") + what + " are on " + t.device().str() +
                      ", the network on " + device.str());
  if (t.scalar_type() != dtype)
    throw ValueError(std::string("VAE ") + what + " are " + c10::toString(t.scalar_type()) +
                     ", the network is " + c10::toString(dtype));
}

} // namespace

std::int64_t GalaxyVae::weight_count(const VaeOptions& o) {
  check_options(o);
  // The constructor's shapes, below, counted without allocating.
  detail::SaturatingCount n;
  const int64_t B = o.bands, D = o.latent_dim, H = o.dense_units;
  int64_t side = o.stamp_size, in = B;
  for (const int64_t c : o.encoder_channels) {
    n.add({c, in, 9});
    n.add({c, c, 9});
    n.add({2, c});
    in = c;
    side = halve(side);
  }
  const int64_t flat = detail::SaturatingCount::product({in, side, side});
  n.add({H, flat});
  n.add({H});
  n.add({2, D, H});
  n.add({2, D});
  const auto& dc = o.decoder_channels;
  int64_t bottom = o.stamp_size;
  for (std::size_t i = 1; i < dc.size(); ++i) bottom = halve(bottom);
  n.add({H, D});
  n.add({H});
  n.add({dc[0], bottom, bottom, H});
  n.add({dc[0], bottom, bottom});
  for (std::size_t i = 0; i + 1 < dc.size(); ++i) {
    n.add({4, dc[i + 1], dc[i], 9});
    n.add({4, dc[i + 1]});
  }
  n.add({B, dc.back(), 9});
  n.add({B});
  return n.total;
}

GalaxyVae::GalaxyVae(const VaeOptions& options, std::uint64_t seed) : options_(options) {
  // Checks the options, and that their products (in * side * side...) cannot overflow below.
  if (const std::int64_t n = weight_count(options_); n > detail::kMaxWeights)
    throw ValueError("VAE options ask for " +
                     (n == INT64_MAX ? std::string("more than 2^63") : std::to_string(n)) +
                     " weights (at most 2^32)");
  at::Generator gen = detail::make_cpu_generator(seed);
  const auto add = [&](const std::string& name, std::vector<int64_t> sizes, double bound) {
    params_.push_back({name, detail::uniform(sizes, bound, gen)});
  };
  const auto add_zero = [&](const std::string& name, std::vector<int64_t> sizes) {
    params_.push_back({name, at::zeros(sizes, at::kFloat)});
  };
  // LeCun-uniform weights (variance 1 / fan-in) keep SiLU activations O(1) through the layers.
  const auto lecun = [](double fan_in) { return std::sqrt(3.0 / fan_in); };
  const int64_t B = options_.bands, D = options_.latent_dim, H = options_.dense_units;

  int64_t side = options_.stamp_size, in = B;
  for (std::size_t i = 0; i < options_.encoder_channels.size(); ++i) {
    const int64_t c = options_.encoder_channels[i];
    const std::string n = "encoder.conv" + std::to_string(i);
    add(n + "a.weight", {c, in, 3, 3}, lecun(in * 9.0));
    add_zero(n + "a.bias", {c});
    add(n + "b.weight", {c, c, 3, 3}, lecun(c * 9.0));
    add_zero(n + "b.bias", {c});
    in = c;
    side = halve(side);
  }
  const int64_t flat = in * side * side;
  add("encoder.dense.weight", {H, flat}, lecun(static_cast<double>(flat)));
  add_zero("encoder.dense.bias", {H});
  add("encoder.head.weight", {2 * D, H}, lecun(static_cast<double>(H)));
  // Log-variances start at -6 (posterior sigma 0.05): when training switches from the
  // deterministic autoencoder to sampling z, the noise must not wipe out what was learnt.
  params_.push_back({"encoder.head.bias",
                     at::cat({at::zeros({D}, at::kFloat), at::full({D}, -6.0, at::kFloat)})});

  const auto& dc = options_.decoder_channels;
  const int64_t ups = static_cast<int64_t>(dc.size()) - 1;
  bottom_ = options_.stamp_size;
  for (int64_t i = 0; i < ups; ++i) bottom_ = halve(bottom_);
  add("decoder.dense.weight", {H, D}, lecun(static_cast<double>(D)));
  add_zero("decoder.dense.bias", {H});
  add("decoder.expand.weight", {dc[0] * bottom_ * bottom_, H}, lecun(static_cast<double>(H)));
  add_zero("decoder.expand.bias", {dc[0] * bottom_ * bottom_});
  for (int64_t i = 0; i < ups; ++i) {
    const std::string n = "decoder.up" + std::to_string(i);
    // Sub-pixel upsampling: a 3x3 convolution to 4 c_i+1 channels, then pixel_shuffle(2). ICNR
    // initialisation (the 4 sub-pixel phases of a channel start equal, i.e. as nearest-neighbour
    // upsampling of one convolution) avoids checkerboard patterns at the start of training.
    const at::Tensor w = detail::uniform({dc[i + 1], dc[i], 3, 3}, lecun(dc[i] * 9.0), gen);
    params_.push_back({n + ".weight", w.repeat_interleave(4, 0)});
    add_zero(n + ".bias", {4 * dc[i + 1]});
  }
  add("decoder.out.weight", {B, dc.back(), 3, 3}, lecun(dc.back() * 9.0));
  // Start near the empty sky (exp(-2) s_b = 0.14 sigma) rather than at 1 sigma everywhere.
  params_.push_back({"decoder.out.bias", at::full({B}, -2.0, at::kFloat)});

  scales_ = at::tensor(options_.band_scales, at::kDouble).to(at::kFloat).view({1, B, 1, 1});
}

VaeEncoding GalaxyVae::encode(const at::Tensor& stamps) const {
  const int64_t B = options_.bands, S = options_.stamp_size, D = options_.latent_dim;
  check_input(stamps, "stamps", {0, B, S, S}, device(), dtype());
  at::Tensor h = at::asinh(stamps / scales_);
  std::size_t k = 0;
  for (std::size_t i = 0; i < options_.encoder_channels.size(); ++i) {
    h = at::silu(at::conv2d(h, weight(k), weight(k + 1), 1, 1));
    h = at::silu(at::conv2d(h, weight(k + 2), weight(k + 3), 2, 1));
    k += 4;
  }
  h = at::silu(at::linear(h.flatten(1), weight(k), weight(k + 1)));
  const at::Tensor out = at::linear(h, weight(k + 2), weight(k + 3)); // (N, 2D)
  return {out.narrow(1, 0, D), out.narrow(1, D, D).clamp(-20, 10)};
}

at::Tensor GalaxyVae::decode(const at::Tensor& latents) const {
  const int64_t D = options_.latent_dim, S = options_.stamp_size;
  check_input(latents, "latents", {0, D}, device(), dtype());
  std::size_t k = 4 * options_.encoder_channels.size() + 4; // first decoder weight
  const auto& dc = options_.decoder_channels;
  at::Tensor h = at::silu(at::linear(latents, weight(k), weight(k + 1)));
  h = at::silu(at::linear(h, weight(k + 2), weight(k + 3)));
  h = h.view({latents.size(0), dc[0], bottom_, bottom_});
  k += 4;
  const bool copies = !conv_weights_.empty();
  if (copies) h = h.to(conv_weights_[0].scalar_type());
  if (compute_.channels_last) h = h.contiguous(at::MemoryFormat::ChannelsLast);
  for (std::size_t i = 0; i + 1 < dc.size(); ++i) {
    const at::Tensor& w = copies ? conv_weights_[2 * i] : weight(k);
    const at::Tensor& b = copies ? conv_weights_[2 * i + 1] : weight(k + 1);
    h = at::silu(at::pixel_shuffle(at::conv2d(h, w, b, 1, 1), 2));
    k += 2;
  }
  const int64_t offset = (h.size(2) - S) / 2;
  h = h.narrow(2, offset, S).narrow(3, offset, S).to(dtype());
  const at::Tensor u = at::conv2d(h, weight(k), weight(k + 1), 1, 1);
  const at::Tensor out = at::exp(u.clamp_max(kMaxLogOutput)) * scales_;
  return compute_.channels_last ? out.contiguous() : out;
}

void GalaxyVae::set_decoder_compute(const DecoderCompute& compute) {
  const c10::ScalarType t = compute.conv_dtype;
  if (t != c10::ScalarType::Undefined && !c10::isFloatingType(t))
    throw ValueError(
        std::string("GalaxyVae::set_decoder_compute: conv_dtype must be floating, got ") +
        c10::toString(t));
  compute_ = compute;
  conv_weights_.clear();
  if (t == c10::ScalarType::Undefined || t == dtype()) return;
  const auto format =
      compute.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  std::size_t k = 4 * options_.encoder_channels.size() + 8; // first upsampling weight
  for (std::size_t i = 0; i + 1 < options_.decoder_channels.size(); ++i, k += 2) {
    conv_weights_.push_back(weight(k).detach().to(t).contiguous(format));
    conv_weights_.push_back(weight(k + 1).detach().to(t));
  }
}

at::Tensor GalaxyVae::kl_divergence(const VaeEncoding& q) {
  return 0.5 * (q.mean.square() + q.log_var.exp() - 1 - q.log_var).sum(1);
}

at::Tensor GalaxyVae::band_scales() const { return scales_.flatten(); }

std::int64_t GalaxyVae::parameter_count() const { return detail::element_count(params_); }

void GalaxyVae::to(c10::Device device, c10::ScalarType dtype) {
  if (!c10::isFloatingType(dtype))
    throw ValueError(std::string("GalaxyVae::to: dtype must be floating, got ") +
                     c10::toString(dtype));
  detail::move_to(params_, device, dtype);
  scales_ = scales_.to(device, dtype);
  set_decoder_compute(compute_);
}

c10::Device GalaxyVae::device() const { return detail::device_of(params_); }
c10::ScalarType GalaxyVae::dtype() const { return detail::dtype_of(params_); }

GalaxyVae GalaxyVae::clone() const {
  GalaxyVae copy = *this;
  for (auto& p : copy.params_)
    p.tensor = p.tensor.detach().clone().requires_grad_(p.tensor.requires_grad());
  copy.scales_ = scales_.clone();
  copy.set_decoder_compute(compute_);
  return copy;
}

} // namespace demix

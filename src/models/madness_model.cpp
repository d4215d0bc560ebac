#include <demix/core/errors.hpp>
#include <demix/models/madness_model.hpp>

#include "io/detail/files.hpp"
#include "models/detail/model_archive.hpp"
#include "models/detail/nn.hpp"

#include <ATen/ATen.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <sys/stat.h>

#include <dlfcn.h>

namespace demix {

namespace {

constexpr const char* kFormat = "demix-madness-model";
constexpr std::int64_t kFormatVersion = 1;

std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i) s += '\n';
    s += lines[i];
  }
  return s;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) out.push_back(line);
  return out;
}

at::Tensor int_list(const std::vector<std::int64_t>& v) { return at::tensor(v, at::kLong); }

std::vector<std::int64_t> to_int_list(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous().flatten();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

std::vector<double> to_double_list(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous().flatten();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

/// FormatError unless the options read from `a` imply as many weights as it stores under `prefix`
/// (options aside): options from a corrupt or crafted file must not make the network allocate
/// more than the file holds.
void check_weight_count(const detail::TensorArchive& a, const std::string& prefix,
                        std::int64_t implied) {
  std::int64_t stored = 0;
  for (const auto& name : a.names())
    if (name.rfind(prefix, 0) == 0 && name.rfind(prefix + "option.", 0) != 0 && a.has_tensor(name))
      stored += a.tensor(name).numel();
  if (implied > stored)
    throw FormatError(
        "'" + a.source() + "': its " + prefix + "option.* entries describe " +
        (implied == INT64_MAX ? std::string("more than 2^63") : std::to_string(implied)) +
        " weights, the file holds " + std::to_string(stored));
}

} // namespace

MadnessModel::MadnessModel(GalaxyVae vae, ModelMetadata metadata)
    : vae_(std::move(vae)), metadata_(std::move(metadata)) {
  const auto B = static_cast<std::size_t>(vae_.options().bands);
  if (metadata_.band_names.size() != B)
    throw ValueError("model metadata: " + std::to_string(metadata_.band_names.size()) +
                     " band names for " + std::to_string(B) + " bands");
  if (metadata_.noise_sigmas.size() != B)
    throw ValueError("model metadata: " + std::to_string(metadata_.noise_sigmas.size()) +
                     " noise sigmas for " + std::to_string(B) + " bands");
  for (const auto& n : metadata_.band_names)
    if (n.empty() || n.find('\n') != std::string::npos)
      throw ValueError("model metadata: band name '" + n + "' is empty or holds a newline");
  for (double s : metadata_.noise_sigmas)
    if (!(s > 0) || !std::isfinite(s))
      throw ValueError("model metadata: noise sigmas must be positive, got " + std::to_string(s));
}

at::Tensor MadnessModel::encode(const at::Tensor& stamps) const { return vae_.encode(stamps).mean; }

at::Tensor MadnessModel::decode(const at::Tensor& latents) const { return vae_.decode(latents); }

at::Tensor MadnessModel::log_prob(const at::Tensor& latents) const {
  return flow().log_prob(latents);
}

const LatentFlow& MadnessModel::flow() const {
  if (!flow_)
    throw ValueError("the model has no latent flow yet: train one with `demix train-flow`");
  return *flow_;
}

LatentFlow& MadnessModel::flow() {
  if (!flow_)
    throw ValueError("the model has no latent flow yet: train one with `demix train-flow`");
  return *flow_;
}

void MadnessModel::set_flow(LatentFlow flow) {
  if (flow.options().dim != latent_dim())
    throw ValueError("flow of dimension " + std::to_string(flow.options().dim) +
                     " for a latent space of dimension " + std::to_string(latent_dim()));
  flow.to(device(), dtype());
  flow_ = std::move(flow);
}

void MadnessModel::to(c10::Device device, c10::ScalarType dtype) {
  vae_.to(device, dtype);
  if (flow_) flow_->to(device, dtype);
}

void MadnessModel::save(const std::string& path) const {
  detail::model_to_archive(*this).save(path);
}

MadnessModel MadnessModel::load(const std::string& path, c10::Device device) {
  return detail::model_from_archive(detail::TensorArchive::load(path), device);
}

bool MadnessModel::is_model_file(const std::string& path) {
  return detail::TensorArchive::is_archive(path);
}

std::string MadnessModel::shipped_model_path() {
  constexpr const char* kName = "madness-lsst.dmx";
  std::vector<std::string> candidates;
  // The file this function was loaded from: libdemix.so when installed, a program in the build tree
  // (whose relative path leads nowhere, hence the source tree next).
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&MadnessModel::shipped_model_path), &info) != 0 &&
      info.dli_fname != nullptr) {
    char resolved[PATH_MAX];
    if (::realpath(info.dli_fname, resolved) != nullptr)
      candidates.push_back(detail::parent_folder(resolved) + "/" + DEMIX_MODELS_FROM_LIBDIR + "/" +
                           kName);
  }
  candidates.push_back(std::string(DEMIX_SOURCE_MODELS) + "/" + kName);
  for (const auto& path : candidates) {
    struct stat st {};
    char resolved[PATH_MAX];
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      return ::realpath(path.c_str(), resolved) ? std::string(resolved) : path; // without "lib/.."
  }
  std::string looked;
  for (const auto& path : candidates) looked += (looked.empty() ? "" : " and ") + path;
  throw ValueError("the MADNESS model shipped with demix is missing (looked for " + looked +
                   "); give a model file explicitly");
}

namespace detail {

TensorArchive model_to_archive(const MadnessModel& model, bool keep_dtype) {
  TensorArchive a;
  a.put_text("format", kFormat);
  a.put_int("format_version", kFormatVersion);
  const ModelMetadata& m = model.metadata();
  a.put_text("meta.band_names", join_lines(m.band_names));
  a.put("meta.noise_sigmas", at::tensor(m.noise_sigmas, at::kDouble));
  std::vector<std::string> provenance;
  for (std::string line : m.provenance) { // one line each: newlines inside become spaces
    for (char& c : line)
      if (c == '\n' || c == '\r') c = ' ';
    provenance.push_back(line);
  }
  a.put_text("meta.provenance", join_lines(provenance));

  const VaeOptions& v = model.vae().options();
  a.put_int("vae.option.bands", v.bands);
  a.put_int("vae.option.stamp_size", v.stamp_size);
  a.put_int("vae.option.latent_dim", v.latent_dim);
  a.put("vae.option.encoder_channels", int_list(v.encoder_channels));
  a.put("vae.option.decoder_channels", int_list(v.decoder_channels));
  a.put_int("vae.option.dense_units", v.dense_units);
  a.put("vae.option.band_scales", at::tensor(v.band_scales, at::kDouble));
  store(model.vae().parameters(), a, kVaePrefix, keep_dtype);

  a.put_int("flow.present", model.has_flow() ? 1 : 0);
  if (model.has_flow()) {
    const FlowOptions& f = model.flow().options();
    a.put_int("flow.option.dim", f.dim);
    a.put_int("flow.option.blocks", f.blocks);
    a.put("flow.option.hidden", int_list(f.hidden));
    a.put_double("flow.option.max_log_scale", f.max_log_scale);
    store(model.flow().parameters(), a, kFlowPrefix, keep_dtype);
  }
  return a;
}

MadnessModel model_from_archive(const TensorArchive& a, c10::Device device) {
  const std::string what = "'" + a.source() + "'";
  if (!a.has("format") || a.text("format") != kFormat)
    throw FormatError(what + " is a demix archive but not a MADNESS model");
  const std::int64_t version = a.integer("format_version");
  if (version > kFormatVersion)
    throw FormatError(what + ": model format version " + std::to_string(version) +
                      " is newer than this demix reads (" + std::to_string(kFormatVersion) +
                      "); update demix");
  VaeOptions v;
  v.bands = a.integer("vae.option.bands");
  v.stamp_size = a.integer("vae.option.stamp_size");
  v.latent_dim = a.integer("vae.option.latent_dim");
  v.encoder_channels = to_int_list(a.tensor("vae.option.encoder_channels"));
  v.decoder_channels = to_int_list(a.tensor("vae.option.decoder_channels"));
  v.dense_units = a.integer("vae.option.dense_units");
  v.band_scales = to_double_list(a.tensor("vae.option.band_scales"));
  ModelMetadata m;
  m.band_names = split_lines(a.text("meta.band_names"));
  m.noise_sigmas = to_double_list(a.tensor("meta.noise_sigmas"));
  m.provenance = split_lines(a.text("meta.provenance"));
  try {
    check_weight_count(a, kVaePrefix, GalaxyVae::weight_count(v));
    GalaxyVae vae(v);
    restore(vae.parameters(), a, kVaePrefix);
    MadnessModel model(std::move(vae), std::move(m));
    if (a.integer("flow.present") != 0) {
      FlowOptions f;
      f.dim = a.integer("flow.option.dim");
      f.blocks = a.integer("flow.option.blocks");
      f.hidden = to_int_list(a.tensor("flow.option.hidden"));
      f.max_log_scale = a.real("flow.option.max_log_scale");
      check_weight_count(a, kFlowPrefix, LatentFlow::weight_count(f));
      LatentFlow flow(f);
      restore(flow.parameters(), a, kFlowPrefix);
      model.set_flow(std::move(flow));
    }
    model.to(device, at::kFloat);
    return model;
  } catch (const ValueError& e) { // options or metadata that no valid model has
    throw FormatError(what + ": inconsistent model: " + e.what());
  }
}

} // namespace detail

} // namespace demix

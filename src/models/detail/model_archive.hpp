#pragma once
// MadnessModel <-> archive entries, shared by model files and training checkpoints (which add their
// own "train." entries to the same archive).
//
// Entries: format = "demix-madness-model", format_version (int64), meta.band_names (text, one name
// per line), meta.noise_sigmas (float64 (B)), meta.provenance (text, one line per step),
// vae.option.* and vae.<weight name> (float32), and when there is a flow: flow.option.* and
// flow.<weight name>.

#include <demix/models/madness_model.hpp>

#include "io/detail/tensor_archive.hpp"

#include <c10/core/Device.h>

namespace demix::detail {

/// Prefixes of the weights in the archive.
inline constexpr const char* kVaePrefix = "vae.";
inline constexpr const char* kFlowPrefix = "flow.";

/// The model as archive entries; weights as float32, or as stored when keep_dtype (checkpoints).
TensorArchive model_to_archive(const MadnessModel& model, bool keep_dtype = false);
/// FormatError when an entry is missing or inconsistent (names the file and the entry).
MadnessModel model_from_archive(const TensorArchive& archive, c10::Device device);

} // namespace demix::detail

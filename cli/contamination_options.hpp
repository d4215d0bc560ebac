#pragma once
// The contamination models the command line draws (separation/contamination.hpp), as
// --contamination spells them; shared by `separate` and `simulate observation`.

#include <demix/separation/contamination.hpp>

#include <ATen/core/TensorBody.h>

#include <optional>
#include <string>

namespace demix::cli {

/// The model of a spec, for maps like d (C, H, W): gaussian:sigma=X (white noise),
/// gaussian:sigma-map=F (a deviation per pixel, F (H, W) or d's shape), spectrum:F (per
/// integer-|k| annulus: (K) npy, (1, K) or (C, K); or per mode (H, W) / (C, H, W); as
/// E|fft2(c)|^2 / (H W)). nullopt for any other spec (files, model:). ValueError / ShapeError
/// naming the spec for bad values or maps.
std::optional<ContaminationModel> contamination_model(const std::string& spec,
                                                      const at::Tensor& d /* (C, H, W) */);

} // namespace demix::cli

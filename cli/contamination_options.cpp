#include "contamination_options.hpp"

#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/npy.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

namespace demix::cli {

std::optional<ContaminationModel> contamination_model(const std::string& spec,
                                                      const at::Tensor& d) {
  const auto starts = [&](const char* prefix) { return spec.rfind(prefix, 0) == 0; };
  const auto map_of_d = [&](const std::string& file, const char* what) { // (C, H, W)
    const at::Tensor m = read_image(file, {.non_finite = NonFinitePolicy::Reject}).data;
    if (m.sizes() == d.sizes() || (d.size(0) == 1 && m.sizes() == d.sizes().slice(1)))
      return m.reshape(d.sizes()).to(at::kDouble);
    throw ShapeError("--contamination " + spec + ": the " + what + " '" + file + "' is " +
                     shape_text(m) + "; the observation is " + shape_text(d));
  };
  if (starts("gaussian:sigma=")) {
    const std::string value = spec.substr(std::string("gaussian:sigma=").size());
    double sigma = 0;
    try {
      std::size_t used = 0;
      sigma = std::stod(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      throw ValueError("--contamination " + spec + ": '" + value + "' is not a number");
    }
    if (!(sigma > 0) || !std::isfinite(sigma))
      throw ValueError("--contamination " + spec + ": sigma must be > 0");
    return WhiteNoise{sigma};
  } else if (starts("gaussian:sigma-map=")) {
    return PixelNoise{
        map_of_d(spec.substr(std::string("gaussian:sigma-map=").size()), "deviation map")};
  } else if (starts("spectrum:")) {
    const std::string file = spec.substr(std::string("spectrum:").size());
    // FITS images have 2 axes or more: a spectrum per annulus is a (1, K) or (C, K) image, or
    // a (K) npy array.
    const at::Tensor p = detect_input_format(file) == FileFormat::Npy
                             ? read_npy(file)
                             : read_image(file, {.non_finite = NonFinitePolicy::Reject}).data;
    if (!at::isfinite(p).all().item<bool>())
      throw ValueError("--contamination " + spec + ": the spectrum holds NaN or infinite values");
    const bool radial =
        p.dim() == 1 || (p.dim() == 2 && p.size(0) == d.size(0) && p.sizes() != d.sizes().slice(1));
    return SpectrumNoise{radial ? spectrum_per_mode(p, d.size(0), d.size(1), d.size(2))
                                : map_of_d(file, "power spectrum per mode")};
  }
  return std::nullopt;
}

} // namespace demix::cli

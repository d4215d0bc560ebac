// What `demix deblend` needs from parts of demix that this build does not have yet: the trained
// MADNESS model and the survey's noise table. Each is one function, so that wiring them is a
// one-line change each (MadnessModel::load in madness_model.hpp, Survey::lsst() in survey.hpp).

#include "common.hpp"

#include <demix/survey.hpp>

#include <demix/errors.hpp>

#include <ATen/ATen.h>

namespace demix::cli {

std::shared_ptr<const GalaxyPrior> load_prior(const std::string &path, const Context & /*ctx*/) {
  throw ValueError("cannot load the MADNESS model '" + path +
                   "': no model support in this build (use --method classical, which needs no "
                   "model)");
}

at::Tensor survey_noise_sigmas(int64_t bands) {
  const Survey survey = Survey::lsst();
  if (bands != survey.n_bands())
    throw ValueError("no noise levels for the " + std::to_string(bands) + " bands: the survey table (" +
                     survey.name + ") has " + std::to_string(survey.n_bands()) +
                     "; give --sigma s1 ... or SIGMA1..SIGMA" + std::to_string(bands) + " keywords");
  return survey.noise_sigmas(at::TensorOptions().dtype(at::kDouble));
}

} // namespace demix::cli

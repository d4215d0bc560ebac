// What `demix deblend` takes from other parts of demix: the trained MADNESS model
// (madness_model.hpp) and the survey's noise table (survey.hpp).

#include <demix/core/errors.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/sim/survey.hpp>

#include "common.hpp"

#include <ATen/ATen.h>

namespace demix::cli {

std::shared_ptr<const GalaxyPrior> load_prior(const std::string& path, const Context& ctx,
                                              bool float32_decoder) {
  auto model = std::make_shared<MadnessModel>(MadnessModel::load(path, ctx.device()));
  if (!float32_decoder) model->vae().set_decoder_compute(DecoderCompute::for_fitting(ctx.device()));
  return model;
}

at::Tensor survey_noise_sigmas(int64_t bands) {
  const Survey survey = Survey::lsst();
  if (bands != survey.n_bands())
    throw ValueError("no noise levels for the " + std::to_string(bands) +
                     " bands: the survey table (" + survey.name + ") has " +
                     std::to_string(survey.n_bands()) + "; give --sigma s1 ... or SIGMA1..SIGMA" +
                     std::to_string(bands) + " keywords");
  return survey.noise_sigmas(at::TensorOptions().dtype(at::kDouble));
}

} // namespace demix::cli

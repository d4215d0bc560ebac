// What `demix deblend` takes from other parts of demix: the trained MADNESS model
// (madness_model.hpp).

#include <demix/models/madness_model.hpp>

#include "common.hpp"

namespace demix::cli {

std::shared_ptr<const GalaxyPrior> load_prior(const std::string& path, const Context& ctx,
                                              bool float32_decoder) {
  auto model = std::make_shared<MadnessModel>(MadnessModel::load(path, ctx.device()));
  if (!float32_decoder) model->vae().set_decoder_compute(DecoderCompute::for_fitting(ctx.device()));
  return model;
}

} // namespace demix::cli

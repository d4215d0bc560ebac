#pragma once
// Umbrella header: everything public in demix, by domain (the folders of include/demix/). Prefer
// the individual headers in library code.

#include <demix/core/build_info.hpp>
#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/deblend/classical.hpp>
#include <demix/deblend/detection.hpp>
#include <demix/deblend/madness.hpp>
#include <demix/deblend/metrics.hpp>
#include <demix/deblend/stamps.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/npy.hpp>
#include <demix/io/table.hpp>
#include <demix/models/flow.hpp>
#include <demix/models/galaxy_prior.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/models/named_tensors.hpp>
#include <demix/models/training.hpp>
#include <demix/models/vae.hpp>
#include <demix/sim/galaxy.hpp>
#include <demix/sim/population.hpp>
#include <demix/sim/psf.hpp>
#include <demix/sim/simulate.hpp>
#include <demix/sim/survey.hpp>
#include <demix/stats/coefficients.hpp>
#include <demix/stats/filters.hpp>
#include <demix/stats/morlet.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/stats/scattering_cov.hpp>
#include <demix/stats/wph.hpp>
#include <demix/stats/wst.hpp>
#include <demix/viz/plot.hpp>
#include <demix/viz/preview.hpp>
#include <demix/viz/rgb.hpp>

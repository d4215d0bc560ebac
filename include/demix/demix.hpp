#pragma once
// Umbrella header: everything public in demix. Prefer the individual headers in library code.

#include <demix/build_info.hpp>
#include <demix/coefficients.hpp>
#include <demix/context.hpp>
#include <demix/errors.hpp>
#include <demix/filters.hpp>
#include <demix/fits.hpp>
#include <demix/image.hpp>
#include <demix/io.hpp>
#include <demix/morlet.hpp>
#include <demix/npy.hpp>
#include <demix/plot.hpp>
#include <demix/power_spectrum.hpp>
#include <demix/preview.hpp>
#include <demix/scattering_cov.hpp>
#include <demix/wph.hpp>
#include <demix/wst.hpp>
#include <demix/galaxy.hpp>
#include <demix/population.hpp>
#include <demix/psf.hpp>
#include <demix/rgb.hpp>
#include <demix/simulate.hpp>
#include <demix/survey.hpp>
#include <demix/table.hpp>

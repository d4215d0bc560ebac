#pragma once
// A galaxy population "as CatSim-based training sets draw it": magnitudes from LSST-like number
// counts down to a magnitude limit, sizes correlated with magnitude, bulge/disk mixtures of red
// and blue galaxies with SED-like colours, random shapes. A parametric stand-in for the CatSim
// catalogue (LSST Science Book 2009, sect. 3.7.2) that MADNESS and the BlendingToolKit sample,
// so that nothing depends on external files. Every choice and its source is documented in
// src/sim/population.cpp and in README.md ("Simulated galaxies").
//
// Reproducibility: the draws use std::mt19937_64 (a fully specified engine) with demix's own
// transforms to uniform and normal variates, on the CPU, so a seed gives the same galaxies on
// every platform, compiler and device.

#include <demix/sim/galaxy.hpp>
#include <demix/sim/survey.hpp>

#include <cstdint>
#include <string>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct PopulationOptions {
  std::string limit_band = "i";    ///< band of the magnitude limit and of the number counts
  double mag_limit = 25.3;         ///< faintest total magnitude: the LSST "gold sample" i < 25.3
  double mag_bright = 20.0;        ///< brightest magnitude drawn (< mag_limit)
  double ellipticity_sigma = 0.25; ///< rms of each ellipticity component before truncation
  double ellipticity_max = 0.7;    ///< |e| cut (axis ratio >= 0.18)
  double hlr_min = 0.05;           ///< half-light radii are clipped to [hlr_min, hlr_max] arcsec
  double hlr_max = 2.0;
};

/// Galaxies per arcmin^2 brighter than `mag` in i (LSST Science Book eq. 3.7):
/// 46 x 10^(0.31 (mag - 25)); 57.0 at the gold-sample limit 25.3.
double galaxy_number_density(double mag);

/// Draws `count` galaxies (positions x = y = 0; the caller places them). ValueError for bad
/// options (limit band unknown to the survey, mag_bright >= mag_limit, ranges out of order).
Galaxies sample_galaxies(const Survey& survey, int64_t count, uint64_t seed,
                         const PopulationOptions& options = {});

} // namespace demix
#pragma GCC visibility pop

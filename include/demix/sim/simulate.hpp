#pragma once
// Simulated LSST-like datasets: isolated galaxy stamps (to train a generative model of galaxies)
// and blends of several galaxies with their truth (to evaluate deblenders). `demix simulate`
// writes them; everything is reproducible from the seed: the catalogue and the noise are drawn on
// the CPU with demix's own generators (sim/detail/random.hpp), identical on every platform and
// device, and the noise of each stamp or blend has its own stream, so any chunking gives the same
// noise. Noiseless pixels are identical for identical options on one machine; other chunk sizes
// (FFT batches) or devices (CPU vs CUDA FFTs) change them by float rounding only (~1e-7 of the
// peak).
//
// Units: electrons over the full survey exposure, sky subtracted (survey.hpp). Pixel (row, col)
// has its centre at (y, x) = (row, col): x is the column, 0-based.
//
// Their files (layout, writers, readers): dataset.hpp, included here.

#include <demix/core/context.hpp>
#include <demix/sim/dataset.hpp>
#include <demix/sim/galaxy.hpp>
#include <demix/sim/population.hpp>
#include <demix/sim/psf.hpp>
#include <demix/sim/survey.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <memory>
#include <string>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

struct IsolatedOptions {
  int64_t count = 1000;      ///< number of stamps N, >= 1
  uint64_t seed = 0;         ///< everything (catalogue, offsets, noise) follows from it
  int64_t stamp_size = 45;   ///< S, odd
  double max_offset = 0.0;   ///< centres uniform within +-max_offset pixels of the centre pixel,
                             ///< in [0, 0.5) (0: exactly on pixel (S / 2, S / 2), as MADNESS)
  bool noise = true;         ///< add the sky's Gaussian noise, sigma = Survey::noise_sigma
  bool source_noise = false; ///< add the galaxies' own Poisson noise too (Gaussian, variance I)
  PsfModel psf = PsfModel::Moffat;
  PopulationOptions population;
  int64_t render_batch = 48; ///< galaxies per FFT batch (RenderOptions::batch_size); CPU: ~48,
                             ///< GPUs prefer ~512
};

struct BlendOptions {
  int64_t count = 100; ///< number of blends N, >= 1
  uint64_t seed = 0;
  int64_t min_galaxies = 1; ///< galaxies per blend: uniform integer in [min, max], >= 1
  int64_t max_galaxies = 6;
  int64_t field_size = 120; ///< blend images are field_size x field_size pixels
  /// Centres are uniform over a square centred in the field. 0: the largest square keeping every
  /// galaxy's stamp inside the field, side field_size - S + 1 (with the defaults 76 pixels =
  /// 15.2": 3 to 5 galaxies give 47 to 78 per arcmin^2, MADNESS's 48 to 80). > 0: a square of
  /// area n / density for n galaxies, so every blend has this density; ValueError if the square
  /// for max_galaxies does not fit.
  double density = 0;
  int64_t stamp_size = 45; ///< S of the per-galaxy stamps, odd
  bool noise = true;
  bool source_noise = false;
  PsfModel psf = PsfModel::Moffat;
  PopulationOptions population;
  int64_t render_batch = 48; ///< galaxies per FFT batch, as IsolatedOptions::render_batch
};

/// Rendered stamps [first, first + n) of an isolated set.
struct IsolatedChunk {
  at::Tensor images;    // (n, B, S, S) noisy (noiseless when options.noise is false)
  at::Tensor noiseless; // (n, B, S, S)
};

/// Rendered blends [first, first + n) and their galaxies [first_galaxy, first_galaxy + g).
struct BlendChunk {
  at::Tensor images;        // (n, B, H, W) noisy (noiseless when options.noise is false)
  at::Tensor noiseless;     // (n, B, H, W), the sum of the galaxies' stamps
  at::Tensor stamps;        // (g, B, S, S) each galaxy alone, noiseless
  int64_t first_galaxy = 0; // index of stamps[0] among all galaxies
};

/// An isolated-stamp dataset: the catalogue is drawn by the constructor; render() draws any
/// range of stamps (same pixels whatever the ranges).
class IsolatedSimulator {
public:
  /// ValueError for options out of range (count < 1, offsets, stamp size, population).
  IsolatedSimulator(const Survey& survey, const IsolatedOptions& options, const Context& context);
  ~IsolatedSimulator();
  int64_t size() const;
  const Galaxies& galaxies() const; // x, y in stamp pixels
  IsolatedChunk render(int64_t first, int64_t count) const;
  at::Tensor psf_images() const; // (B, S, S)
  const Survey& survey() const;
  const IsolatedOptions& options() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

/// A blend dataset: blend sizes, positions and galaxies are drawn by the constructor.
class BlendSimulator {
public:
  BlendSimulator(const Survey& survey, const BlendOptions& options, const Context& context);
  ~BlendSimulator();
  int64_t size() const;                  // N blends
  int64_t galaxy_count() const;          // G galaxies in all
  const Galaxies& galaxies() const;      // x, y in blend-image pixels, grouped by blend
  const at::Tensor& blend_index() const; // (G) int64: the blend of each galaxy
  const at::Tensor& offsets() const;     // (N + 1) int64: blend k holds [offsets[k], offsets[k+1])
  const at::Tensor& region_side() const; // (N) float64: side of the centres' square, pixels
  /// (G, 2) int64: column and row in its blend of each galaxy stamp's pixel (0, 0), the galaxy's
  /// nearest pixel (deblend/stamps.hpp) minus S / 2 (inside the field by construction).
  const at::Tensor& stamp_origins() const;
  BlendChunk render(int64_t first, int64_t count) const;
  at::Tensor psf_images() const; // (B, S, S)
  const Survey& survey() const;
  const BlendOptions& options() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace demix
#pragma GCC visibility pop

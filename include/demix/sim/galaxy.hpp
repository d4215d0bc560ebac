#pragma once
// Galaxies as a de Vaucouleurs bulge (Sersic n = 4) plus an exponential disk (Sersic n = 1), drawn
// into postage stamps through a survey's PSF and pixels, in electrons (survey.hpp's units).
//
// Profiles: I(r) ~ exp(-b_n (r / r_e)^(1/n)) with r_e the half-light radius. Both components of a
// galaxy share its centre and its ellipticity (e1, e2), in the shear convention of GalSim and the
// BlendingToolKit: |e| = (1 - q) / (1 + q) for axis ratio q, e1 + i e2 = |e| exp(2 i theta) with
// theta the major axis' angle from +x towards +y; the transformation preserves area, so r_e is
// the circularised radius sqrt(a b) of the half-light ellipse (BTK's hlr = sqrt(a_d b_d)).
//
// Rendering happens in Fourier space, as GalSim does for PSF-convolved profiles: the exact
// transform of each profile (exponential: closed form; de Vaucouleurs: a table built once from its
// Mellin-Barnes integral, interpolated to < 1e-6), times the PSF's OTF and the pixel's sinc, then
// one inverse FFT per band. The pixel integration is thus exact, cusp included, with no
// oversampling; the only approximations are (1) aliasing of frequencies beyond the pixel Nyquist
// limit, where the LSST PSFs' OTFs are below ~2e-4, and (2) the periodic image: each stamp is
// computed on an odd L >= 2 S + 1 grid (L = 105 for S = 45), so light from more than L - S pixels
// away wraps into the stamp. Only the long de Vaucouleurs wings matter: for a bulge of hlr 1"
// (among the largest of the default population) the wrapped light is <= 2e-6 of its flux per pixel
// and 0.3% of it over the stamp (tested). Light falling outside a galaxy's S x S stamp is not drawn
// anywhere: a stamp is the truth for that galaxy, and a blend is the sum of its galaxies' stamps
// (the catalogue gives both the model's total flux and the flux inside the stamp).

#include <demix/core/context.hpp>
#include <demix/sim/psf.hpp>
#include <demix/sim/survey.hpp>

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <memory>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// b_n of the Sersic profile exp(-b_n (r / r_e)^(1/n)): the root of P(2n, b_n) = 1/2 (P the
/// regularised incomplete gamma function), so that r_e encloses half the flux. Newton's method
/// from the Ciotti & Bertin (1999, A&A 352, 447) expansion b_n ~ 2n - 1/3 + 4 / (405 n) + ...;
/// b_1 = 1.678347, b_4 = 7.669249. ValueError unless 0.3 <= n <= 10.
double sersic_b(double n);

/// Fraction of a Sersic profile's flux within (elliptical) radius r: P(2n, b_n (r / r_e)^(1/n)).
double sersic_enclosed_fraction(double n, double r_over_re);

/// Fourier transform of the unit-flux circular Sersic profile with r_e = 1 at spatial frequency
/// kappa (cycles per r_e); 1 at 0. Direct Mellin-Barnes evaluation (~1e-12), for tests and tables.
double sersic_transform(double n, double kappa);

/// Galaxies, one entry per galaxy (a structure of arrays, float64 on the CPU).
struct Galaxies {
  at::Tensor x;              ///< (N) centre column, pixels (0-based; pixel centres at integers)
  at::Tensor y;              ///< (N) centre row, pixels
  at::Tensor flux;           ///< (N, B) total flux per band, electrons (Survey::flux of the mag)
  at::Tensor bulge_fraction; ///< (N, B) share of each band's flux in the bulge, in [0, 1]
  at::Tensor disk_hlr;       ///< (N) disk half-light radius, arcsec, > 0
  at::Tensor bulge_hlr;      ///< (N) bulge half-light radius, arcsec, > 0
  at::Tensor e1, e2;         ///< (N) ellipticity (shear convention, see above), |e| < 1

  int64_t size() const { return x.defined() ? x.size(0) : 0; }
  /// The galaxies at `index` (int64 (M), CPU), in that order.
  Galaxies select(const at::Tensor& index) const;
  /// All of `a`, then all of `b`.
  static Galaxies concat(const Galaxies& a, const Galaxies& b);
  /// ShapeError / ValueError unless every field is defined with the shapes above (B = n_bands),
  /// finite, and within its range.
  void check(int n_bands) const;
};

/// Half-light radius (arcsec) of each galaxy's bulge + disk light in band `band`, treating both
/// components as circular (exact for round galaxies): the radius where
/// f P(8, b_4 (r / r_b)^(1/4)) + (1 - f) P(2, b_1 r / r_d) = 1/2.
at::Tensor half_light_radius(const Galaxies& galaxies, int band); // -> (N) float64, CPU

struct RenderOptions {
  int64_t stamp_size = 45;         ///< S, odd (the galaxy's pixel is the centre one), >= 5
  PsfModel psf = PsfModel::Moffat; ///< PSF model of every band (FWHMs from the survey)
  int64_t batch_size = 48;         ///< galaxies per FFT batch: memory ~ batch B L^2 16 bytes
};

/// Draws galaxies into their own S x S stamps, all bands at once, on a Context's device. Built
/// once (PSF transforms, frequency grid), then render() is const and may be called repeatedly.
class GalaxyRenderer {
public:
  /// ValueError for a bad stamp size or batch size, or a PSF the survey cannot describe.
  GalaxyRenderer(const Survey& survey, const RenderOptions& options, const Context& context);
  ~GalaxyRenderer();
  GalaxyRenderer(GalaxyRenderer&&) noexcept;
  GalaxyRenderer& operator=(GalaxyRenderer&&) noexcept;

  /// Noiseless images of each galaxy in electrons, on a stamp centred on the pixel nearest to
  /// its centre, (floor(x + 0.5), floor(y + 0.5)); the galaxy sits at
  /// (S / 2 + x - floor(x + 0.5), S / 2 + y - floor(y + 0.5)) in stamp pixels.
  at::Tensor render(const Galaxies& galaxies) const; // -> (N, B, S, S), context dtype

  /// The band PSFs as seen in the images (psf.hpp's psf_image, S x S).
  at::Tensor psf_images() const; // -> (B, S, S)

  const Survey& survey() const;
  const RenderOptions& options() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace demix
#pragma GCC visibility pop

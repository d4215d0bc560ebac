"""Blends rendered by an independent simulator (GalSim) from a galaxy population the shipped
MADNESS prior never saw, in the dataset layout of `demix simulate blends` (sim/dataset.hpp), so
that bench_deblend scores the deblenders on it exactly as on demix's own blends:

    python3 galsim_blends.py TEMPLATE.fits OUT.fits [--count 100] [--seed 1]

TEMPLATE is any blend dataset written by `demix simulate blends`: its survey keywords (bands,
pixel scale, zero points, exposures, PSF FWHM and noise per band: LSST at 10-year depth) are
kept, so that only the galaxies and the PSF's shape change. Needs galsim, numpy and astropy
(PyPI: a benchmark oracle, not a dependency of demix).

What differs from demix's training population (sim/population.cpp: bulge + disk with a fixed
de Vaucouleurs bulge and exponential disk, one ellipticity, colours from two templates):
  - morphology: 35% single Sersic profiles with n log-uniform in [0.5, 6]; 40% bulge + disk with a
    bulge fraction uniform in [0, 1], redder bulges (their fraction grows by 0.08 per band
    towards y), bulge radius 0.3-0.8 of the disk's; 25% knotty star-forming disks
    (galsim.RandomKnots smoothed to 0.05": 5-40 knots holding 10-40% of the light, bluer than
    the disk);
  - sizes: log-normal half-light radius, median 0.55" x 10^(-0.12 (i - 22)), 0.22 dex scatter
    (the trend of the observed size-magnitude relation, e.g. van der Wel et al. 2014), clipped to
    [0.08, 2.5]";
  - shapes: shear-convention |g| with rms 0.3 per component, cut at 0.8;
  - colours: a red sequence (g - r 0.85 +- 0.08) and a blue cloud (g - r 0.35 +- 0.18), 40% / 60%,
    with u - g, r - i, i - z, z - y following each class (plus 0.05 mag scatter per colour);
  - magnitudes: i in [20, 25.3] from counts N(< i) ~ 10^(0.36 i) (demix: LSST Science Book 3.7);
  - PSF: Kolmogorov (demix's training: Moffat beta 3.5) at the template's FWHM per band;
  - blends: 1-6 galaxies, centres uniform in the square that keeps every 45 x 45 stamp inside the
    120 x 120 field (as demix's), sky noise of the template's sigma per band.
Extra TRUTH columns for analysis: morph (0 Sersic, 1 bulge + disk, 2 knotty), sersic_n,
knot_frac, red (1 for the red sequence).
"""

from __future__ import annotations

import argparse
import datetime

import galsim
import numpy as np
from astropy.io import fits

STAMP, FIELD = 45, 120


def colours(red: bool, rng: np.random.Generator) -> np.ndarray:
    """u - g, g - r, r - i, i - z, z - y."""
    if red:
        c = np.array([1.7, rng.normal(0.85, 0.08), 0.40, 0.30, 0.15])
    else:
        gr = np.clip(rng.normal(0.35, 0.18), -0.1, 0.8)
        c = np.array([0.6 + 0.8 * gr, gr, 0.12 + 0.3 * gr, 0.08 + 0.2 * gr, 0.05 + 0.1 * gr])
    return c + rng.normal(0, 0.05, 5)


def magnitudes(i_mag: float, c: np.ndarray) -> np.ndarray:
    """u g r i z y from i and the colours."""
    u_g, g_r, r_i, i_z, z_y = c
    r = i_mag + r_i
    g = r + g_r
    return np.array([g + u_g, g, r, i_mag, i_mag - i_z, i_mag - i_z - z_y])


def draw_i_magnitude(rng: np.random.Generator, lo: float = 20.0, hi: float = 25.3) -> float:
    # Inverse transform of N(< m) ~ 10^(a m) on [lo, hi].
    a = 0.36
    u = rng.uniform()
    return np.log10(10 ** (a * lo) + u * (10 ** (a * hi) - 10 ** (a * lo))) / a


def enclosed(n: int, r_over_re: float) -> float:
    """Light fraction within r of a Sersic profile of integer index n (1 or 4): the regularised
    incomplete gamma P(2n, b_n (r / r_e)^(1/n)), by its finite series."""
    b = {1: 1.678346990016661, 4: 7.669249443105046}[n]
    x = b * r_over_re ** (1.0 / n)
    term, total = 1.0, 1.0
    for k in range(1, 2 * n):
        term *= x / k
        total += term
    return 1.0 - np.exp(-x) * total


def bulge_disk_hlr(bulge_frac: float, r_bulge: float, r_disk: float) -> float:
    """Half-light radius of a round de Vaucouleurs bulge + exponential disk, by bisection
    (drawing the bulge without a PSF to measure it would need 10^4 x 10^4 FFTs)."""
    lo, hi = 0.0, 20.0 * max(r_bulge, r_disk)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        f = bulge_frac * enclosed(4, mid / r_bulge) + (1 - bulge_frac) * enclosed(1, mid / r_disk)
        lo, hi = (mid, hi) if f < 0.5 else (lo, mid)
    return 0.5 * (lo + hi)


def galaxy(rng: np.random.Generator, seed: int, fluxes: np.ndarray, hlr: float):
    """The unsheared profile of each band (unit total flux scaled to `fluxes`), with its truth."""
    kind = rng.choice(3, p=[0.35, 0.40, 0.25])
    B = len(fluxes)
    truth = {"morph": int(kind), "sersic_n": np.nan, "knot_frac": 0.0,
             "bulge_frac": np.zeros(B), "bulge_hlr": np.nan}
    if kind == 0:
        # (rounded to 0.05: GalSim tabulates each index's profile once, which costs ~1 s)
        n = round(float(np.exp(rng.uniform(np.log(0.5), np.log(6.0)))) / 0.05) * 0.05
        # Truncated at 8 half-light radii (the half-light radius is the truncated profile's):
        # untruncated n ~ 6 wings make GalSim draw through FFTs of 10^4 x 10^4.
        # (GalSim cannot solve for the radius of truncated low-index profiles, which need none)
        base = galsim.Sersic(n=n, half_light_radius=hlr, trunc=8 * hlr if n > 2 else 0.0)
        truth["sersic_n"] = n
        profiles = [base.withFlux(f) for f in fluxes]
        truth["bulge_frac"][:] = np.nan
    elif kind == 1:
        disk = galsim.Exponential(half_light_radius=hlr)
        rb = hlr * rng.uniform(0.3, 0.8)
        truth["bulge_hlr"] = rb
        bulge = galsim.DeVaucouleurs(half_light_radius=rb, trunc=8 * rb)
        f0 = rng.uniform()
        bf = np.clip(f0 + 0.08 * (np.arange(B) - 3), 0, 1)
        truth["bulge_frac"] = bf
        profiles = [(bulge * b + disk * (1 - b)).withFlux(f) for b, f in zip(bf, fluxes)]
    else:
        k = rng.uniform(0.1, 0.4)
        # Point knots smoothed to 0.05" (star-forming regions of ~0.4 kpc at z ~ 1): delta
        # functions alone would ask GalSim for enormous FFTs.
        knots = galsim.Convolve(
            galsim.RandomKnots(int(rng.integers(5, 41)), half_light_radius=hlr, flux=1.0,
                               rng=galsim.BaseDeviate(seed)),
            galsim.Gaussian(sigma=0.05))
        disk = galsim.Exponential(half_light_radius=hlr)
        # Knots bluer: their share falls towards the red bands.
        kf = np.clip(k * (1.6 - 0.2 * np.arange(B)), 0.02, 0.6)
        truth["knot_frac"] = float(k)
        profiles = [(knots * q + disk * (1 - q)).withFlux(f) for q, f in zip(kf, fluxes)]
    return profiles, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("template")
    ap.add_argument("output")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-galaxies", type=int, default=6)
    args = ap.parse_args()

    tmpl = fits.getheader(args.template, 0)
    B = int(tmpl["NBANDS"])
    bands = [tmpl[f"BAND{b + 1}"] for b in range(B)]
    scale = float(tmpl["PIXSCALE"])
    sigma = np.array([tmpl[f"SIGMA{b + 1}"] for b in range(B)])
    fwhm = np.array([tmpl[f"FWHM{b + 1}"] for b in range(B)])
    zp = np.array([tmpl[f"ZP{b + 1}"] for b in range(B)])
    exptime = np.array([tmpl[f"EXPTIME{b + 1}"] for b in range(B)])
    psfs = [galsim.Kolmogorov(fwhm=f) for f in fwhm]

    rng = np.random.default_rng(args.seed)
    N = args.count
    blends = np.zeros((N, B, FIELD, FIELD), np.float32)
    stamps, rows = [], []
    side = FIELD - STAMP + 1  # centres keep every stamp inside the field
    lo = (FIELD - side) / 2 - 0.5
    for n in range(N):
        G = int(rng.integers(1, args.max_galaxies + 1))
        for gi in range(G):
            x, y = rng.uniform(lo, lo + side, 2)
            i_mag = draw_i_magnitude(rng)
            red = bool(rng.uniform() < 0.4)
            mags = magnitudes(i_mag, colours(red, rng))
            fluxes = exptime * 10 ** (-0.4 * (mags - zp))
            hlr = float(np.clip(0.55 * 10 ** (-0.12 * (i_mag - 22) + rng.normal(0, 0.22)), 0.08,
                                2.5))
            gmod = 2.0
            while gmod >= 0.8:
                g1, g2 = rng.normal(0, 0.3, 2)
                gmod = np.hypot(g1, g2)
            profiles, t = galaxy(rng, int(rng.integers(1 << 30)), fluxes, hlr)
            # Circularised half-light radius in i (shear preserves area: of the unsheared
            # profile). Sersic and knotty disks (knots drawn from the disk's profile): the
            # drawn hlr; bulge + disk: measured on the i-band profile.
            hlr_i = hlr
            if t["morph"] == 1:
                hlr_i = bulge_disk_hlr(t["bulge_frac"][3], t["bulge_hlr"], hlr)
            cx, cy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
            x0, y0 = cx - STAMP // 2, cy - STAMP // 2
            stamp = np.zeros((B, STAMP, STAMP), np.float32)
            for b in range(B):
                obj = galsim.Convolve(profiles[b].shear(g1=g1, g2=g2), psfs[b])
                img = obj.drawImage(nx=STAMP, ny=STAMP, scale=scale, offset=(x - cx, y - cy))
                stamp[b] = img.array
            blends[n, :, y0:y0 + STAMP, x0:x0 + STAMP] += stamp
            stamps.append(stamp)
            row = {"blend_id": n, "galaxy_id": gi, "x": x, "y": y, "stamp_x0": x0,
                   "stamp_y0": y0, "n_blend": G, "density": G / (side * scale / 60) ** 2}
            for b, name in enumerate(bands):
                row[f"flux_{name}"] = fluxes[b]
            for b, name in enumerate(bands):
                row[f"mag_{name}"] = mags[b]
            for b, name in enumerate(bands):
                row[f"stamp_flux_{name}"] = float(stamp[b].sum(dtype=np.float64))
            for b, name in enumerate(bands):
                row[f"snr_{name}"] = float(np.sqrt((stamp[b].astype(np.float64) ** 2).sum())
                                           / sigma[b])
            for b, name in enumerate(bands):
                row[f"bulge_frac_{name}"] = t["bulge_frac"][b]
            row.update({"hlr": hlr_i, "hlr_disk": hlr, "hlr_bulge": t["bulge_hlr"], "e1": g1, "e2": g2,
                        "morph": t["morph"], "sersic_n": t["sersic_n"],
                        "knot_frac": t["knot_frac"], "red": int(red)})
            rows.append(row)
    noiseless = blends.copy()
    blends += (rng.standard_normal(blends.shape) * sigma[None, :, None, None]).astype(np.float32)

    hdr = fits.Header()
    for key in ("SURVEY", "BUNIT", "PIXSCALE", "NBANDS"):
        hdr[key] = (tmpl[key], tmpl.comments[key])
    for b in range(B):
        for key in ("BAND", "SIGMA", "FWHM", "ZP", "EXPTIME"):
            hdr[f"{key}{b + 1}"] = (tmpl[f"{key}{b + 1}"], tmpl.comments[f"{key}{b + 1}"])
    hdr["DATASET"] = ("blends", "galsim_blends.py: a population unseen by the prior")
    hdr["PSFMODEL"] = ("kolmogorov", "GalSim Kolmogorov at FWHMn")
    hdr["SEED"], hdr["NOISE"], hdr["SRCNOISE"] = args.seed, True, False
    hdr["NITEMS"], hdr["NGAL"], hdr["STAMPSZ"] = N, len(rows), STAMP
    hdr["MAGBAND"], hdr["MAGLIM"], hdr["MAGBRT"] = "i", 25.3, 20.0
    hdr["FIELDSZ"], hdr["MINGAL"], hdr["MAXGAL"], hdr["DENSITY"] = FIELD, 1, args.max_galaxies, 0.0
    hdr["CREATOR"] = f"galsim_blends.py (GalSim {galsim.__version__})"
    hdr["DATE"] = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S")
    psf = np.stack([p.drawImage(nx=STAMP, ny=STAMP, scale=scale).array for p in psfs])
    psf /= psf.sum(axis=(1, 2), keepdims=True)
    cols = []
    for name in rows[0]:
        v = np.array([r[name] for r in rows])
        unit = {"x": "pixel", "y": "pixel", "stamp_x0": "pixel", "stamp_y0": "pixel",
                "hlr": "arcsec", "hlr_disk": "arcsec", "hlr_bulge": "arcsec"}.get(name)
        if name.startswith(("flux_", "stamp_flux_")):
            unit = "electron"
        if name.startswith("mag_"):
            unit = "mag"
        fmt = "K" if v.dtype.kind in "iub" else "D"
        cols.append(fits.Column(name=name, format=fmt, unit=unit, array=v))
    hdus = [fits.PrimaryHDU(header=hdr),
            fits.ImageHDU(blends, hdr, name="BLENDS"),
            fits.ImageHDU(noiseless, hdr, name="NOISELESS"),
            fits.ImageHDU(np.stack(stamps), name="STAMPS"),
            fits.ImageHDU(psf.astype(np.float32), name="PSF"),
            fits.BinTableHDU.from_columns(cols, name="TRUTH")]
    fits.HDUList(hdus).writeto(args.output, overwrite=True, checksum=True)
    print(f"{args.output}: {N} blends, {len(rows)} galaxies "
          f"(morphologies {np.bincount([r['morph'] for r in rows], minlength=3).tolist()})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The scarlet2 baseline of bench/bench_deblend: deblends every blend of a `demix simulate blends`
dataset with scarlet2 (PyPI) given the true galaxy positions, and writes each galaxy's model, as
observed (convolved with the band PSFs), on the same S x S stamps as the dataset's STAMPS, so that
bench_deblend scores all deblenders with one code.

  python3 run_scarlet2.py blends.fits -o scarlet2_models.fits [--max-iter 200] [--limit N]

Setup, as in scarlet2's quick start: one Observation per blend (weights 1/sigma_b^2 from the
dataset's SIGMA keywords, the dataset's PSF images), a model frame from the observation, one
Source per galaxy initialised from Gaussian moments (or its pixel spectrum and a compact
morphology when the moments fail), positive spectra and morphologies,
then scarlet2's fit (Adam) for at most --max-iter steps with its default relative tolerance.
Output: MODELS (G, B, S, S) float32 in the TRUTH table's row order, keywords SECONDS (wall time of
the fits, JAX compilation included), SECFIRST (the first blend's), NBLENDS, MAXITER, and the
scarlet2 / jax versions. Needs scarlet2, jax, astropy, numpy (a virtual environment, not demix).
"""

import argparse
import os
import sys
import time

import numpy as np
from astropy.io import fits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--limit", type=int, default=0, help="deblend only the first N blends")
    args = parser.parse_args()

    import jax
    jax.config.update("jax_enable_x64", False)
    import jax.numpy as jnp
    import scarlet2
    from numpyro.distributions import constraints
    from functools import partial

    scarlet2.set_validation(False)
    with fits.open(args.dataset) as f:
        hdr = f[0].header
        blends = np.asarray(f["BLENDS"].data, dtype=np.float32)
        psf = np.asarray(f["PSF"].data, dtype=np.float32)
        truth = f["TRUTH"].data
        stamp = int(hdr["STAMPSZ"])
        bands = [hdr[f"BAND{b + 1}"] for b in range(int(hdr["NBANDS"]))]
        sigma = np.array([float(hdr[f"SIGMA{b + 1}"]) for b in range(len(bands))], dtype=np.float32)
    n_blends = blends.shape[0] if args.limit <= 0 else min(args.limit, blends.shape[0])
    blend_id = np.asarray(truth["blend_id"], dtype=np.int64)
    models = np.zeros((len(truth), len(bands), stamp, stamp), dtype=np.float32)
    weights = np.broadcast_to((1.0 / sigma**2)[:, None, None], blends.shape[1:]).astype(np.float32)
    spec_step = partial(scarlet2.relative_step, factor=0.05)

    start = time.perf_counter()
    first = None
    for i in range(n_blends):
        t0 = time.perf_counter()
        rows = np.nonzero(blend_id == i)[0]
        obs = scarlet2.Observation(jnp.asarray(blends[i]), jnp.asarray(weights),
                                   psf=scarlet2.ArrayPSF(jnp.asarray(psf)), channels=bands)
        frame = scarlet2.Frame.from_observations(obs)
        with scarlet2.Scene(frame) as scene:
            for r in rows:
                center = jnp.array([float(truth["y"][r]), float(truth["x"][r])])  # scarlet2: (y, x)
                try:
                    spectrum, morph = scarlet2.init.from_gaussian_moments(obs, center, min_corr=0.99)
                except ValueError:
                    spectrum = scarlet2.init.pixel_spectrum(obs, center)
                    morph = scarlet2.init.compact_morphology()
                # Noise can make a faint band's initial flux negative, which the positivity
                # constraint cannot start from: floor it at 1e-3 of the brightest band.
                spectrum = jnp.maximum(jnp.asarray(spectrum), 1e-3 * jnp.max(jnp.asarray(spectrum)))
                scarlet2.Source(center, spectrum, morph)
        with scarlet2.Parameters(scene) as parameters:
            for k, src in enumerate(scene.sources):
                scarlet2.Parameter(src.spectrum, name=f"spectrum:{k}", constraint=constraints.positive,
                                   stepsize=spec_step)
                scarlet2.Parameter(src.morphology, name=f"morph:{k}", constraint=constraints.positive,
                                   stepsize=0.1)
        fitted = scene.fit(obs, parameters, max_iter=args.max_iter, progress_bar=False)
        for k, r in enumerate(rows):
            observed = np.asarray(obs.render(fitted.evaluate_source(fitted.sources[k])))  # (B, H, W)
            y0, x0 = int(truth["stamp_y0"][r]), int(truth["stamp_x0"][r])
            H, W = observed.shape[1:]
            ys, xs = max(0, y0), max(0, x0)
            ye, xe = min(H, y0 + stamp), min(W, x0 + stamp)
            if ye > ys and xe > xs:
                models[r, :, ys - y0:ye - y0, xs - x0:xe - x0] = observed[:, ys:ye, xs:xe]
        if first is None:
            first = time.perf_counter() - t0
        if (i + 1) % 10 == 0 or i + 1 == n_blends:
            print(f"scarlet2: {i + 1}/{n_blends} blends, {time.perf_counter() - start:.1f} s", file=sys.stderr)
    seconds = time.perf_counter() - start

    out = fits.HDUList([fits.PrimaryHDU()])
    h = fits.ImageHDU(models, name="MODELS")
    h.header["SECONDS"] = (seconds, "wall time of all fits, s")
    h.header["SECFIRST"] = (first or 0.0, "first blend wall time (JIT included), s")
    h.header["NBLENDS"] = n_blends
    h.header["MAXITER"] = args.max_iter
    h.header["SCARLET2"] = scarlet2.__version__
    h.header["JAX"] = jax.__version__
    out.append(h)
    tmp = args.output + ".tmp"
    out.writeto(tmp, overwrite=True)
    os.replace(tmp, args.output)
    print(f"scarlet2: {n_blends} blends in {seconds:.1f} s ({seconds / max(1, n_blends):.3f} s per blend)")


if __name__ == "__main__":
    main()

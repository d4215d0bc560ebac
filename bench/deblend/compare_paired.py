"""Deblenders compared on the same galaxies, with confidence intervals from resampling whole
blends (a blend's galaxies share its errors, so they are resampled together):

    DEMIX_PER_GALAXY=pg.csv bench_deblend blends.fits model.dmx cpu   # appends per-galaxy rows
    python3 compare_paired.py blends.fits pg.csv [--reference demix-classical] [--reps 2000]

For each method against the reference: mean |flux residual| and the 68% half-width
(p84 - p16) / 2 of the residual in r, mean |g - r error|, mean |delta e|, and their differences
(method - reference) with 95% percentile intervals over blend resamples; an interval below zero
means the method is better. Then bright isolated galaxies (alone in their blend, r < 23.5): the
mean and mean |flux residual| in r. One JSON line per figure, and a table.
"""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
from astropy.io import fits


def half68(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float((np.percentile(x, 84) - np.percentile(x, 16)) / 2) if x.size else np.nan


def finite_mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else np.nan


METRICS = {
    "flux_r_mean_abs": lambda g: finite_mean(np.abs(g["flux_res_r"])),
    "flux_r_spread68": lambda g: half68(g["flux_res_r"]),
    "gr_mean_abs": lambda g: finite_mean(np.abs(g["gr_error"])),
    "e_error_mean": lambda g: finite_mean(g["e_error"]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("per_galaxy")
    ap.add_argument("--reference", default="demix-classical")
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    truth = fits.getdata(args.dataset, "TRUTH")
    blend = np.asarray(truth["blend_id"], int)
    rows: dict[str, dict[str, list[float]]] = {}
    with open(args.per_galaxy) as f:
        for r in csv.DictReader(f):
            m = rows.setdefault(r["method"], {})
            for k, v in r.items():
                if k != "method":
                    m.setdefault(k, []).append(float(v))
    methods = {}
    for name, cols in rows.items():
        if name.endswith("-repeat"):
            continue  # the same fit timed again
        d = {k: np.asarray(v) for k, v in cols.items()}
        galaxy = d.pop("galaxy").astype(int)
        if galaxy.size != np.unique(galaxy).size:
            raise SystemExit(f"{args.per_galaxy}: method {name} has repeated galaxies (the file "
                             "holds several runs: start from an empty file)")
        full = {k: np.full(len(blend), np.nan) for k in d}
        for k, v in d.items():
            full[k][galaxy] = v
        methods[name] = full
    if args.reference not in methods:
        raise SystemExit(f"no rows of the reference {args.reference}: {sorted(methods)}")

    rng = np.random.default_rng(args.seed)
    blends = np.unique(blend)
    members = [np.flatnonzero(blend == b) for b in blends]
    samples = [np.concatenate([members[i] for i in rng.integers(0, len(blends), len(blends))])
               for _ in range(args.reps)]
    ref = methods[args.reference]
    name = args.dataset.rsplit("/", 1)[-1]
    print(f"{name}: {len(blends)} blends, {len(blend)} galaxies; differences method - "
          f"{args.reference}, 95% intervals over {args.reps} blend resamples")
    for method, g in methods.items():
        for metric, f in METRICS.items():
            value = f(g)
            line = {"dataset": name, "method": method, "metric": metric, "value": value}
            if method != args.reference:
                sub = lambda d, idx: {k: v[idx] for k, v in d.items()}  # noqa: E731
                diffs = np.array([f(sub(g, i)) - f(sub(ref, i)) for i in samples])
                lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
                line.update({"reference": args.reference, "difference": value - f(ref),
                             "ci95": [float(lo), float(hi)]})
            print(json.dumps(line))
    # Where the errors come from: the colour error against the true colour (a prior pulls
    # colours towards its training population), and the flux error per morphology
    # (galsim_blends.py's morph column: 0 Sersic, 1 bulge + disk, 2 knotty disk).
    true_gr = np.asarray(truth["mag_g"]) - np.asarray(truth["mag_r"])
    for method, g in methods.items():
        ok = np.isfinite(g["gr_error"])
        line = {"dataset": name, "method": method,
                "gr_error_vs_true_gr_correlation": float(np.corrcoef(g["gr_error"][ok],
                                                                     true_gr[ok])[0, 1]),
                "gr_error_mean_blue(g-r<0.3)": finite_mean(g["gr_error"][true_gr < 0.3]),
                "gr_error_mean_red(g-r>0.7)": finite_mean(g["gr_error"][true_gr > 0.7])}
        if "morph" in truth.names:
            morph = np.asarray(truth["morph"])
            for k, label in enumerate(["sersic", "bulge+disk", "knotty"]):
                line[f"flux_r_mean_{label}"] = finite_mean(g["flux_res_r"][morph == k])
            n = np.asarray(truth["sersic_n"])
            line["flux_r_mean_sersic_n<1"] = finite_mean(g["flux_res_r"][(morph == 0) & (n < 1)])
            line["flux_r_mean_sersic_n>3.5"] = finite_mean(
                g["flux_res_r"][(morph == 0) & (n > 3.5)])
        print(json.dumps(line))
    # Bright isolated galaxies: alone in their blend and r < 23.5.
    bright = (np.asarray(truth["n_blend"]) == 1) & (np.asarray(truth["mag_r"]) < 23.5)
    for method, g in methods.items():
        r = g["flux_res_r"][bright]
        print(json.dumps({"dataset": name, "method": method, "subset": "isolated, r < 23.5",
                          "galaxies": int(bright.sum()), "flux_r_mean": finite_mean(r),
                          "flux_r_mean_abs": finite_mean(np.abs(r))}))


if __name__ == "__main__":
    main()

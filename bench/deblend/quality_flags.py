"""How often the deblending catalogue's quality flags fire, and whether they catch the bad fits:
`demix.deblend` (MADNESS, shipped model, true positions) on each blend of a dataset, the flags
against each galaxy's r-band flux error (model flux / truth's flux inside its stamp - 1).

    PYTHONPATH=build/python python3 quality_flags.py blends.fits [--blends 100]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import demix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--blends", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    ds = demix.read_dataset(args.dataset)
    t = ds.truth
    errors, flags, chi2, foreign = [], [], [], []
    for n in range(min(args.blends, ds.images.shape[0])):
        rows = np.flatnonzero(t["blend_id"] == n)
        xy = np.stack([t["x"][rows], t["y"][rows]], 1)
        r = demix.deblend(ds.images[n], ds.header, positions=xy, device=args.device)
        c = r.catalogue
        errors += list(c["flux_r"] / t["stamp_flux_r"][rows] - 1)
        flags += list(c["flags"])
        chi2 += list(c["chi2"])
        foreign += list(c["foreign_share"])
    err, fl = np.abs(np.array(errors)), np.array(flags)
    bad = err > 0.2
    flagged = (fl & (1 | 8 | 16)) != 0
    print(json.dumps({
        "dataset": args.dataset.rsplit("/", 1)[-1], "galaxies": int(err.size),
        "flagged_share": float(flagged.mean()),
        "flag8_share": float(((fl & 8) != 0).mean()), "flag16_share": float(((fl & 16) != 0).mean()),
        "flag1_share": float(((fl & 1) != 0).mean()),
        "flux_error_gt_20pct": int(bad.sum()),
        "of_which_flagged": int((bad & flagged).sum()),
        "mean_abs_error_flagged": float(err[flagged].mean()) if flagged.any() else None,
        "mean_abs_error_unflagged": float(err[~flagged].mean()),
        "chi2_median": float(np.nanmedian(chi2)), "chi2_p90": float(np.nanpercentile(chi2, 90)),
        "foreign_share_p90": float(np.nanpercentile(foreign, 90))}))


if __name__ == "__main__":
    main()

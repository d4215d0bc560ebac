#!/usr/bin/env python3
"""The scattering covariance of Cheng et al. (SihaoCheng/scattering_transform), the oracle of
tests/regression/test_scov_cheng_p11.cpp: what `Scattering2d.scattering_cov` returns beyond the
P00-normalised classes of shared/reference/peers (P11, P11_iso, C11_pre_norm_iso and the
'for_synthesis' vectors with their index tables), for normalization='P00' and 'P11'.

Input: a batch of two 64 x 64 maps, the dust maps shared/data/dust/I_1.npy and I_2.npy decimated
by 8, float64, as they are (positive: the synthesis vectors take logs).
`Scattering2d(64, 64, J=5, L=4, device='cpu')` (default Morlet bank, single-precision filters),
`scattering_cov(x, normalization=...)` without a reference (that code's use_ref=True path fails
for normalization='P11': it reads a reference P00 it never loads).

Outputs in tests/data/cheng_scov/ (about 0.3 MB):
  input.npy                          (2, 64, 64) float64
  P11.npy, P11_iso.npy               (2, J, J, L, L), (2, J, J, L) float64, NaN outside j1 <= j2
  C11_pre_norm_iso.npy               (2, J, J, J, L, L) float64, NaN outside j1 <= j2 <= j3
  norm-<P00|P11>_for_synthesis.npy   (2, K) float64, and _for_synthesis_iso.npy
  norm-<P00|P11>_index_for_synthesis.npy   (7, K) int8 rows (type, j1, j2, j3, l1, l2, l3), and _iso

That repository has no licence: it is run here, never copied. Regenerate (torch >= 1.7, numpy,
matplotlib; a CPU build is enough; seconds):
  G=/work/.mirror/SihaoCheng+scattering_transform/repo      # any checkout of that repository
  mkdir -p /tmp/cheng && for f in $(git --git-dir=$G ls-tree -r HEAD --name-only scattering | grep '\\.py$'); \\
    do mkdir -p /tmp/cheng/$(dirname $f); git --git-dir=$G show HEAD:$f > /tmp/cheng/$f; done
  MPLBACKEND=Agg /work/venv-oracles/bin/python scripts/oracles/make_cheng_scov.py \\
      --cheng /tmp/cheng --dust ../shared/data/dust --out tests/data/cheng_scov
(made with commit 04f36a64677c of that repository, Debian's python3-torch 1.13).
"""

import argparse
import os
import sys

import numpy as np
import torch

M, J, L, STEP = 64, 5, 4, 8


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cheng", required=True, help="folder holding the package 'scattering'")
    parser.add_argument("--dust", required=True, help="folder holding I_1.npy and I_2.npy")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args()
    sys.path.insert(0, args.cheng)
    import scattering  # noqa: E402  (from --cheng)

    os.makedirs(args.out, exist_ok=True)
    out = lambda name, a: np.save(os.path.join(args.out, name + ".npy"), a)
    x = np.stack([np.load(os.path.join(args.dust, f"I_{k}.npy"))[::STEP, ::STEP] for k in (1, 2)])
    x = x.astype(np.float64)
    assert x.shape == (2, M, M)
    out("input", x)

    st = scattering.Scattering2d(M, M, J=J, L=L, device="cpu")
    for norm in ("P00", "P11"):
        r = st.scattering_cov(torch.from_numpy(x), normalization=norm)
        if norm == "P00":  # these three do not depend on the normalisation
            out("P11", r["P11"].numpy())
            out("P11_iso", r["P11_iso"].numpy())
            out("C11_pre_norm_iso", r["C11_pre_norm_iso"].numpy())
        for key in ("for_synthesis", "for_synthesis_iso"):
            out(f"norm-{norm}_{key}", r[key].numpy())
            index = r["index_" + key].numpy()
            assert index.min() >= -1 and index.max() < 127
            out(f"norm-{norm}_index_{key}", index.astype(np.int8))
        print(norm, {k: tuple(r[k].shape) for k in ("for_synthesis", "for_synthesis_iso")})


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""pywph's WPH moments of a complex map, the oracle of tests/regression/test_wph_pywph_complex.cpp.

The map: z = I_1' + i I_2', with I_k' the dust map shared/data/dust/I_k.npy decimated by 4
(512 -> 128, which keeps the periodicity of the simulation box) and standardised (zero mean,
unit standard deviation).  pywph 1.1.3, double precision, default model with cplx=True
(2L angles in [0, 2 pi), pseudo S11 and pseudo L moments), M = N = 128, J = 5, L = 4, dn = 2,
A = 4, for norm in {None, "auto"} and pbc in {True, False}; the stored normalisation is cleared
before each call, so "auto" normalises by the map's own statistics.

Outputs in tests/data/pywph_complex/ (about 1 MB in all):
  input.npy                          (128, 128) complex128, the map
  wph_indices.npy / sm_indices.npy   int64 rows [j1 t1 p1 j2 t2 p2 n a pseudo] / [j p1 p2 pseudo],
                                     in pywph's lexicographic order (the same for all four runs)
  norm-<none|auto>_pbc-<1|0>_wph.npy complex128 WPH moments, in the order of wph_indices.npy
  norm-<none|auto>_pbc-<1|0>_sm.npy  complex128 scaling moments, in the order of sm_indices.npy

Regenerate (pywph needs torch >= 1.9, numpy, scipy; a CPU build is enough; a few minutes on 2 cores).
These files were made with Debian's python3-torch 1.13 and pywph 1.1.3 from PyPI:
  apt-get install python3-torch python3-scipy python3-psutil python3-matplotlib
  /usr/bin/python3 -m venv --system-site-packages /work/venv-oracles
  /work/venv-oracles/bin/pip install --no-deps pywph==1.1.3
  /work/venv-oracles/bin/python scripts/oracles/make_pywph_complex.py \
      --dust ../shared/data/dust --out tests/data/pywph_complex
"""

import os

import numpy as np
import pywph
import torch

from oracle_maps import DN, J, L, M, dust_maps, parse_args, save_moments


def main():
    args = parse_args(__doc__.splitlines()[0])

    i1, i2 = dust_maps(args.dust)
    z = i1 + 1j * i2
    assert z.shape == (M, M)
    np.save(os.path.join(args.out, "input.npy"), z.astype(np.complex128))

    op = pywph.WPHOp(M, M, J, L=L, dn=DN, cplx=True, precision="double", device="cpu")
    wph_idx = sm_idx = None
    for norm in (None, "auto"):
        for pbc in (True, False):
            op.clear_normalization()
            w = op.apply(torch.from_numpy(z), norm=norm, pbc=pbc, ret_wph_obj=True)
            if wph_idx is None:
                wph_idx, sm_idx = w.wph_coeffs_indices, w.sm_coeffs_indices
                np.save(os.path.join(args.out, "wph_indices.npy"), wph_idx.astype(np.int64))
                np.save(os.path.join(args.out, "sm_indices.npy"), sm_idx.astype(np.int64))
            assert np.array_equal(wph_idx, w.wph_coeffs_indices)
            assert np.array_equal(sm_idx, w.sm_coeffs_indices)
            name = f"norm-{'auto' if norm else 'none'}_pbc-{int(pbc)}"
            save_moments(args.out, name, w)


if __name__ == "__main__":
    main()

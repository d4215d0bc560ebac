#!/usr/bin/env python3
"""pywph's cross-WPH moments of two maps, the oracle of tests/regression/test_wph_pywph_cross.cpp.

The maps: x = I_1', y = I_2', the dust maps shared/data/dust/I_k.npy decimated by 4 (512 -> 128,
which keeps the periodicity of the simulation box) and standardised. pywph 1.1.3, double precision,
default model (real data), M = N = 128, J = 5, L = 4, dn = 2, A = 4, periodic (pbc=True), for norm
in {None, "auto"}, with apply([x, y], cross=True): each moment pairs [x*psi1]^p1 with [y*psi2]^p2.
The stored normalisation is cleared before each call, so "auto" uses each map's own statistics.

Outputs in tests/data/pywph_cross/:
  x.npy, y.npy                       (128, 128) float64, the maps
  wph_indices.npy / sm_indices.npy   int64 rows [j1 t1 p1 j2 t2 p2 n a pseudo] / [j p1 p2 pseudo]
  norm-<none|auto>_wph.npy / _sm.npy complex128 moments, in the order of the index files

Regenerate as scripts/oracles/make_pywph_complex.py says (same virtual environment), then:
  /work/venv-oracles/bin/python scripts/oracles/make_pywph_cross.py \\
      --dust ../shared/data/dust --out tests/data/pywph_cross
"""

import os

import numpy as np
import pywph
import torch

from oracle_maps import DN, J, L, M, dust_maps, parse_args, save_moments


def main():
    args = parse_args(__doc__.splitlines()[0])
    maps = dust_maps(args.dust)
    np.save(os.path.join(args.out, "x.npy"), maps[0])
    np.save(os.path.join(args.out, "y.npy"), maps[1])

    op = pywph.WPHOp(M, M, J, L=L, dn=DN, precision="double", device="cpu")
    for norm in (None, "auto"):
        op.clear_normalization()
        data = [torch.from_numpy(maps[0]), torch.from_numpy(maps[1])]
        w = op.apply(data, norm=norm, pbc=True, cross=True, ret_wph_obj=True)
        np.save(os.path.join(args.out, "wph_indices.npy"), w.wph_coeffs_indices.astype(np.int64))
        np.save(os.path.join(args.out, "sm_indices.npy"), w.sm_coeffs_indices.astype(np.int64))
        name = f"norm-{'auto' if norm else 'none'}"
        save_moments(args.out, name, w)


if __name__ == "__main__":
    main()

"""What the pywph oracle scripts (make_pywph_complex.py, make_pywph_cross.py) share: their command
line, the WPH configuration, the two dust maps they start from, and how moments are written.

The scripts import it from their own folder (Python puts a script's folder on sys.path).
"""

import argparse
import os

import numpy as np

M, J, L, DN = 128, 5, 4, 2  # map size, scales, angles, maximal translation of the pywph runs


def standardise(a):
    """`a` in float64 with zero mean and unit standard deviation."""
    a = np.asarray(a, dtype=np.float64)
    return (a - a.mean()) / a.std()


def parse_args(description):
    """--dust and --out of an oracle script; creates the output folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dust", required=True, help="folder holding I_1.npy and I_2.npy")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    return args


def dust_maps(folder):
    """I_1 and I_2 of `folder` decimated to (M, M) (every k-th pixel, which keeps the periodicity
    of the simulation box) and standardised: two (M, M) float64 arrays."""
    maps = []
    for name in ("I_1", "I_2"):
        a = np.load(os.path.join(folder, name + ".npy"))
        step = a.shape[0] // M
        maps.append(standardise(a[::step, ::step]))
    return maps


def save_moments(out, name, w):
    """Writes the WPH and scaling moments of pywph's result `w` as <name>_wph.npy / <name>_sm.npy
    (complex128) in `out`, and says how many there are."""
    np.save(os.path.join(out, name + "_wph.npy"), w.wph_coeffs.astype(np.complex128))
    np.save(os.path.join(out, name + "_sm.npy"), w.sm_coeffs.astype(np.complex128))
    print(f"{name}: {w.wph_coeffs.shape[-1]} WPH + {w.sm_coeffs.shape[-1]} scaling moments")

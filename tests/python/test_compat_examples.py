"""The pywph-style example script (examples/python/pywph_style.py) through demix.compat.pywph,
and, where pywph is importable, the same script on pywph: the same numbers."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, shared_file

SCRIPT = ROOT / "examples" / "python" / "pywph_style.py"


def run(tmp_path: pathlib.Path, *extra: str) -> dict[str, np.ndarray]:
    out = tmp_path / ("pywph.npz" if extra else "demix.npz")
    r = subprocess.run([sys.executable, str(SCRIPT), str(shared_file("data/dust/I_1.npy")),
                        str(out), *extra], capture_output=True, text=True, env=os.environ.copy())
    assert r.returncode == 0, f"{SCRIPT.name} {' '.join(extra)} failed:\n{r.stdout}\n{r.stderr}"
    with np.load(out) as f:
        return dict(f)


def test_example_runs_on_demix(tmp_path):
    got = run(tmp_path)
    assert got["coeffs"].ndim == 1 and np.iscomplexobj(got["coeffs"])
    assert len(got["losses"]) == 5 and got["losses"][-1] < got["losses"][0]


def test_example_gives_pywphs_numbers(tmp_path):
    pytest.importorskip("pywph")
    ours, theirs = run(tmp_path), run(tmp_path, "--with-pywph")
    for key in ("s11_indices", "c01_indices", "iso_indices"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    for key in ("coeffs", "s11", "c01", "iso", "losses", "x"):
        a, b = ours[key], theirs[key]
        err = np.abs(a - b).max() / np.abs(b).max()
        assert err < 1e-8, f"{key}: {err}"

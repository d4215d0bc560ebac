"""Bad input gives a Python exception of the right kind with the library's message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import demix


def test_options_out_of_range():
    with pytest.raises(ValueError, match=r"J = 6 is out of range .* so J <= 5") as e:
        demix.WPH((64, 64), J=6)
    assert isinstance(e.value, demix.InvalidValueError) and isinstance(e.value, demix.Error)
    with pytest.raises(ValueError, match="L = 0: must be >= 1"):
        demix.WST((64, 64), L=0)
    with pytest.raises(ValueError, match="boundary must be one of periodic, nonperiodic, got 'torus'"):
        demix.WPH((64, 64), boundary="torus")
    with pytest.raises(ValueError, match="norm must be one of default, none, auto, got 'max'"):
        demix.WPH((64, 64), norm="max")
    with pytest.raises(ValueError, match=r"J = 7 is out of range .* so J <= 6"):
        demix.statistic("wst", (64, 64), J=7)  # wst allows 2^J = min(H, W)
    with pytest.raises(TypeError):
        demix.statistic("wst", (64, 64), dn=2)  # WST has no shifts: not in its signature
    with pytest.raises(TypeError, match="dtype must be torch.float32 or torch.float64"):
        demix.WPH((64, 64), dtype=torch.float16)


def test_bad_maps():
    op = demix.PowerSpectrum((32, 32))
    with pytest.raises(demix.ShapeError, match=r"\(H, W\) = \(32, 32\).*got \(32, 16\)"):
        op(np.zeros((32, 16)))
    with pytest.raises(ValueError, match="got \\(2, 2, 32, 32\\)"):
        op(np.zeros((2, 2, 32, 32)))
    with pytest.raises(TypeError, match="x must be a NumPy array or a torch tensor, got dict"):
        op({"x": 1})
    with pytest.raises(TypeError, match="NumPy dtype"):
        op(np.array([["a"] * 32] * 32))
    with pytest.raises(ValueError, match="x and y must have the same shape"):
        op.forward_cross(np.zeros((32, 32)), np.zeros((2, 32, 32)))


def test_library_errors_keep_their_message():
    op = demix.WST((32, 32), J=2, L=4)
    assert not op.supports_cross
    with pytest.raises(ValueError, match="wst") as e:
        op.forward_cross(np.zeros((32, 32)), np.zeros((32, 32)))
    assert isinstance(e.value, demix.Error)
    wph = demix.WPH((32, 32), J=2)
    with pytest.raises(demix.ShapeError, match=f"target must be .* K = {len(wph)}"):
        wph.loss_and_grad(np.zeros((32, 32)), np.zeros(len(wph) + 1))
    with pytest.raises(demix.ShapeError, match="weights must be"):
        wph.loss_and_grad(np.zeros((32, 32)), np.zeros(len(wph)), np.ones((2, 3, len(wph))))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_missing_device():
    with pytest.raises(demix.DeviceError) as e:
        demix.WPH((32, 32), J=2, device="cuda")
    assert isinstance(e.value, RuntimeError)


def test_import_refuses_another_torch():
    """An extension built for another LibTorch would crash the process as it loads: the package
    checks the version first (here a torch that claims another version, in a fresh process)."""
    import subprocess
    import sys
    code = ("import torch; torch.__version__ = '9.9.0'\n"
            "try:\n    import demix\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "built against LibTorch" in out.stdout and "torch 9.9.0 is imported" in out.stdout

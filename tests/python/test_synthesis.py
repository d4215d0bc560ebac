"""Synthesis from Python: the same samples as `demix synth`, progress, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import demix
from conftest import run_cli


@pytest.fixture(scope="module")
def target(dust128) -> np.ndarray:
    return np.ascontiguousarray(dust128[:64, :64])  # float64


def test_same_samples_as_the_command_line(target, cli, tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    np.save(tmp_path / "t.npy", target)
    run_cli(cli, "-q", "--dtype", "float64", "--device", "cpu", "synth", str(tmp_path / "t.npy"),
            "--stats", "wph", "-J", "4", "-L", "4", "--dn", "1", "--samples", "2",
            "--iterations", "5", "--seed", "3", "-o", str(tmp_path / "s.fits"))
    with fits.open(tmp_path / "s.fits") as f:
        cli_samples = f[0].data.astype(np.float64)
        cli_loss = np.asarray(f["LOSS"].data["LOSS"], dtype=np.float64)

    # The CLI's --norm default for synthesis is auto.
    r = demix.synthesize(target, demix.WPH(target.shape, J=4, L=4, dn=1, norm="auto"),
                         samples=2, iterations=5, seed=3)
    assert isinstance(r.samples, np.ndarray) and r.samples.shape == (2, 64, 64)
    # Same library, seed and float64 maths: only the order of multithreaded sums may differ,
    # ~1e-16, which five L-BFGS iterations amplify far less than to 1e-9.
    np.testing.assert_allclose(r.samples, cli_samples, rtol=0, atol=1e-9 * target.std())
    np.testing.assert_allclose(r.loss_history, cli_loss, rtol=1e-9)
    assert r.iterations == 5 and r.loss_history.shape == (6, 2)


def test_progress_batches_and_tensors(target):
    calls = []
    t = torch.from_numpy(np.stack([target, target.T]))  # two target maps
    r = demix.synthesize(t, [demix.WPH((64, 64), J=4, dn=0, norm="auto"),
                             demix.PowerSpectrum((64, 64))], weights=[1.0, 0.5],
                         samples=2, iterations=4, seed=1, progress=calls.append)
    assert torch.is_tensor(r.samples) and r.samples.shape == (2, 64, 64)
    assert [c["iteration"] for c in calls] == [1, 2, 3, 4]
    assert np.all(r.loss_history[-1] < r.loss_history[0])
    assert set(r.term_losses) == {"wph[0]", "ps[0]"}
    # Same seed, same samples.
    again = demix.synthesize(t, [demix.WPH((64, 64), J=4, dn=0, norm="auto"),
                                 demix.PowerSpectrum((64, 64))], weights=[1.0, 0.5],
                             samples=2, iterations=4, seed=1)
    assert torch.equal(r.samples, again.samples)


def test_channels(target):
    cube = np.stack([target, 0.5 * target + 0.1 * target.T])  # one map of two channels
    r = demix.synthesize(cube, demix.PowerSpectrum((64, 64)), channels=True, iterations=2)
    assert r.samples.shape == (1, 2, 64, 64)
    assert set(r.term_losses) == {"ps[0]", "ps[1]", "ps[0x1]"}


def test_synthesis_errors(target):
    with pytest.raises(demix.ShapeError, match="built for 32 x 32 maps cannot match 64 x 64"):
        demix.synthesize(target, demix.WPH((32, 32), J=3))
    with pytest.raises(ValueError, match="weights gives 2 weight"):
        demix.synthesize(target, demix.WPH((64, 64), J=3), weights=[1, 2])
    with pytest.raises(ValueError, match="init must be one of noise, gaussian, got 'white'"):
        demix.synthesize(target, init="white")
    with pytest.raises(ValueError, match="log"):
        demix.synthesize(target - target.max(), log=True, iterations=1)  # log of maps <= 0
    with pytest.raises(TypeError, match="statistics must be demix operators"):
        demix.synthesize(target, ["wph"])


def test_an_exception_in_progress_stops_the_run(target):
    """As Ctrl-C does (KeyboardInterrupt raised at the next iteration): the run stops and the
    exception reaches the caller."""
    def stop(p):
        if p["iteration"] == 2:
            raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        demix.synthesize(target, demix.PowerSpectrum((64, 64)), iterations=50, progress=stop)

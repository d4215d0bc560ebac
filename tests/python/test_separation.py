"""Separation and validation from Python: the same maps as `demix separate` and `demix
validate`, the Wiener filter, progress, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import demix
from conftest import run_cli


@pytest.fixture(scope="module")
def noisy(dust128):
    # The log dust map (crop), standardised, plus white noise at SNR 1; 6 realizations of it.
    s = np.ascontiguousarray(dust128[:32, :32])
    s = (s - s.mean()) / s.std()
    rng = np.random.default_rng(4)
    return s, s + rng.standard_normal(s.shape), rng.standard_normal((6, 32, 32))


def test_same_separation_as_the_command_line(noisy, cli, tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    s, d, c = noisy
    np.save(tmp_path / "d.npy", d)
    np.save(tmp_path / "c.npy", c)
    run_cli(cli, "-q", "--dtype", "float64", "--device", "cpu", "separate", str(tmp_path / "d.npy"),
            "--contamination", str(tmp_path / "c.npy"), "--stats", "wph", "-J", "3", "-L", "4",
            "--dn", "1", "--eras", "2", "--iterations", "4", "--estimator", "realizations",
            "--fresh-realizations", "3", "--seed", "2", "-o", str(tmp_path / "s.fits"))
    with fits.open(tmp_path / "s.fits") as f:
        cli_signal = f[0].data.astype(np.float64)
        cli_loss = np.asarray(f["LOSS"].data["LOSS"], dtype=np.float64)

    calls = []
    # The CLI's --norm default for separation is auto (the observation's reference).
    r = demix.separate(d, c, demix.WPH(d.shape, J=3, L=4, dn=1, norm="auto"), eras=2,
                       iterations=4, estimator="realizations", fresh_realizations=3, seed=2,
                       progress=calls.append)
    assert isinstance(r.signal, np.ndarray) and r.signal.shape == (32, 32)
    # Same library and float64 maths: only the order of multithreaded sums may differ.
    np.testing.assert_allclose(r.signal, cli_signal, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.concatenate(r.loss_history), cli_loss, rtol=1e-9)
    np.testing.assert_allclose(r.signal + r.contamination, d, atol=1e-12)
    assert [(p["era"], p["iteration"]) for p in calls] == [(e, i) for e in (1, 2)
                                                           for i in range(1, 5)]
    assert len(r.kept_parts) == 2 and r.seconds > 0


def test_separation_removes_noise_and_keeps_tensors(noisy):
    s, d, c = noisy
    r = demix.separate(torch.from_numpy(d), torch.from_numpy(c),
                       demix.WPH(d.shape, J=3, L=4, dn=1, norm="auto"), eras=2, iterations=15)
    assert isinstance(r.signal, torch.Tensor) and r.signal.dtype == torch.float64
    err, err_d = np.mean((r.signal.numpy() - s) ** 2), np.mean((d - s) ** 2)
    assert err < 0.8 * err_d, (err, err_d)
    # The linear baselines: both remove noise; the matched filter keeps more power.
    w = demix.wiener_filter(d, c)
    m = demix.wiener_filter(d, c, gain="matched")
    assert w.shape == (32, 32) and np.mean((w - s) ** 2) < err_d
    assert np.var(m) > np.var(w)


def test_masks_leave_pixels_out_of_the_fit(noisy):
    s, d, c = noisy
    mask = np.ones_like(d)
    mask[:6, :6] = 0
    r = demix.separate(d, c, demix.WPH(d.shape, J=3, L=4, dn=1, norm="auto"), eras=1,
                       iterations=4, start="observation", masks=mask)
    np.testing.assert_array_equal(r.signal[:6, :6], d[:6, :6])
    assert np.abs(r.signal[10:, 10:] - d[10:, 10:]).max() > 1e-3
    with pytest.raises(demix.InvalidValueError, match=r"\[0, 1\]"):
        demix.separate(d, c, masks=2 * mask)


def test_separation_errors(noisy):
    s, d, c = noisy
    with pytest.raises(demix.InvalidValueError, match="estimator must be one of bias"):
        demix.separate(d, c, estimator="magic")
    with pytest.raises(demix.InvalidValueError, match="terms: no term 'colour'"):
        demix.separate(d, c, terms={"colour": 1})
    with pytest.raises(demix.ShapeError, match="contamination"):
        demix.separate(d, c[:, :16])
    with pytest.raises(demix.InvalidValueError, match="fresh_realizations"):
        demix.separate(d, c, fresh_realizations=2)  # the bias estimator draws none
    with pytest.raises(demix.ShapeError):
        demix.separate(d, c, demix.WPH((16, 16), J=2))


def test_same_report_as_the_command_line(noisy, cli, tmp_path):
    s, d, c = noisy
    rng = np.random.default_rng(9)
    targets = np.stack([s, s.T])
    samples = targets + 0.3 * rng.standard_normal(targets.shape)
    np.save(tmp_path / "t.npy", targets)
    np.save(tmp_path / "x.npy", samples)
    run_cli(cli, "-q", "validate", str(tmp_path / "t.npy"), str(tmp_path / "x.npy"), "--report",
            str(tmp_path / "report"))
    cli_report = json.loads((tmp_path / "report" / "validation.json").read_text())
    figure = tmp_path / "v.png"
    r = demix.validate(targets, samples, figure=figure)
    assert r.target_maps == 2 and r.sample_maps == 2
    assert r.ks_distance == pytest.approx(cli_report["ks_distance"], rel=1e-12)
    assert set(r.curves) == set(cli_report["curves"])
    for name, curve in r.curves.items():
        np.testing.assert_allclose(curve.sample_mean, cli_report["curves"][name]["sample_mean"],
                                   rtol=1e-12, atol=1e-300)
        assert curve.max_deviation == pytest.approx(cli_report["curves"][name]["max_deviation"])
    # Noise added: the samples' kurtosis and spectrum differ from the targets'.
    assert r.max_deviations()["power_spectrum"] > 0.05
    assert r.moments["std"]["target_mean"] > 0
    if (tmp_path / "report" / "validation.png").exists():  # built with cairo
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(demix.ShapeError):
        demix.validate(targets, samples[:, :16])

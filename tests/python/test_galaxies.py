"""Galaxy simulation and deblending from Python: the same dataset as `demix simulate blends`,
the same catalogue as `demix deblend`, units, errors."""

from __future__ import annotations

import numpy as np
import pytest

import demix
from conftest import run_cli


@pytest.fixture(scope="module")
def blends(tmp_path_factory):
    path = tmp_path_factory.mktemp("blends") / "b.fits"
    calls = []
    ds = demix.simulate_blends(path, count=3, seed=1, max_galaxies=3, progress=calls.append)
    assert calls and calls[-1]["done"] == calls[-1]["total"] == 3
    return path, ds


def test_same_dataset_as_the_command_line(blends, cli, tmp_path):
    path, ds = blends
    run_cli(cli, "-q", "--device", "cpu", "simulate", "blends", "-n", "3", "--seed", "1",
            "--max-galaxies", "3", "-o", str(tmp_path / "c.fits"))
    ref = demix.read_dataset(tmp_path / "c.fits")
    assert ds.kind == ref.kind == "blends" and ds.images.shape == (3, 6, 120, 120)
    np.testing.assert_array_equal(ds.images, ref.images)
    np.testing.assert_array_equal(ds.stamps, ref.stamps)
    assert ds.truth.names == ref.truth.names and len(ds.truth) == ds.stamps.shape[0]
    for name in ds.truth.names:
        np.testing.assert_array_equal(ds.truth[name], ref.truth[name], err_msg=name)
    assert ds.bands == ["u", "g", "r", "i", "z", "y"] and ds.sigma.shape == (6,)
    assert ds.truth.units["flux_r"] and ds.header["SIGMA3"] == pytest.approx(ds.sigma[2])


@pytest.mark.parametrize("method", ["classical", "madness"])
def test_same_catalogue_as_the_command_line(blends, cli, tmp_path, method):
    fits = pytest.importorskip("astropy.io.fits")
    _, ds = blends
    t = ds.truth
    rows = t["blend_id"] == 0
    xy = np.stack([t["x"][rows], t["y"][rows]], 1)
    demix.write_image(tmp_path / "blend.fits", ds.images[0], ds.header)
    with open(tmp_path / "pos.csv", "w") as f:
        f.write("x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in xy))
    run_cli(cli, "-q", "--device", "cpu", "deblend", str(tmp_path / "blend.fits"), "--catalog",
            str(tmp_path / "pos.csv"), "--method", method, "--steps", "20", "-o",
            str(tmp_path / "out"))
    with fits.open(tmp_path / "out" / "catalogue.fits") as f:
        ref = f[1].data

    r = demix.deblend(ds.images[0], ds.header, positions=xy, method=method, max_steps=20)
    G = int(rows.sum())
    assert r.stamps.shape == (G, 6, 45, 45) and r.residual.shape == (6, 120, 120)
    assert r.catalogue.names == list(ref.names)
    for name in ("x", "y", "flux_r", "flux_i", "e1", "e2", "flags"):
        np.testing.assert_allclose(r.catalogue[name], ref[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    models, truth = ds.images[0] - r.residual, ds.noiseless[0]
    if method == "madness":
        # The models explain the galaxies' light: their sum (the blend minus the residual) is
        # closer to the noiseless blend than the noisy image is.
        err, err_image = np.abs(models - truth).sum(), np.abs(ds.images[0] - truth).sum()
        assert err < 0.5 * err_image, (err, err_image)
    else:  # the classical deblender shares out the whole image, noise included
        assert np.abs(r.residual).max() < 1e-3 * np.abs(ds.images[0]).max()
    if method == "madness":
        assert 0 < r.steps <= 20 and np.isfinite(r.loss)
        assert r.children is None
    else:
        assert r.children.shape == (G, 6, 120, 120) and np.isnan(r.loss)


def test_catalogue_units_and_tables(blends):
    pytest.importorskip("astropy")
    _, ds = blends
    t = ds.truth.to_table()
    assert len(t) == len(ds.truth) and str(t["x"].unit) == "pix"
    arr = ds.truth.to_numpy()
    np.testing.assert_array_equal(arr["flux_r"], ds.truth["flux_r"])


def test_galaxy_errors(blends, tmp_path):
    _, ds = blends
    with pytest.raises(demix.InvalidValueError, match="method must be one of madness"):
        demix.deblend(ds.images[0], ds.header, positions=[[60.0, 60.0]], method="magic")
    with pytest.raises(demix.ShapeError):
        demix.deblend(ds.images[0], ds.header, positions=[60.0, 60.0], method="classical")
    with pytest.raises(demix.IoError):
        demix.deblend(ds.images[0], ds.header, positions=[[60.0, 60.0]],
                      model=tmp_path / "missing.dmx")
    with pytest.raises(demix.InvalidValueError, match="psf must be one of"):
        demix.simulate_blends(tmp_path / "x.fits", count=1, psf="airy")
    assert not (tmp_path / "x.fits").exists()
    with pytest.raises(demix.Error):
        demix.read_dataset(tmp_path / "missing.fits")

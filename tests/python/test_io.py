"""Images in and out from Python: FITS and npy, headers kept, astropy as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import demix
from conftest import shared_file


def test_read_npy(tmp_path):
    path = shared_file("data/dust/I_1.npy")
    data, header = demix.read_image(path)
    np.testing.assert_array_equal(data, np.load(path))
    assert isinstance(header, demix.Header) and len(header) == 0


def test_fits_written_by_demix_read_by_astropy(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    data = np.arange(12, dtype=np.float64).reshape(3, 4)
    header = {"CTYPE1": "RA---TAN", "CRVAL1": 83.633083, "CRPIX1": 2.5, "NAXISX": 7,
              "FLAG": True, "OBJECT": "it's a map", "HISTORY": ["made by a test", "twice"]}
    demix.write_image(tmp_path / "m.fits", data, header, dtype="float64")
    with fits.open(tmp_path / "m.fits") as hdul:
        np.testing.assert_array_equal(hdul[0].data, data)
        h = hdul[0].header
        for key in ("CTYPE1", "CRVAL1", "CRPIX1", "NAXISX", "FLAG", "OBJECT"):
            assert h[key] == header[key], key
        assert list(h["HISTORY"]) == ["made by a test", "twice"]


def test_fits_written_by_astropy_read_by_demix(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    data = np.random.default_rng(0).normal(size=(2, 5, 6)).astype(">f4")  # FITS is big-endian
    hdu = fits.PrimaryHDU(data)
    hdu.header["CDELT1"] = (-0.000277777777778, "deg per pixel")
    hdu.header["CUNIT1"] = "deg"
    hdu.header["EQUINOX"] = 2000
    hdu.header["SIMUL"] = False
    hdu.header["COMMENT"] = "a comment"
    hdu.writeto(tmp_path / "a.fits")
    x, header = demix.read_image(str(tmp_path / "a.fits"))
    assert x.shape == (2, 5, 6) and x.dtype == np.float32
    np.testing.assert_array_equal(x, data)
    assert header["CDELT1"] == -0.000277777777778 and header.comments["CDELT1"] == "deg per pixel"
    assert header["CUNIT1"] == "deg" and header["EQUINOX"] == 2000 and header["SIMUL"] is False
    assert header["COMMENT"] == ["a comment"]
    assert "NAXIS1" not in header and "BITPIX" not in header  # structural: the writer's job

    # Round trip through demix: the same keywords and values.
    demix.write_image(tmp_path / "b.fits", torch.from_numpy(x.astype(np.float32)), header)
    y, header2 = demix.read_image(tmp_path / "b.fits")
    np.testing.assert_array_equal(y, x)
    for key in ("CDELT1", "CUNIT1", "EQUINOX", "SIMUL", "COMMENT"):
        assert header2[key] == header[key], key


def test_hdu_selector_and_npy_round_trip(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    sci = fits.ImageHDU(np.ones((4, 4), np.float32), name="SCI")
    fits.HDUList([fits.PrimaryHDU(), sci]).writeto(tmp_path / "m.fits")
    x, _ = demix.read_image(f"{tmp_path / 'm.fits'}[SCI]")
    assert x.shape == (4, 4)
    z = (np.arange(6) + 1j).reshape(2, 3)
    demix.write_image(tmp_path / "z.npy", z)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), z)


def test_io_errors(tmp_path):
    with pytest.raises(OSError, match="nowhere.fits") as e:
        demix.read_image(tmp_path / "nowhere.fits")
    assert isinstance(e.value, demix.IoError)
    (tmp_path / "junk.fits").write_text("not a FITS file at all")
    with pytest.raises(demix.FormatError):
        demix.read_image(tmp_path / "junk.fits")
    bad = np.ones((4, 4))
    bad[1, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="1 NaN"):
        demix.read_image(tmp_path / "nan.npy")
    assert demix.read_image(tmp_path / "nan.npy", nan="zero")[0][1, 2] == 0
    with pytest.raises(ValueError, match="nan must be one of reject, keep, zero, mean, got 'drop'"):
        demix.read_image(tmp_path / "nan.npy", nan="drop")
    with pytest.raises(ValueError, match="complex"):
        demix.write_image(tmp_path / "z.fits", np.ones((2, 2), np.complex64))
    with pytest.raises(TypeError, match="FITS keyword BAD: values must be bool, int, float or str"):
        demix.write_image(tmp_path / "h.fits", np.ones((2, 2)), {"BAD": [1, 2]})
    assert not (tmp_path / "h.fits").exists()

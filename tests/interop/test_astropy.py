#!/usr/bin/env python3
"""Interoperability with the reference Python tools: astropy reads what demix writes and demix reads
what astropy and numpy write, pixel for pixel and keyword for keyword (exact: no arithmetic happens
between writer and reader, and scaled integers are exact in float64).

usage: test_astropy.py PATH/TO/demix
"""
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

DEMIX = None
WCS_KEYS = ["CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2",
            "CUNIT1", "CUNIT2", "RADESYS", "EQUINOX"]


def demix(*args):
    p = subprocess.run([DEMIX, "-q", *map(str, args)], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"demix {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p.stdout


def wcs_header():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [83.633083, 22.0145]
    w.wcs.crpix = [12.5, 8.25]
    w.wcs.cdelt = [-2.7777777777777778e-4, 2.7777777777777778e-4]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    h = w.to_header()
    h["BUNIT"] = "MJy/sr"
    h["OBJECT"] = "Crab"
    h["HISTORY"] = "written by astropy for the demix interop test"
    return h


class AstropyInterop(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(7)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_demix_fits_read_by_astropy(self):
        for dtype in (np.float32, np.float64):
            for shape in ((24, 17), (3, 24, 17)):
                x = self.rng.normal(size=shape).astype(dtype)
                np.save(self.path("x.npy"), x)
                demix("convert", self.path("x.npy"), self.path("x.fits"))
                with fits.open(self.path("x.fits"), checksum=True) as hdul:  # verifies CHECKSUM
                    data = hdul[0].data
                    self.assertEqual(data.dtype, np.dtype(dtype).newbyteorder(">"))
                    np.testing.assert_array_equal(data, x)
                    self.assertIn("DATE", hdul[0].header)

    def test_catalogues_read_by_astropy_with_units(self):
        # The simulator's truth table as ECSV and FITS: the same columns, units astropy parses.
        from astropy.table import Table
        import astropy.units as u
        tables = {}
        for name in ("truth.ecsv", "truth.fits", "truth.csv"):
            demix("simulate", "blends", "-n", 2, "--seed", 4, "-o", self.path("b.fits"),
                  "--csv", self.path(name))
            with warnings.catch_warnings():  # "electron": no FITS-standard unit, astropy warns
                warnings.simplefilter("ignore", u.UnitsWarning)
                tables[name] = Table.read(self.path(name))
        ecsv, fit, csv = tables["truth.ecsv"], tables["truth.fits"], tables["truth.csv"]
        self.assertEqual(ecsv.colnames, csv.colnames)
        self.assertEqual(fit.colnames, csv.colnames)
        for t in (ecsv, fit):
            self.assertEqual(t["x"].unit, u.pix)
            self.assertEqual(t["hlr"].unit, u.arcsec)
            self.assertEqual(t["mag_r"].unit, u.mag)
            np.testing.assert_array_equal(np.asarray(t["flux_r"]), np.asarray(csv["flux_r"]))
        # The .fits.gz name gives a compressed table too.
        demix("simulate", "blends", "-n", 2, "--seed", 4, "-o", self.path("b.fits"), "--csv",
              self.path("truth.fits.gz"))
        with open(self.path("truth.fits.gz"), "rb") as f:
            self.assertEqual(f.read(2), b"\x1f\x8b")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", u.UnitsWarning)
            np.testing.assert_array_equal(Table.read(self.path("truth.fits.gz"))["x"], fit["x"])

    def test_gzip_output_and_plain_names(self):
        # An output named *.fits.gz is gzip-compressed (astropy opens it; its checksum holds), and
        # brackets and parentheses in output names and folders are plain characters, not
        # CFITSIO's extended syntax; nothing else is left in the folder.
        folder = self.path("run (1)")
        os.mkdir(folder)
        x = self.rng.normal(size=(20, 30)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        for name in ["x.fits.gz", "x[1](a).fits", "y[SCI].fits.gz"]:
            out = os.path.join(folder, name)
            demix("convert", self.path("x.npy"), out)
            with open(out, "rb") as f:
                magic = f.read(2)
            self.assertEqual(magic == b"\x1f\x8b", name.endswith(".gz"), name)
            with fits.open(out, checksum=True) as hdul:
                np.testing.assert_array_equal(hdul[0].data, x)
        self.assertEqual(sorted(os.listdir(folder)), ["x.fits.gz", "x[1](a).fits", "y[SCI].fits.gz"])
        # demix reads its compressed output back.
        demix("convert", os.path.join(folder, "x.fits.gz"), self.path("back.npy"))
        np.testing.assert_array_equal(np.load(self.path("back.npy")), x)

    def test_astropy_fits_with_wcs_through_demix(self):
        x = self.rng.normal(size=(16, 24)).astype(np.float32)
        fits.PrimaryHDU(x, header=wcs_header()).writeto(self.path("a.fits"))
        # astropy -> demix (FITS -> FITS and FITS -> npy)
        demix("convert", self.path("a.fits"), self.path("b.fits"))
        demix("convert", self.path("a.fits"), self.path("b.npy"))
        np.testing.assert_array_equal(np.load(self.path("b.npy")), x)
        with fits.open(self.path("a.fits")) as a, fits.open(self.path("b.fits")) as b:
            ha, hb = a[0].header, b[0].header
            np.testing.assert_array_equal(b[0].data, x)
            present = [k for k in WCS_KEYS if k in ha]
            self.assertGreaterEqual(len(present), 11, present)  # astropy may drop EQUINOX for ICRS
            for key in present + ["BUNIT", "OBJECT"]:
                self.assertEqual(hb[key], ha[key], key)
            self.assertIn("written by astropy", str(hb["HISTORY"]))
            self.assertIn("demix", str(hb["HISTORY"]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wa, wb = WCS(ha), WCS(hb)
            pix = np.array([[0.0, 0.0], [15.0, 23.0], [7.5, 3.25]])
            np.testing.assert_array_equal(wa.wcs_pix2world(pix, 0), wb.wcs_pix2world(pix, 0))

    def test_scaled_integer_images(self):
        base = self.rng.integers(-1000, 1000, size=(9, 11))
        cases = {
            "uint8": base.clip(0, 255).astype(np.uint8),
            "int8": base.clip(-128, 127).astype(np.int8),     # astropy stores BZERO = -128
            "uint16": (base + 30000).astype(np.uint16),         # BZERO = 32768
            "int16": base.astype(np.int16),
            "int32": (base * 100000).astype(np.int32),
            "uint32": (base + 5000).astype(np.uint32),
            "int64": (base * 10**12).astype(np.int64),
        }
        for name, data in cases.items():
            fits.PrimaryHDU(data).writeto(self.path(f"{name}.fits"), overwrite=True)
        # A float image quantised to int16 with a non-trivial BSCALE/BZERO.
        hdu = fits.PrimaryHDU(self.rng.normal(size=(9, 11)) * 50)
        hdu.scale("int16", bscale=0.25, bzero=-3.0)
        hdu.writeto(self.path("scaled16.fits"))
        cases["scaled16"] = None
        for name in cases:
            f = self.path(f"{name}.fits")
            demix("convert", f, self.path(f"{name}.npy"), "--out-type", "float64")
            expected = fits.getdata(f).astype(np.float64)  # astropy applies BSCALE/BZERO
            np.testing.assert_array_equal(np.load(self.path(f"{name}.npy")), expected, err_msg=name)

    def test_blank_pixels_become_nan(self):
        data = np.arange(12, dtype=np.int16).reshape(3, 4)
        data[1, 2] = -32768
        hdu = fits.PrimaryHDU(data)
        hdu.header["BLANK"] = -32768
        hdu.writeto(self.path("blank.fits"))
        out = demix("info", self.path("blank.fits"))
        self.assertIn("1 NaN", out)
        demix("convert", self.path("blank.fits"), self.path("blank.npy"), "--nan", "keep")
        got = np.load(self.path("blank.npy"))
        self.assertTrue(np.isnan(got[1, 2]))
        self.assertEqual(got[2, 3], 11)

    def test_hdu_selection_in_astropy_mef(self):
        sci = self.rng.normal(size=(8, 8)).astype(np.float32)
        err = self.rng.normal(size=(4, 6)).astype(np.float64)
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"),
                      fits.ImageHDU(err, name="ERR")]).writeto(self.path("m.fits"))
        demix("convert", self.path("m.fits") + "[ERR]", self.path("err.npy"))
        demix("convert", self.path("m.fits") + "[1]", self.path("sci.npy"))
        np.testing.assert_array_equal(np.load(self.path("err.npy")), err)
        np.testing.assert_array_equal(np.load(self.path("sci.npy")), sci)
        # Without a selector convert would keep one of two images: it refuses, listing them, and
        # writes nothing. (Readers of one map, e.g. stats, take the first image.)
        p = subprocess.run([DEMIX, "convert", self.path("m.fits"), self.path("first.npy")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        for word in ["2 HDUs with data", "1 SCI", "2 ERR", "[1]"]:
            self.assertIn(word, p.stderr)
        self.assertFalse(os.path.exists(self.path("first.npy")))
        out = demix("info", self.path("m.fits[ERR]"))
        self.assertIn("[2] ERR", out)

    def test_npy_every_dtype_order_and_endianness(self):
        for dtype in ("<f4", ">f4", "<f8", ">f8", "<c8", ">c8", "<c16", ">c16"):
            for order in ("C", "F"):
                x = self.rng.normal(size=(5, 7, 3))
                if dtype[1] == "c":
                    x = x + 1j * self.rng.normal(size=x.shape)
                x = np.asarray(x, dtype=np.dtype(dtype), order=order)
                np.save(self.path("in.npy"), x)
                demix("convert", self.path("in.npy"), self.path("out.npy"))
                y = np.load(self.path("out.npy"))
                self.assertEqual(y.dtype, np.dtype(dtype).newbyteorder("<"), (dtype, order))
                np.testing.assert_array_equal(y, x, err_msg=f"{dtype} {order}")


    def test_stats_table_read_and_written_by_astropy(self):
        # demix -> astropy: the COEFFS table, with the map's WCS kept in the primary header.
        x = np.exp(self.rng.normal(size=(64, 64)) * 0.3).astype(np.float32)
        fits.PrimaryHDU(x, header=wcs_header()).writeto(self.path("map.fits"))
        demix("stats", "--kind", "wph", "-J", "3", "--log", self.path("map.fits"), "-o",
              self.path("c.fits"))
        with fits.open(self.path("c.fits"), checksum=True) as hdul:  # verifies CHECKSUM/DATASUM
            self.assertEqual([h.name for h in hdul], ["PRIMARY", "COEFFS"])
            src = fits.getheader(self.path("map.fits"))
            for key in ["CTYPE1", "CRVAL2", "CDELT1", "BUNIT", "OBJECT"]:
                self.assertEqual(hdul[0].header[key], src[key], key)
            self.assertEqual(hdul[0].header["STAT"], "wph")
            t = hdul["COEFFS"].data
            self.assertEqual(t["REAL"].dtype, np.dtype(">f8"))
            self.assertEqual(t["J1"].dtype, np.dtype(">i8"))
            self.assertEqual(len(t), hdul["COEFFS"].header["NCOEFF"])
            # S11 at tau = 0 is <|x * psi|^2> - |<x * psi>|^2: real and positive.
            s11 = t[(t["CLASS"] == "S11") & (t["N"] == 0)]
            self.assertEqual(len(s11), 3 * 4)  # J L
            self.assertTrue((s11["REAL"] > 0).all())
            np.testing.assert_array_equal(s11["J1"], s11["J2"])
        # Selection by class in astropy's Table too (it keeps a string column's padding: NUL
        # padding, which numpy drops, rather than spaces).
        from astropy.table import Table
        table = Table.read(self.path("c.fits"), hdu="COEFFS")
        self.assertEqual(len(table[table["CLASS"] == "S11"]), len(t[t["CLASS"] == "S11"]))
        self.assertEqual(len(table[table["CLASS"] == "C01"]), (t["CLASS"] == "C01").sum())
        self.assertGreater((t["CLASS"] == "C01").sum(), 0)
        with fits.open(self.path("c.fits")) as hdul:
            t = hdul["COEFFS"].data
            # astropy -> demix: a copy with every value doubled differs by |a - 2a| / |2a| = 1/2.
            t2 = t.copy()
            t2["REAL"] *= 2
            t2["IMAG"] *= 2
            fits.HDUList([fits.PrimaryHDU(header=hdul[0].header),
                          fits.BinTableHDU(t2, header=hdul["COEFFS"].header, name="COEFFS")]
                         ).writeto(self.path("c2.fits"))
        out = demix("stats", "--compare", self.path("c.fits"), self.path("c2.fits"))
        rows = [l.split() for l in out.splitlines()
                if l.split()[:1] and l.split()[0] in ("S11", "C01", "L", "all")]
        self.assertEqual(len(rows), 4, out)
        for r in rows:
            self.assertAlmostEqual(float(r[2]), 0.5, places=12, msg=r)
            self.assertAlmostEqual(float(r[3]), 0.5, places=12, msg=r)


if __name__ == "__main__":
    DEMIX = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""`demix deblend` end to end with the classical (SDSS-style) method, which needs no trained model:
outputs and their headers read back with astropy, children + residual = blend, catalogue columns,
peak detection, noise levels from the header or --sigma, and the errors (exit 1 runtime, 2 usage)
with no output left behind.

usage: test_deblend_cli.py PATH/TO/demix
"""
import csv
import os

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import clitest
from clitest import run

SIGMA = np.array([50.0, 30.0, 30.0, 40.0, 60.0, 90.0])
H, W = 60, 64
TRUE_XY = [(20.0, 25.0), (30.0, 30.0)]


def gaussian(x0, y0, s, flux):
    yy, xx = np.mgrid[0:H, 0:W]
    return flux / (2 * np.pi * s * s) * np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / s ** 2)


class DeblendCliTest(clitest.CliTestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(1)
        cube = np.stack([gaussian(20, 25, 2.5, 2e4 * (1 + 0.2 * b)) + gaussian(30, 30, 3.0, 3e4)
                         for b in range(6)])
        self.cube = (cube + rng.normal(size=cube.shape) * SIGMA[:, None, None]).astype(np.float32)
        header = fits.Header()
        header["BUNIT"] = "electron"
        # A celestial WCS (0.2" pixels, slightly rotated) to follow into the stamps.
        header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
        header["CRVAL1"], header["CRVAL2"] = 150.1, 2.2
        header["CRPIX1"], header["CRPIX2"] = 12.5, 30.0
        header["CD1_1"], header["CD1_2"] = -5.5e-5, 1e-6
        header["CD2_1"], header["CD2_2"] = 1e-6, 5.5e-5
        self.blend_nosigma = self.path("nosigma.fits")
        fits.writeto(self.blend_nosigma, self.cube, header)
        for b in range(6):
            header[f"SIGMA{b + 1}"] = SIGMA[b]
        self.blend = self.path("blend.fits")
        fits.writeto(self.blend, self.cube, header)
        self.catalog = self.path("pos.csv")
        with open(self.catalog, "w") as f:
            f.write("id,mag,x,y\n0,22.1,20,25\n1,21.5,30.2,29.8\n")

    def read_catalogue(self, out):
        """The rows of OUT/catalogue.fits as dicts, read by astropy."""
        t = Table.read(os.path.join(out, "catalogue.fits"))
        return [{name: row[name] for name in t.colnames} for row in t]

    def test_classical_stamps_catalogue_and_headers(self):
        out = self.path("out")
        rc, stdout, err = run("deblend", self.blend, "--catalog", self.catalog, "--method", "classical",
                              "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertIn("2 galaxies", err)  # progress on stderr
        self.assertEqual(sorted(os.listdir(out)),
                         ["catalogue.fits", "galaxy_0.fits", "galaxy_1.fits", "residual.fits"])
        with fits.open(os.path.join(out, "galaxy_1.fits")) as hdul:
            h = hdul[0].header
            stamp = hdul[0].data
            self.assertEqual(stamp.shape, (6, 45, 45))
            self.assertEqual(h["BUNIT"], "electron")  # the input's keywords are kept
            # The stamp's reference pixel follows its origin (the blend's nearest pixel - 22):
            # every stamp pixel at its sky position in the blend (astropy's WCS, 0-based pixels).
            self.assertEqual((h["CRPIX1"], h["CRPIX2"]), (12.5 - 8, 30.0 - 8))
            stamp_wcs, blend_wcs = WCS(h, naxis=2), WCS(fits.getheader(self.blend), naxis=2)
            for i, j in [(0, 0), (22, 22), (44, 10)]:
                a = stamp_wcs.pixel_to_world(i, j)
                b = blend_wcs.pixel_to_world(i + 8, j + 8)
                self.assertLess(a.separation(b).arcsec, 1e-6, (i, j))
            self.assertEqual(h["DEBLEND"], "classical")
            self.assertAlmostEqual(h["GALX"], 30.2)
            self.assertEqual((h["STAMPX0"], h["STAMPY0"]), (30 - 22, 30 - 22))  # nearest pixel - 22
        rows = self.read_catalogue(out)
        self.assertEqual(len(rows), 2)
        self.assertEqual(list(rows[0].keys()),
                         ["id", "x", "y", "ra", "dec"] + [f"flux_{b}" for b in "ugrizy"] +
                         ["e1", "e2", "converged", "chi2", "flux_ratio", "foreign_share",
                          "flags"])
        t = Table.read(os.path.join(out, "catalogue.fits"))
        self.assertEqual(t["x"].unit, u.pix)
        self.assertEqual(t["ra"].unit, u.deg)
        self.assertEqual(str(t["flux_r"].unit), "electron")  # the blend's BUNIT
        # RA, Dec: the blend's WCS at each 0-based position, as astropy computes it.
        sky = WCS(fits.getheader(self.blend), naxis=2).pixel_to_world(t["x"], t["y"])
        for k in range(2):
            self.assertLess(sky[k].separation(SkyCoord(t["ra"][k], t["dec"][k], unit="deg")).arcsec,
                            1e-3)
        # Both converged with positive fluxes; galaxy 0's stamp (columns -2..42) crosses the edge.
        np.testing.assert_array_equal(t["flags"], [2, 0])
        # The brighter galaxy has ~3e4 e- in every band (noise of its share of the image: a few %).
        for b in "ugrizy":
            self.assertAlmostEqual(float(rows[1][f"flux_{b}"]) / 3e4, 1.0, delta=0.15)
        self.assertEqual(rows[0]["converged"], 1)
        # Round galaxies: |e| small (noise and the neighbour's light in the stamp).
        self.assertLess(abs(float(rows[1]["e1"])), 0.1)

    def test_catalogues_in_fits_ecsv_and_sextractor_columns(self):
        # The positions as SExtractor writes them: FITS table, X_IMAGE / Y_IMAGE, 1-based pixels.
        se = self.path("se.fits")
        Table({"NUMBER": [1, 2], "X_IMAGE": [21.0, 31.2], "Y_IMAGE": [26.0, 30.8]}).write(se)
        a, b = self.path("a"), self.path("b")
        rc, _, err = run("deblend", self.blend, "--catalog", se, "--x-col", "X_IMAGE", "--y-col",
                         "Y_IMAGE", "--origin", "1", "--method", "classical", "-o", a,
                         "--catalogue-format", "ecsv")
        self.assertEqual(rc, 0, err)
        # The same as the 0-based CSV, written as ECSV with its units (astropy reads them).
        rc, _, err = run("deblend", self.blend, "--catalog", self.catalog, "--method", "classical",
                         "-o", b, "--catalogue-format", "csv")
        self.assertEqual(rc, 0, err)
        ta = Table.read(os.path.join(a, "catalogue.ecsv"), format="ascii.ecsv")
        tb = Table.read(os.path.join(b, "catalogue.csv"), format="ascii.csv")
        np.testing.assert_allclose(ta["x"], [20.0, 30.2])
        np.testing.assert_allclose(ta["flux_r"], tb["flux_r"], rtol=1e-12)
        self.assertEqual(ta["x"].unit, u.pix)
        self.assertEqual(ta["dec"].unit, u.deg)
        self.assertIn("0-based", ta["x"].description)
        # The same positions in ECSV (as astropy writes it, space-delimited) are read too.
        ec = self.path("pos.ecsv")
        Table({"x": [20.0, 30.2], "y": [25.0, 29.8]}).write(ec, format="ascii.ecsv")
        c = self.path("c")
        rc, _, err = run("deblend", self.blend, "--catalog", ec, "--method", "classical", "-o", c)
        self.assertEqual(rc, 0, err)
        np.testing.assert_allclose(Table.read(os.path.join(c, "catalogue.fits"))["flux_r"],
                                   tb["flux_r"], rtol=1e-6)
        self.assertFails(["deblend", self.blend, "--catalog", se, "--method", "classical", "-o",
                          self.path("d")], 1, "no columns named x and y", "X_IMAGE",
                         output=self.path("d"))
        self.assertFails(["deblend", self.blend, "--catalog", se, "--origin", "2", "--method",
                          "classical", "-o", self.path("d")], 2, "--origin",
                         output=self.path("d"))

    def test_ellipticity_in_the_shear_convention(self):
        # One elliptical Gaussian, axis ratio q = 1/2 along x: the catalogue's e1 is the shear
        # convention (1 - q) / (1 + q) = 1/3 of the simulator's truth table (the distortion
        # (1 - q^2) / (1 + q^2) would be 0.6); e2 = 0 by symmetry.
        yy, xx = np.mgrid[0:H, 0:W]
        g = np.exp(-0.5 * (((xx - 32) / 4.0) ** 2 + ((yy - 30) / 2.0) ** 2))
        cube = np.stack([1e5 * g / g.sum()] * 6).astype(np.float32)
        header = fits.Header()
        for b in range(6):
            header[f"SIGMA{b + 1}"] = 1.0
        blend, pos, out = self.path("ell.fits"), self.path("ell.csv"), self.path("ell")
        fits.writeto(blend, cube, header)
        with open(pos, "w") as f:
            f.write("x,y\n32,30\n")
        rc, _, err = run("deblend", blend, "--catalog", pos, "--method", "classical", "-o", out)
        self.assertEqual(rc, 0, err)
        row = self.read_catalogue(out)[0]
        # Adaptive moments are exact for a Gaussian; the 45-pixel stamp cuts 1e-7 of it.
        self.assertAlmostEqual(float(row["e1"]), 1 / 3, delta=2e-3)
        self.assertAlmostEqual(float(row["e2"]), 0.0, delta=2e-3)

    def test_full_frame_children_and_residual_add_up_to_the_blend(self):
        out = self.path("full")
        rc, _, err = run("deblend", self.blend, "--catalog", self.catalog, "--method", "classical",
                         "-o", out, "--full-frame", "-q")
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")  # --quiet
        children = [fits.getdata(os.path.join(out, f"galaxy_{k}.fits")) for k in range(2)]
        residual = fits.getdata(os.path.join(out, "residual.fits"))
        self.assertEqual(children[0].shape, (6, H, W))
        # float32 outputs of ~1e3 e- pixels: rounding ~1e-4 e-.
        np.testing.assert_allclose(children[0] + children[1] + residual, self.cube, atol=2e-2)
        # Stamps are cut from these children.
        stamps = self.path("stamps")
        run("deblend", self.blend, "--catalog", self.catalog, "--method", "classical", "-o", stamps, "-q")
        s0 = fits.getdata(os.path.join(stamps, "galaxy_0.fits"))
        # Stamp of galaxy 0 at (20, 25): rows 3..47, columns -2..42 of the blend (2 columns outside: 0).
        np.testing.assert_allclose(s0[:, :, 2:], children[0][:, 3:48, 0:43], atol=1e-3)
        self.assertEqual(np.abs(s0[:, :, :2]).max(), 0.0)

    def test_detection_finds_the_two_galaxies(self):
        out = self.path("det")
        rc, _, err = run("deblend", self.blend, "--detect", "--method", "classical", "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertIn("2 peaks", err)
        self.assertIn("SIGMA1..SIGMA6", err)
        rows = self.read_catalogue(out)
        found = sorted((float(r["x"]), float(r["y"])) for r in rows)
        for (x, y), (tx, ty) in zip(found, TRUE_XY):
            self.assertLess(np.hypot(x - tx, y - ty), 0.5)
        # Without SIGMA keywords, --sigma gives the noise; without either, a clear error.
        out2 = self.path("det2")
        rc, _, err = run("deblend", self.blend_nosigma, "--detect", "--method", "classical", "-o", out2,
                         "--sigma", *SIGMA)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(self.read_catalogue(out2)), 2)
        out4 = self.path("det4")
        rc, _, err = run("deblend", self.blend_nosigma, "--detect", "--method", "classical", "-o", out4,
                         "--noise-from-image")
        self.assertEqual(rc, 0, err)
        self.assertIn("clipped pixel scatter", err)
        self.assertEqual(len(self.read_catalogue(out4)), 2)
        # Without keywords or options, the LSST survey table's noise levels (6 bands) are used.
        out5 = self.path("det5")
        rc, _, err = run("deblend", self.blend_nosigma, "--detect", "--method", "classical", "-o", out5)
        self.assertEqual(rc, 0, err)
        self.assertIn("survey table", err)
        out3 = self.path("det3")
        self.assertFails(["deblend", self.blend, "--detect", "--method", "classical", "-o", out3,
                          "--sigma", "1", "2"], 1, "--sigma gives 2 values", output=out3)

    def test_madness_with_the_shipped_model(self):
        # The default method and model (models/madness-lsst.dmx) on a blend from demix's own LSST
        # simulator (what the model was trained for): the residual must be consistent with noise
        # (chi^2 per pixel ~ 1; 1.3 allows for the galaxies' unmodelled detail at this depth, while
        # a missed galaxy adds far more) and each galaxy's r-band flux within 25% of the truth
        # (the stamp-limited model vs the whole profile; the bench measures the distribution).
        from astropy.io import fits
        blend, truth = self.path("sim.fits"), self.path("truth.csv")
        rc, _, err = run("simulate", "blends", "-n", "1", "--seed", "11", "--min-galaxies", "3",
                         "--max-galaxies", "3", "-o", blend, "--csv", truth)
        self.assertEqual(rc, 0, err)
        out = self.path("mad")
        rc, _, err = run("deblend", blend, "--catalog", truth, "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertIn("MADNESS", err)
        with fits.open(blend) as f:
            data, hdr = f[0].data.astype(np.float64), f[0].header
        sigma = np.array([hdr[f"SIGMA{b + 1}"] for b in range(6)])[:, None, None]
        residual = fits.getdata(os.path.join(out, "residual.fits")).astype(np.float64)
        chi2_residual = ((residual / sigma) ** 2).mean()
        self.assertLess(chi2_residual, 1.3)
        # The galaxies' excess chi^2 over the noise's (1 per pixel) mostly explained.
        self.assertLess(chi2_residual - 1, 0.1 * (((data / sigma) ** 2).mean() - 1))
        with open(truth) as f:
            true_rows = list(csv.DictReader(f))
        cat = self.read_catalogue(out)
        self.assertEqual(len(cat), len(true_rows))
        for row, t in zip(cat, true_rows):
            self.assertLess(abs(float(row["flux_r"]) / float(t["flux_r"]) - 1), 0.25, (row, t))
            # AB magnitudes from the ZPn and EXPTIMEn keywords: m = ZP - 2.5 log10(flux / t).
            self.assertAlmostEqual(row["mag_r"], hdr["ZP3"] - 2.5 * np.log10(row["flux_r"] /
                                                                         hdr["EXPTIME3"]), 9)
        # --float32-decoder: the same fit (on the CPU the same arithmetic; on CUDA float32 instead
        # of float16 upsampling, whose deblending metrics agree to 3-4 digits): residuals within
        # 0.05 sigma per pixel on average.
        out32 = self.path("mad32")
        rc, _, err = run("deblend", blend, "--catalog", truth, "--float32-decoder", "-o", out32)
        self.assertEqual(rc, 0, err)
        residual32 = fits.getdata(os.path.join(out32, "residual.fits")).astype(np.float64)
        self.assertLess((np.abs(residual32 - residual) / sigma).mean(), 0.05)
        # Quality: good fits of galaxies of the training population are not flagged 8 or 16,
        # their footprints' chi^2 near the noise's; a chi^2 limit no fit meets flags them all,
        # and --classical-fallback then reports the classical deblender's fluxes (flag 32).
        for row in cat:
            self.assertEqual(int(row["flags"]) & (8 | 16), 0, row)
            self.assertLess(float(row["chi2"]), 5, row)
            self.assertLess(float(row["foreign_share"]), 0.5, row)
        outs = {name: self.path(name) for name in ("strict", "classical")}
        rc, _, err = run("deblend", blend, "--catalog", truth, "--chi2-limit", "1e-9",
                         "--classical-fallback", "-o", outs["strict"])
        self.assertEqual(rc, 0, err)
        rc, _, err = run("deblend", blend, "--catalog", truth, "--method", "classical", "-o",
                         outs["classical"])
        self.assertEqual(rc, 0, err)
        strict, classical = (self.read_catalogue(outs[k]) for k in ("strict", "classical"))
        for s_row, c_row in zip(strict, classical):
            self.assertEqual(int(s_row["flags"]) & (16 | 32), 16 | 32, s_row)
            self.assertAlmostEqual(float(s_row["flux_r"]) / float(c_row["flux_r"]), 1, 5)

    def test_several_blends_in_one_call(self):
        # Three simulated blends, one MADNESS call (the model loaded once, one batch): each
        # blend's files in blend_<k>/, one catalogue with the blend's index and file, the same
        # galaxies as blend-by-blend runs (the batched fit agrees to float32 rounding).
        blends, truths = [], []
        for k in range(3):
            blends.append(self.path(f"b{k}.fits"))
            truths.append(self.path(f"t{k}.csv"))
            rc, _, err = run("simulate", "blends", "-n", "1", "--seed", 30 + k, "--max-galaxies",
                             3, "-o", blends[-1], "--csv", truths[-1])
            self.assertEqual(rc, 0, err)
        out = self.path("many")
        rc, _, err = run("deblend", *blends, "--catalog", *truths, "--steps", 40, "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertIn("3 blends", err)
        t = Table.read(os.path.join(out, "catalogue.fits"))
        self.assertEqual(t.colnames[:3], ["blend", "file", "id"])
        for k in range(3):
            alone = self.path(f"alone{k}")
            rc, _, err = run("deblend", blends[k], "--catalog", truths[k], "--steps", 40, "-o",
                             alone)
            self.assertEqual(rc, 0, err)
            one = Table.read(os.path.join(alone, "catalogue.fits"))
            rows = t[t["blend"] == k]
            self.assertEqual(len(rows), len(one))
            self.assertTrue(all(f == blends[k] for f in rows["file"]))
            np.testing.assert_allclose(rows["flux_r"], one["flux_r"], rtol=1e-3)
            np.testing.assert_array_equal(rows["flags"], one["flags"])
            self.assertEqual(sorted(os.listdir(os.path.join(out, f"blend_{k}"))),
                             sorted(set(os.listdir(alone)) - {"catalogue.fits"}))
            np.testing.assert_allclose(
                fits.getdata(os.path.join(out, f"blend_{k}", "residual.fits")),
                fits.getdata(os.path.join(alone, "residual.fits")), atol=1e-2 * 400)
        # A catalogue per blend, or none: anything else is a usage error; nothing is written.
        bad = self.path("bad_many")
        self.assertFails(["deblend", *blends, "--catalog", truths[0], "-o", bad], 2,
                         "one per blend", output=bad)
        self.assertFalse(os.path.exists(bad))

    def test_madness_with_a_missing_or_corrupt_model_is_a_clear_error(self):
        out = self.path("m")
        self.assertFails(["deblend", self.blend, "--catalog", self.catalog, "--model",
                          self.path("model.dmx"), "-o", out], 1, "model.dmx", output=out)
        with open(self.path("bad.dmx"), "wb") as f:
            f.write(b"not a model")
        self.assertFails(["deblend", self.blend, "--catalog", self.catalog, "--model",
                          self.path("bad.dmx"), "-o", out], 1, "bad.dmx", output=out)

    def test_usage_errors_exit_2(self):
        out = self.path("u")
        self.assertFails(["deblend", self.blend, "--method", "classical", "-o", out], 2,
                         "--catalog", output=out)
        self.assertFails(["deblend", self.blend, "--catalog", self.catalog, "--detect", "--method",
                          "classical", "-o", out], 2, output=out)
        self.assertFails(["deblend", self.blend, "--catalog", self.catalog, "--method", "classical",
                          "--stamp", "44", "-o", out], 2, "odd", output=out)
        self.assertFails(["deblend", self.blend, "--catalog", self.catalog, "--method", "scarlet",
                          "-o", out], 2, "scarlet", output=out)

    def test_bad_catalogues(self):
        out = self.path("c")
        bad = self.path("bad.csv")
        with open(bad, "w") as f:
            f.write("ra,dec\n1,2\n")
        self.assertFails(["deblend", self.blend, "--catalog", bad, "--method", "classical", "-o", out],
                         1, "bad.csv", "x and y", output=out)
        with open(bad, "w") as f:
            f.write("x,y\n1,2\n3,oops\n")
        self.assertFails(["deblend", self.blend, "--catalog", bad, "--method", "classical", "-o", out],
                         1, "line 3", "'oops'", output=out)
        with open(bad, "w") as f:
            f.write("x,y\n10,10\n70,5\n")
        self.assertFails(["deblend", self.blend, "--catalog", bad, "--method", "classical", "-o", out],
                         1, "galaxy 1", "outside", output=out)
        self.assertFails(["deblend", self.blend, "--catalog", self.path("none.csv"), "--method",
                          "classical", "-o", out], 1, "none.csv", output=out)


if __name__ == "__main__":
    clitest.main(timeout=300)

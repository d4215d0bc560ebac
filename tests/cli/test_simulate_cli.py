#!/usr/bin/env python3
"""`demix simulate` and `demix preview --rgb` from the outside, with astropy and numpy as oracles:
the documented file layout (extensions, shapes, keywords, catalogue columns, valid checksums),
blends equal to the sum of their stamps, the CSV equal to the FITS table, reproducibility from
the seed, and usage (exit 2) or runtime (exit 1) errors that leave no output behind.

usage: test_simulate_cli.py PATH/TO/demix
"""
import warnings

import numpy as np
from astropy.io import fits

import clitest
from clitest import run

BANDS = ["u", "g", "r", "i", "z", "y"]


def open_checked(path):
    """Opens a FITS file, turning any checksum warning into a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fits.open(path, checksum=True)


def read_csv(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


class SimulateCliTest(clitest.CliTestCase):
    def test_isolated_layout_keywords_and_truth(self):
        out, csv, png = self.path("iso.fits"), self.path("iso.csv"), self.path("iso.png")
        rc, text, err = run("simulate", "isolated", "-n", 6, "--seed", 5, "--max-offset", 0.25,
                            "-o", out, "--csv", csv, "--png", png)
        self.assertEqual(rc, 0, err)
        self.assertIn("wrote", text)
        self.assertIn("6 / 6 stamps", err)  # progress on stderr
        with open_checked(out) as h:
            self.assertEqual([x.name for x in h], ["PRIMARY", "STAMPS", "NOISELESS", "PSF", "TRUTH"])
            self.assertEqual(h["STAMPS"].data.shape, (6, 6, 45, 45))
            self.assertEqual(h["NOISELESS"].data.shape, (6, 6, 45, 45))
            self.assertEqual(h["PSF"].data.shape, (6, 45, 45))
            np.testing.assert_allclose(h["PSF"].data.sum(axis=(1, 2)), 1, rtol=1e-5)
            for hdr in (h[0].header, h["STAMPS"].header):
                self.assertEqual(hdr["DATASET"], "isolated")
                self.assertEqual(hdr["SURVEY"], "LSST")
                self.assertEqual(hdr["PIXSCALE"], 0.2)
                self.assertEqual(hdr["SEED"], 5)
                self.assertEqual(hdr["BUNIT"], "electron")
                self.assertEqual(hdr["PSFMODEL"], "moffat")
                self.assertTrue(hdr["NOISE"])
                self.assertEqual([hdr[f"BAND{i}"] for i in range(1, 7)], BANDS)
                # sigma_r = sqrt(10^(0.4 (28.10 - 21.20)) x 5520 s x 0.04 arcsec^2)
                self.assertAlmostEqual(hdr["SIGMA3"], np.sqrt(10 ** (0.4 * 6.9) * 5520 * 0.04), 6)
            t = h["TRUTH"].data
            self.assertEqual(len(t), 6)
            for c in ("blend_id", "galaxy_id", "x", "y", "stamp_x0", "stamp_y0", "n_blend",
                      "density", "hlr", "hlr_disk", "hlr_bulge", "e1", "e2"):
                self.assertIn(c, t.columns.names)
            for b in BANDS:
                for c in ("flux_", "mag_", "stamp_flux_", "snr_", "bulge_frac_"):
                    self.assertIn(c + b, t.columns.names)
            np.testing.assert_array_equal(t["blend_id"], np.arange(6))
            self.assertTrue(np.all(np.abs(t["x"] - 22) <= 0.25))
            stamps = h["NOISELESS"].data.astype(np.float64)
            np.testing.assert_allclose(t["stamp_flux_i"], stamps[:, 3].sum(axis=(1, 2)), rtol=1e-6)
            # Noise = STAMPS - NOISELESS, sigma per band (6 x 2025 pixels: 4 standard errors 3.6%).
            noise = h["STAMPS"].data.astype(np.float64) - stamps
            for i, b in enumerate(BANDS):
                self.assertAlmostEqual(noise[:, i].std() / h[0].header[f"SIGMA{i + 1}"], 1, delta=0.036)
            names = t.columns.names
            table = np.column_stack([np.asarray(t[n], dtype=np.float64) for n in names])
        header, values = read_csv(csv)
        self.assertEqual(header, names)
        np.testing.assert_array_equal(values, table)  # shortest round-trip decimals: exact
        with open(png, "rb") as f:
            head = f.read(24)
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        # A figure: the 45-pixel stamp enlarged, with axes around it.
        self.assertGreater(int.from_bytes(head[16:20], "big"), 45 * 8)

    def test_blends_are_sums_of_stamps(self):
        out = self.path("b.fits")
        rc, _, err = run("simulate", "blends", "-n", 4, "--min-galaxies", 2, "--max-galaxies", 3,
                         "--size", 80, "--seed", 1, "-o", out, "-q")
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")  # -q: no progress
        with open_checked(out) as h:
            self.assertEqual([x.name for x in h],
                             ["PRIMARY", "BLENDS", "NOISELESS", "STAMPS", "PSF", "TRUTH"])
            t, nl, st = h["TRUTH"].data, h["NOISELESS"].data, h["STAMPS"].data
            self.assertEqual(h["BLENDS"].data.shape, (4, 6, 80, 80))
            self.assertEqual(st.shape, (len(t), 6, 45, 45))
            self.assertEqual((h[0].header["FIELDSZ"], h[0].header["MINGAL"], h[0].header["MAXGAL"]),
                             (80, 2, 3))
            self.assertTrue(np.all((t["n_blend"] >= 2) & (t["n_blend"] <= 3)))
            total = np.zeros(nl.shape, np.float64)
            for k, row in enumerate(t):
                y0, x0 = row["stamp_y0"], row["stamp_x0"]
                total[row["blend_id"], :, y0:y0 + 45, x0:x0 + 45] += st[k]
                # The stamp's centre pixel is the galaxy's nearest pixel.
                self.assertEqual(x0 + 22, np.floor(row["x"] + 0.5))
            np.testing.assert_allclose(total, nl, rtol=0, atol=1e-5 * np.abs(nl).max())
            # Galaxies of a blend are numbered 0..n-1.
            for k in range(4):
                ids = t["galaxy_id"][t["blend_id"] == k]
                np.testing.assert_array_equal(ids, np.arange(len(ids)))

    def test_single_blend_for_deblend_and_preview(self):
        out, csv, png = self.path("one.fits"), self.path("pos.csv"), self.path("one.png")
        rc, _, err = run("simulate", "blends", "-n", 1, "--min-galaxies", 3, "--max-galaxies", 3,
                         "-o", out, "--csv", csv)
        self.assertEqual(rc, 0, err)
        with open_checked(out) as h:
            self.assertEqual(h[0].data.shape, (6, 120, 120))  # the blend itself in HDU 0
            self.assertEqual([x.name for x in h][1:], ["NOISELESS", "STAMPS", "PSF", "TRUTH"])
            xs = h["TRUTH"].data["x"]
        header, values = read_csv(csv)
        self.assertEqual(header[:4], ["blend_id", "galaxy_id", "x", "y"])
        np.testing.assert_array_equal(values[:, header.index("x")], xs)
        rc, text, err = run("preview", "--rgb", "i,r,g", out, png)
        self.assertEqual(rc, 0, err)
        self.assertIn("i,r,g", text)
        rc, _, err = run("preview", "--rgb", "3,2,1", "--index", 0, self.path("one.fits[STAMPS]"),
                         self.path("s.png"))
        self.assertEqual(rc, 0, err)
        self.assertFails(["preview", "--rgb", "i,r,w", out, self.path("w.png")], 1, "no band 'w'",
                         "u, g, r, i, z, y", outputs=[self.path("w.png")])
        self.assertFails(["preview", "--rgb", "i,r", out, self.path("w.png")], 1, "three bands",
                         outputs=[self.path("w.png")])

    def test_seed_reproduces_and_varies(self):
        a, b, c = self.path("a.fits"), self.path("b.fits"), self.path("c.fits")
        for path, seed in ((a, 3), (b, 3), (c, 4)):
            rc, _, err = run("simulate", "isolated", "-n", 3, "--seed", seed, "-o", path, "-q")
            self.assertEqual(rc, 0, err)
        with fits.open(a) as ha, fits.open(b) as hb, fits.open(c) as hc:
            np.testing.assert_array_equal(ha["STAMPS"].data, hb["STAMPS"].data)
            np.testing.assert_array_equal(ha["TRUTH"].data["flux_r"], hb["TRUTH"].data["flux_r"])
            self.assertFalse(np.array_equal(ha["STAMPS"].data, hc["STAMPS"].data))

    def test_options_no_noise_psf_and_density(self):
        out = self.path("n.fits")
        rc, _, err = run("simulate", "blends", "-n", 2, "--no-noise", "--psf", "kolmogorov",
                         "--density", 64, "--size", 130, "--min-galaxies", 2, "--max-galaxies", 5,
                         "-o", out, "-q")
        self.assertEqual(rc, 0, err)
        with open_checked(out) as h:
            self.assertNotIn("NOISELESS", [x.name for x in h])
            self.assertFalse(h[0].header["NOISE"])
            self.assertEqual(h[0].header["PSFMODEL"], "kolmogorov")
            np.testing.assert_allclose(h["TRUTH"].data["density"], 64, rtol=1e-9)

    def test_errors(self):
        out = self.path("e.fits")
        csv = self.path("e.csv")
        # Usage errors: exit 2.
        self.assertFails(["simulate"], 2)
        self.assertFails(["simulate", "isolated", "-n", 2], 2, "output", outputs=[out])
        self.assertFails(["simulate", "isolated", "-n", 0, "-o", out], 2, "--count",
                         "must be a number >= 1, got '0'", outputs=[out])
        self.assertFails(["simulate", "blends", "--psf", "gauss", "-o", out], 2, "gauss", outputs=[out])
        self.assertFails(["simulate", "isolated", "--max-offset", 0.5, "-o", out], 2, "--max-offset",
                         outputs=[out])
        # Values the library refuses: exit 1, with the value in the message.
        self.assertFails(["simulate", "isolated", "-n", 2, "--stamp-size", 44, "-o", out], 1, "44",
                         outputs=[out])
        self.assertFails(["simulate", "blends", "-n", 2, "--min-galaxies", 4, "--max-galaxies", 2,
                          "-o", out], 1, "min 4, max 2", outputs=[out])
        self.assertFails(["simulate", "blends", "-n", 2, "--density", 20, "-o", out], 1,
                         "at least", "pixels", outputs=[out])
        self.assertFails(["simulate", "isolated", "-n", 2, "--mag-band", "Q", "-o", out], 1,
                         "no band 'Q'", outputs=[out])
        self.assertFails(["simulate", "isolated", "-n", 2, "-o", self.path("e.txt")], 1, ".fits",
                         outputs=[self.path("e.txt")])
        self.assertFails(["simulate", "isolated", "-n", 2, "-o", self.path("no/dir/e.fits")], 1,
                         "no/dir")
        # A CSV that cannot be written: no FITS either.
        self.assertFails(["simulate", "isolated", "-n", 2, "-o", out, "--csv",
                          self.path("no/dir/e.csv")], 1, "no/dir", outputs=[out, csv])


if __name__ == "__main__":
    clitest.main(timeout=300)

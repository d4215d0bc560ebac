#!/usr/bin/env python3
"""`demix synth` from the outside, with astropy and numpy as oracles: the samples file keeps the
target's header (WCS), records options and seed, holds the loss history (equal to the JSON
sidecar's), the loss falls, the same seed gives the same samples, a resumed checkpoint gives the
uninterrupted run, channels and several targets are read as documented, `convert --crop` moves
the WCS along, `demix validate` writes its JSON and figure, and bad input fails (exit 1 or 2)
naming the problem without leaving an output behind.

usage: test_synth_cli.py PATH/TO/demix
"""
import json
import os

import numpy as np
from astropy.io import fits

import clitest
from clitest import run


def lognormal(n, seed, channels=0):
    """exp of a smoothed Gaussian field (n, n), or (channels, n, n) correlated channels."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n)
    amp = (k[:, None] ** 2 + k[None, :] ** 2 + 1e-2) ** -0.75
    w = rng.standard_normal((max(channels, 1), n, n))
    g = np.fft.ifft2(np.fft.fft2(w) * amp).real
    if channels:
        g[1:] = 0.7 * g[:1] + 0.3 * g[1:]
    g = np.exp(g / g.std())
    return g if channels else g[0]


def write_target(path, data):
    hdr = fits.Header()
    hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN", "DEC--TAN"
    hdr["CRVAL1"], hdr["CRVAL2"], hdr["CDELT1"], hdr["CDELT2"] = 150.0, 2.0, -0.01, 0.01
    hdr["BUNIT"] = "MJy/sr"
    fits.PrimaryHDU(data.astype(np.float32), hdr).writeto(path)


class SynthCliTest(clitest.CliTestCase):
    def synth(self, *args):
        rc, out, err = run("synth", *args, "--device", "cpu")
        self.assertEqual(rc, 0, err)
        return err

    def test_samples_header_history_and_reproducibility(self):
        target, out = self.path("t.fits"), self.path("s.fits")
        write_target(target, lognormal(32, 1))
        common = [target, "-J", 3, "--dn", 1, "--samples", 2, "--iterations", 15, "--seed", 4,
                  "--log", "--standardize"]
        err = self.synth(*common, "-o", out)
        self.assertIn("iteration 15/15", err)  # the progress line's last report
        with fits.open(out, checksum=True) as h:
            self.assertEqual(h[0].data.shape, (2, 32, 32))
            hdr = h[0].header
            for key, value in [("CTYPE1", "RA---TAN"), ("CRVAL1", 150.0), ("BUNIT", "MJy/sr"),
                               ("SYNSTATS", "wph"), ("NSAMPLE", 2), ("SEED", 4), ("ITERS", 15),
                               ("LOGMAP", True), ("J", 3), ("DN", 1),
                               ("LBFGSMEM", 20)]:
                self.assertEqual(hdr[key], value, key)
            samples = h[0].data.astype(np.float64)
            loss = h["LOSS"].data
            self.assertEqual(list(loss["ITERATION"]), list(range(16)))
            history = np.array(loss["LOSS"])
        self.assertTrue(np.all(samples > 0))  # exp of the synthesised log map
        self.assertTrue(np.all(history[-1] < 0.05 * history[0]), history[[0, -1]])
        with open(self.path("s.json")) as f:
            side = json.load(f)
        np.testing.assert_allclose(np.array(side["loss_history"]), history, rtol=1e-12)
        self.assertEqual(side["options"]["seed"], 4)
        self.assertEqual(side["options"]["history"], 20)  # the default, also LBFGSMEM above
        self.assertEqual(side["iterations"], 15)
        self.assertIn("wph[0]", side["final_terms"])

        # Same seed: same samples; a run of 8 iterations resumed to 15: the same samples again.
        again = self.path("again.fits")
        self.synth(*common, "-o", again)
        ckpt = self.path("run.ckpt")
        common8 = [a if a != 15 else 8 for a in common]
        self.synth(*common8, "-o", self.path("part.fits"), "--checkpoint", ckpt)
        resumed = self.path("resumed.fits")
        self.synth(*common, "-o", resumed, "--resume", ckpt)
        for other in (again, resumed):
            with fits.open(other) as h:
                np.testing.assert_array_equal(h[0].data, samples.astype(np.float32))
        # --history changes the iterates and is recorded.
        other = self.path("h5.fits")
        self.synth(*common, "-o", other, "--history", 5)
        with fits.open(other) as h:
            self.assertEqual(h[0].header["LBFGSMEM"], 5)
            self.assertFalse(np.array_equal(h[0].data, samples.astype(np.float32)))
        # Another seed does not resume that checkpoint.
        self.assertFails(["synth", *common[:-6], "--seed", 5, "--log", "--standardize",
                          "--iterations", 15, "-o", self.path("x.fits"), "--resume", ckpt,
                          "--device", "cpu"], 1, "another synthesis", output=self.path("x.fits"))

    def test_channels_and_several_targets(self):
        cube, out = self.path("iqu.fits"), self.path("c.fits")
        write_target(cube, lognormal(16, 2, channels=2))
        err = self.synth(cube, "--channels", "--stats", "wph,ps", "--weights", "1,0.5", "-J", 2,
                         "--dn", 0, "--iterations", 3, "--log", "-o", out)
        self.assertIn("6 loss term(s)", err)  # wph and ps: two auto terms and one cross each
        with fits.open(out) as h:
            self.assertEqual(h[0].data.shape, (1, 2, 16, 16))
            self.assertEqual(h[0].header["SYNSTATS"], "wph,ps")
        # Without --channels the cube is two target maps of one channel.
        err = self.synth(cube, "-J", 2, "--dn", 0, "--iterations", 2, "--log", "-o", out)
        self.assertIn("2 target map(s) of 1 channel(s)", err)
        # Two files are two targets.
        single = self.path("one.fits")
        write_target(single, lognormal(16, 3))
        err = self.synth(single, single, "-J", 2, "--iterations", 1, "-o", out)
        self.assertIn("2 target map(s)", err)

    def test_crop_synth_validate(self):
        # The workflow of the demo: crop a map (WCS reference pixel follows), synthesise, validate.
        big, crop = self.path("big.fits"), self.path("crop.fits")
        data = lognormal(48, 7)
        write_target(big, data)
        with fits.open(big, mode="update") as h:
            h[0].header["CRPIX1"], h[0].header["CRPIX2"] = 24.5, 20.0
        rc, _, err = run("convert", big, crop, "--crop", "8,4,32,32")
        self.assertEqual(rc, 0, err)
        with fits.open(crop) as h:
            np.testing.assert_array_equal(h[0].data, data[4:36, 8:40].astype(np.float32))
            self.assertEqual((h[0].header["CRPIX1"], h[0].header["CRPIX2"]), (16.5, 16.0))
        self.assertFails(["convert", big, self.path("x.fits"), "--crop", "40,0,16,16"], 1,
                         "not inside", output=self.path("x.fits"))
        samples = self.path("s.fits")
        self.synth(crop, "-J", 3, "--dn", 1, "--samples", 3, "--iterations", 10, "--log",
                   "-o", samples)
        report = self.path("report")
        rc, out, err = run("validate", crop, samples, "--log", "--report", report)
        self.assertEqual(rc, 0, err)
        self.assertIn("KS distance", out)
        with open(os.path.join(report, "validation.json")) as f:
            v = json.load(f)
        self.assertEqual((v["target_maps"], v["sample_maps"], v["height"]), (1, 3, 32))
        for name in ["power_spectrum", "pdf", "minkowski_v0", "minkowski_v1", "minkowski_v2",
                     "bispectrum_equilateral", "bispectrum_folded", "peak_counts"]:
            c = v["curves"][name]
            self.assertEqual(len(c["x"]), len(c["sample_mean"]), name)
        # The figure: blue targets, orange samples and dark text on white.
        import test_cli
        rgb = test_cli.read_png_rgb(os.path.join(report, "validation.png")).reshape(-1, 3)
        colours = {tuple(p) for p in rgb[::7]}
        for c in [(31, 119, 180), (255, 127, 14), (255, 255, 255)]:
            self.assertIn(c, colours)
        self.assertTrue(np.any(rgb.sum(axis=1) < 150))  # text and frames
        # Validating a map against itself: nothing deviates.
        rc, _, err = run("validate", crop, crop, "--report", self.path("self"))
        self.assertEqual(rc, 0, err)
        with open(self.path("self/validation.json")) as f:
            self.assertEqual(json.load(f)["ks_distance"], 0)
        self.assertFails(["validate", crop, self.path("big.fits"), "--report", self.path("r2")],
                         1, "differ")

    def test_bad_input(self):
        target, out = self.path("t.fits"), self.path("s.fits")
        write_target(target, lognormal(16, 1))
        other = self.path("other.fits")
        write_target(other, lognormal(32, 1))
        self.assertFails(["synth", target, other, "-o", out], 1, "other.fits", output=out)
        self.assertFails(["synth", target, "-J", 9, "-o", out], 1, "-J 9", output=out)
        self.assertFails(["synth", target, "--stats", "wph,ps", "--weights", "1", "-o", out], 1,
                         "--weights", output=out)
        self.assertFails(["synth", target, "--stats", "bispectrum", "-o", out], 2, "bispectrum",
                         output=out)
        negative = self.path("neg.fits")
        write_target(negative, lognormal(16, 1) - 2)
        self.assertFails(["synth", negative, "--log", "-o", out], 1, "> 0", output=out)
        self.assertFails(["synth", target, "-o", self.path("missing/s.fits")], 1, "missing")
        self.assertFails(["synth", target, "-o", self.path("s.png")], 1, ".fits")


if __name__ == "__main__":
    clitest.main(timeout=300)

#!/usr/bin/env python3
"""`demix separate` from the outside, with astropy and numpy as oracles: the signal keeps the
observation's header (WCS), records the options, CONTAM holds d minus the signal, LOSS equals the
JSON sidecar's history and falls in every era, drawn realizations follow the seed, given
realization files are read as documented, the Wiener map is written on request, the staged
schedule and the comparison with a true signal are recorded, several runs give their mean and
spread, and bad input
fails (exit 1 or 2) naming the problem without leaving an output behind.

usage: test_separate_cli.py PATH/TO/demix
"""
import json

import numpy as np
from astropy.io import fits

import clitest
from clitest import run


def noisy(n, seed, sigma=1.0):
    """A standardised log-normal field and an observation of it with white noise."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n)
    amp = (k[:, None] ** 2 + k[None, :] ** 2 + 1e-2) ** -0.75
    g = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) * amp).real
    s = np.exp(g / g.std())
    s = (s - s.mean()) / s.std()
    return s, s + sigma * rng.standard_normal((n, n))


def write_map(path, data):
    hdr = fits.Header()
    hdr["CTYPE1"], hdr["CTYPE2"] = "GLON-CAR", "GLAT-CAR"
    hdr["CRVAL1"], hdr["CDELT1"], hdr["BUNIT"] = 120.0, -0.05, "K_CMB"
    fits.PrimaryHDU(data.astype(np.float32), hdr).writeto(path)


class SeparateCliTest(clitest.CliTestCase):
    def separate(self, *args):
        rc, out, err = run("separate", *args, "--device", "cpu")
        self.assertEqual(rc, 0, err)
        return err

    def test_outputs_header_history_and_seed(self):
        s, d = noisy(32, 1)
        obs, out, wien = self.path("d.fits"), self.path("s.fits"), self.path("w.fits")
        write_map(obs, d)
        common = [obs, "--contamination", "gaussian:sigma=1", "-M", 6, "--eras", 2,
                  "--iterations", 8, "-J", 3, "--dn", 1, "--seed", 3]
        err = self.separate(*common, "-o", out, "--wiener", wien)
        self.assertIn("era 2/2  iteration 8/8", err)  # the progress line's last report
        with fits.open(out, checksum=True) as h:
            self.assertEqual([x.name for x in h], ["PRIMARY", "CONTAM", "LOSS"])
            hdr = h[0].header
            for key, value in [("CTYPE1", "GLON-CAR"), ("CRVAL1", 120.0), ("BUNIT", "K_CMB"),
                               ("SEPSTATS", "wph"), ("ESTIMATR", "bias"), ("NREALIZ", 6),
                               ("ERAS", 2), ("ITERS", 8), ("SEED", 3)]:
                self.assertEqual(hdr[key], value, key)
            signal = h[0].data.astype(np.float64)
            # float32 computing: d - s to float32 rounding of maps of O(1)
            np.testing.assert_allclose(h["CONTAM"].data + signal, d.astype(np.float32), atol=1e-5)
            loss = h["LOSS"].data
            era, history = np.array(loss["ERA"]), np.array(loss["LOSS"])
        self.assertEqual(list(era), [1] * 9 + [2] * 9)
        self.assertLess(history[8], 0.7 * history[0])  # the first era descends from d
        self.assertLess(history[17], history[9])
        with open(self.path("s.json")) as f:
            side = json.load(f)
        np.testing.assert_allclose(np.concatenate(side["loss_history"]), history, rtol=1e-12)
        self.assertEqual(side["options"]["estimator"], "bias")
        self.assertEqual(side["options"]["realizations"], 6)
        self.assertEqual(hdr["FINLOSS"], side["loss_history"][-1][-1])
        # The separation removes noise; the Wiener map exists with the header.
        self.assertLess(np.mean((signal - s) ** 2), np.mean((d - s) ** 2))
        with fits.open(wien) as h:
            self.assertEqual(h[0].header["CTYPE1"], "GLON-CAR")
            self.assertLess(np.mean((h[0].data - s) ** 2), np.mean((d - s) ** 2))

        # Two runs: the mean of the runs of seeds 3 and 4, and their spread as STD.
        runs, seed4 = self.path("runs.fits"), self.path("seed4.fits")
        self.separate(*common[:-1], 4, "-o", seed4)
        err = self.separate(*common, "--runs", 2, "-o", runs)
        self.assertIn("run 2/2", err)
        one, two = fits.getdata(out).astype(np.float64), fits.getdata(seed4).astype(np.float64)
        with fits.open(runs) as h:
            self.assertEqual([x.name for x in h], ["PRIMARY", "CONTAM", "STD", "LOSS"])
            self.assertEqual(h[0].header["NRUNS"], 2)
            np.testing.assert_allclose(h[0].data, (one + two) / 2, atol=1e-5)
            np.testing.assert_allclose(h["STD"].data, np.abs(one - two) / np.sqrt(2), atol=1e-5)
            self.assertEqual(sorted(set(h["LOSS"].data["RUN"])), [1, 2])
        self.assertGreater(np.abs(one - two).max(), 1e-3)  # not vacuous: the runs differ

        # The same seed gives the same result; realizations from a file, the realizations
        # estimator.
        again = self.path("again.fits")
        self.separate(*common, "-o", again)
        np.testing.assert_array_equal(fits.getdata(again), fits.getdata(out))
        cube = self.path("noise.fits")
        write_map(cube, np.random.default_rng(5).standard_normal((5, 32, 32)))
        real, truth = self.path("real.fits"), self.path("truth.fits")
        write_map(truth, s)
        err = self.separate(obs, "--contamination", cube, "--estimator", "realizations", "--eras",
                            2, "--spectrum-eras", 1, "--iterations", 3, "-J", 3, "-o", real,
                            "--truth", truth)
        self.assertIn("against the truth", err)
        self.assertEqual(fits.getheader(real)["NREALIZ"], 5)
        self.assertEqual(fits.getheader(real)["ESTIMATR"], "realizations")
        with open(self.path("real.json")) as f:
            side = json.load(f)
        self.assertEqual(side["options"]["spectrum_eras"], 1)
        self.assertEqual(len(side["kept_parts"]), 2)
        self.assertLess(side["kept_parts"][0], side["kept_parts"][1])  # spectrum bins, then WPH
        t32, sep = s.astype(np.float32).astype(np.float64), fits.getdata(real).astype(np.float64)
        d32 = d.astype(np.float32).astype(np.float64)
        self.assertAlmostEqual(side["truth"]["separated"]["mse"], np.mean((sep - t32) ** 2), 5)
        self.assertAlmostEqual(side["truth"]["observation"]["mse"], np.mean((d32 - t32) ** 2), 9)
        self.assertAlmostEqual(side["truth"]["observation"]["correlation"],
                               np.corrcoef(d32.ravel(), t32.ravel())[0, 1], 9)
        # Fresh realizations: 2 of the 5 drawn per evaluation, recorded, another result.
        fresh = self.path("fresh.fits")
        self.separate(obs, "--contamination", cube, "--estimator", "realizations", "--eras", 2,
                      "--spectrum-eras", 1, "--iterations", 3, "-J", 3, "-o", fresh,
                      "--fresh-realizations", 2)
        self.assertEqual(fits.getheader(fresh)["NFRESH"], 2)
        self.assertNotIn("NFRESH", fits.getheader(real))
        with open(self.path("fresh.json")) as f:
            self.assertEqual(json.load(f)["options"]["fresh_realizations"], 2)
        self.assertGreater(np.abs(fits.getdata(fresh) - fits.getdata(real)).max(), 1e-4)

    def test_contamination_models(self):
        # White noise of deviation 0.8 written three ways draws the same maps from one seed: a
        # constant deviation map, and a constant power 0.64 per annulus (the Fourier transform
        # of the same white noise scaled by 0.8). The separations are then the same.
        _, d = noisy(16, 4, 0.8)
        obs = self.path("d.fits")
        write_map(obs, d)
        sigma_map, spectrum = self.path("sigma.fits"), self.path("ps.fits")
        write_map(sigma_map, np.full((16, 16), 0.8))
        fits.PrimaryHDU(np.full((1, 13), 0.64)).writeto(spectrum)  # |k| up to round(sqrt(128))
        common = ["-M", 4, "--eras", 1, "--iterations", 4, "-J", 2, "--dn", 1, "--seed", 2]
        outs = {}
        for name, spec in [("white", "gaussian:sigma=0.8"),
                           ("map", "gaussian:sigma-map=" + sigma_map),
                           ("spectrum", "spectrum:" + spectrum)]:
            outs[name] = self.path(name + ".fits")
            self.separate(obs, "--contamination", spec, *common, "-o", outs[name])
        white = fits.getdata(outs["white"]).astype(np.float64)
        for name in ["map", "spectrum"]:
            # float64 draws equal to 1e-15; eight L-BFGS steps keep them within float32 output.
            np.testing.assert_allclose(fits.getdata(outs[name]), white, atol=1e-4, err_msg=name)
        # model: realizations synthesised from examples of c (two white-noise maps here).
        examples = self.path("examples.fits")
        write_map(examples, np.random.default_rng(1).standard_normal((2, 16, 16)))
        model = self.path("model.fits")
        self.separate(obs, "--contamination", "model:" + examples, *common, "-o", model)
        self.assertEqual(fits.getheader(model)["NREALIZ"], 4)
        self.assertFalse(np.allclose(fits.getdata(model), white))
        short = self.path("short.npy")
        np.save(short, np.ones(5))
        self.assertFails(["separate", obs, "--contamination", "spectrum:" + short, "-o",
                          self.path("x.fits")], 1, "5 annuli", output=self.path("x.fits"))
        self.assertFails(["separate", obs, "--contamination", "gaussian:sigma-map=" + examples,
                          "-o", self.path("x.fits")], 1, "deviation map",
                         output=self.path("x.fits"))

    def test_further_terms(self):
        # Every further term at once: recorded in the sidecar, the loss table's terms grow, and
        # the result differs from the main term alone.
        s, d = noisy(16, 6, 0.7)
        rng = np.random.default_rng(2)
        obs, tmpl, d1, d2 = (self.path(x + ".fits") for x in ["d", "t", "d1", "d2"])
        write_map(obs, d)
        write_map(tmpl, s + 0.3 * rng.standard_normal(s.shape))
        write_map(d1, s + 0.7 * np.sqrt(2) * rng.standard_normal(s.shape))
        write_map(d2, s + 0.7 * np.sqrt(2) * rng.standard_normal(s.shape))
        common = [obs, "--contamination", "gaussian:sigma=0.7", "-M", 4, "--eras", 1,
                  "--iterations", 4, "-J", 2, "--dn", 1]
        plain, full = self.path("plain.fits"), self.path("full.fits")
        self.separate(*common, "-o", plain)
        regions = self.path("regions.npy")
        np.save(regions, np.repeat([[0] * 8 + [1] * 8], 16, axis=0))  # left and right halves
        self.separate(*common, "-o", full, "--template", tmpl, "--half-missions", d1, d2,
                      "--contamination-weight", 0.5, "--independence-weight", 2,
                      "--clip-bias", 0.01, "--regions", regions)
        with open(self.path("full.json")) as f:
            side = json.load(f)["options"]
        self.assertEqual(side["terms"], {"contamination": 0.5, "independence": 2,
                                         "template_correlation": 1, "half_missions": 1,
                                         "residual_variance": 1})
        self.assertEqual(side["regions"], regions)
        self.assertEqual(side["template"], tmpl)
        self.assertEqual(side["half_missions"], [d1, d2])
        self.assertEqual(side["bias_clip"], 0.01)
        self.assertFalse(np.allclose(fits.getdata(full), fits.getdata(plain)))
        out = self.path("x.fits")
        self.assertFails(["separate", *common, "--template-weight", 2, "-o", out], 1,
                         "--template-weight needs --template", output=out)
        wrong = self.path("wrong.fits")
        write_map(wrong, np.zeros((8, 8)))
        self.assertFails(["separate", *common, "--half-missions", d1, wrong, "-o", out], 1,
                         "--half-missions", output=out)
        self.assertFails(["separate", *common, "--residual-variance-weight", 1, "-o", out], 1,
                         "--residual-variance-weight needs --regions", output=out)
        self.assertFails(["separate", *common, "--regions", wrong, "-o", out], 1, "--regions",
                         "label map", output=out)
        three = [x if x != 4 else 3 for x in common]  # -M 3
        self.assertFails(["separate", *three, "--half-missions", d1, d2, "-o", out], 1,
                         "fewer than 2 pairs", output=out)

    def test_simulate_observation_and_report(self):
        s, _ = noisy(32, 8)
        sig = self.path("s.fits")
        write_map(sig, s)
        obs, more = self.path("d.fits"), self.path("c.fits")
        rc, _, err = run("simulate", "observation", sig, "--snr", 2, "--seed", 3, "-M", 5,
                         "--realizations-output", more, "-o", obs)
        self.assertEqual(rc, 0, err)
        with fits.open(obs) as h:
            hdr, d = h[0].header, h[0].data.astype(np.float64)
        self.assertEqual((hdr["CTYPE1"], hdr["BUNIT"], hdr["SIMSNR"], hdr["SIMSEED"]),
                         ("GLON-CAR", "K_CMB", 2.0, 3))
        s32 = s.astype(np.float32).astype(np.float64)
        noise = d - s32
        # 1024 pixels: the deviation's relative standard error is 2.2 %; 10 % is 4.5 of them.
        self.assertAlmostEqual(noise.std() / (s32.std() / 2), 1.0, delta=0.1)
        c = fits.getdata(more).astype(np.float64)
        self.assertEqual(c.shape, (5, 32, 32))
        self.assertAlmostEqual(c.std() / (s32.std() / 2), 1.0, delta=0.05)
        self.assertLess(abs(np.corrcoef(c[0].ravel(), noise.ravel())[0, 1]), 0.15)  # independent
        # The same white noise through a contamination spec: the same draw from the same seed.
        sigma = float(np.float64(s32.std(ddof=1)) / 2)
        other = self.path("d2.fits")
        rc, _, err = run("simulate", "observation", sig, "--contamination",
                         "gaussian:sigma=%.17g" % sigma, "--seed", 3, "-o", other)
        self.assertEqual(rc, 0, err)
        np.testing.assert_allclose(fits.getdata(other), d, atol=1e-5)
        # A separation of it with a report: the spectra figure and the validation against the
        # truth (one map each side); without a truth, d - s~ against the realizations.
        out, rep = self.path("sep.fits"), self.path("report")
        self.separate(obs, "--contamination", more, "--eras", 1, "--iterations", 3, "-J", 3,
                      "-o", out, "--truth", sig, "--report", rep)
        with open(rep + "/validation.json") as f:
            v = json.load(f)
        self.assertEqual((v["target_maps"], v["sample_maps"]), (1, 1))
        for png in ["separation.png", "validation.png"]:
            with open(rep + "/" + png, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", png)
        rep2 = self.path("report2")
        self.separate(obs, "--contamination", more, "--eras", 1, "--iterations", 3, "-J", 3,
                      "-o", out, "--report", rep2)
        with open(rep2 + "/validation.json") as f:
            v = json.load(f)
        self.assertEqual((v["target_maps"], v["sample_maps"]), (5, 1))
        # Bad requests.
        self.assertFails(["simulate", "observation", sig, "--snr", 2, "--contamination",
                          "gaussian:sigma=1", "-o", self.path("x.fits")], 1, "either",
                         output=self.path("x.fits"))
        self.assertFails(["simulate", "observation", sig, "--snr", 2, "-M", 3,
                          "--realizations-output", self.path("x.fits"), "-o",
                          self.path("x.fits")], 1, "is the same file as", output=self.path("x.fits"))
        self.assertFails(["simulate", "observation", sig, "--contamination", "model:" + sig,
                          "-o", self.path("x.fits")], 1, "draws gaussian",
                         output=self.path("x.fits"))

    def test_checkpoint_and_resume(self):
        # The checkpoint of a finished run resumes to the same maps; another separation's is
        # refused. (An interrupted run resumed is the library's test.)
        _, d = noisy(16, 9, 0.7)
        obs = self.path("d.fits")
        write_map(obs, d)
        common = [obs, "--contamination", "gaussian:sigma=0.7", "-M", 4, "--eras", 2,
                  "--iterations", 4, "-J", 2, "--dn", 1]
        first, second = self.path("first.fits"), self.path("second.fits")
        self.separate(*common, "-o", first, "--checkpoint-every", 2)
        ckpt = self.path("first.ckpt")
        self.separate(*common, "-o", second, "--resume", ckpt)
        np.testing.assert_array_equal(fits.getdata(second), fits.getdata(first))
        self.assertFails(["separate", *common, "--estimator", "realizations", "--resume", ckpt,
                          "-o", self.path("x.fits")], 1, "another separation",
                         output=self.path("x.fits"))
        self.assertFails(["separate", *common, "--runs", 2, "--checkpoint-every", 2, "-o",
                          self.path("x.fits")], 1, "--runs is 2", output=self.path("x.fits"))

    def test_bad_input(self):
        _, d = noisy(16, 2)
        obs, out = self.path("d.fits"), self.path("s.fits")
        write_map(obs, d)
        gauss = ["--contamination", "gaussian:sigma=1"]
        self.assertFails(["separate", obs, "--contamination", "gaussian:sigma=x", "-o", out], 1,
                         "'x' is not a number", output=out)
        self.assertFails(["separate", obs, "--contamination", "gaussian:sigma=-1", "-o", out], 1,
                         "sigma must be > 0", output=out)
        wrong = self.path("wrong.fits")
        write_map(wrong, np.zeros((3, 8, 8)))
        self.assertFails(["separate", obs, "--contamination", wrong, "-o", out], 1,
                         "3 x 8 x 8", output=out)
        single = self.path("one.fits")
        write_map(single, np.zeros((16, 16)))
        self.assertFails(["separate", obs, "--contamination", single, "-o", out], 1,
                         "at least 2", output=out)
        self.assertFails(["separate", obs, *gauss, "-J", 9, "-o", out], 1, "-J 9", output=out)
        self.assertFails(["separate", obs, *gauss, "--truth", wrong, "-o", out], 1, "--truth",
                         output=out)
        self.assertFails(["separate", obs, "--contamination", wrong.replace("wrong", "one"),
                          "--runs", 2, "-o", out], 1, "--runs 2", output=out)
        self.assertFails(["separate", obs, *gauss, "--eras", 2, "--spectrum-eras", 2, "-o", out],
                         1, "spectrum_eras", output=out)
        self.assertFails(["separate", obs, *gauss, "--estimator", "magic", "-o", out], 2,
                         "magic", output=out)
        self.assertFails(["separate", obs, *gauss, "--fresh-realizations", 2, "-o", out], 1,
                         "--estimator realizations", output=out)
        self.assertFails(["separate", obs, *gauss, "--mask", wrong, "-o", out], 1, "--mask",
                         output=out)
        # A mask: the pixels it excludes keep their starting values (--start observation: d's).
        mask = np.ones((16, 16))
        mask[:4, :4] = 0
        mask_file, masked = self.path("mask.fits"), self.path("masked.fits")
        write_map(mask_file, mask)
        self.separate(obs, *gauss, "--mask", mask_file, "--start", "observation", "--eras", 1,
                      "--iterations", 3, "-J", 2, "-o", masked)
        np.testing.assert_array_equal(fits.getdata(masked)[:4, :4],
                                      d.astype(np.float32)[:4, :4])
        self.assertGreater(np.abs(fits.getdata(masked)[8:, 8:] - d[8:, 8:]).max(), 1e-4)
        with open(self.path("masked.json")) as f:
            self.assertEqual(json.load(f)["options"]["mask"], mask_file)
        self.assertFails(["separate", obs, *gauss, "-M", 3, "--estimator", "realizations",
                          "--fresh-realizations", 4, "-o", out], 1, "fresh_realizations = 4",
                         output=out)
        self.assertFails(["separate", obs, *gauss, "-o", self.path("missing/s.fits")], 1,
                         "missing")
        self.assertFails(["separate", obs, *gauss, "-o", self.path("s.png")], 1, ".fits")
        cplx = self.path("q_iu.npy")
        np.save(cplx, (d + 1j * d).astype(np.complex64))
        self.assertFails(["separate", cplx, *gauss, "-o", out], 1, "is complex", output=out)


if __name__ == "__main__":
    clitest.main(timeout=300)

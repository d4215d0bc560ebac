#!/usr/bin/env python3
"""Command-line behaviour of `demix`: exit codes (0 ok, 1 runtime failure, 2 usage), messages that
name the file and the problem, and no output file (nor temporary) left behind by a failure.

usage: test_cli.py PATH/TO/demix
"""
import os
import signal
import socket
import subprocess
import time

import numpy as np

import clitest
from clitest import run


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read_png_rgb(path):
    """(H, W, 3) uint8 pixels of an 8-bit RGB, non-interlaced PNG (what demix writes), decoded with
    zlib alone so that the test needs no imaging library."""
    import struct
    import zlib
    data = read_bytes(path)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, colour, interlace) == (8, 2, 0), (depth, colour, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), 3 * width
    rows, prev = [], bytearray(stride)
    for r in range(height):
        f, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, 3)


class CliTest(clitest.CliTestCase):
    def setUp(self):
        super().setUp()
        self.good = self.path("good.npy")
        np.save(self.good, np.random.default_rng(1).normal(size=(16, 24)).astype(np.float32))

    # ---- success paths ----
    def test_help_and_version(self):
        rc, out, _ = run("--help")
        self.assertEqual(rc, 0)
        for cmd in ("version", "info", "convert", "preview", "stats"):
            self.assertIn(cmd, out)
        rc, out, _ = run("convert", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--out-type", out)
        rc, out, _ = run("version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"demix \d+\.\d+\.\d+")
        self.assertRegex(out, r"LibTorch \d+\.\d+")
        self.assertIn("devices: cpu", out)

    def test_info_reports_shape_stats_and_nans(self):
        x = np.arange(12, dtype=np.float64).reshape(3, 4)
        x[1, 1] = np.nan
        np.save(self.path("n.npy"), x)
        rc, out, err = run("info", self.path("n.npy"))
        self.assertEqual(rc, 0, err)
        self.assertIn("3 x 4", out)
        self.assertIn("1 NaN", out)
        self.assertIn("0 / 11", out)  # min / max of finite pixels

    def test_convert_round_trip_and_preview(self):
        fits = self.path("g.fits")
        rc, out, err = run("convert", self.good, fits)
        self.assertEqual(rc, 0, err)
        rc, _, err = run("convert", fits, self.path("back.npy"))
        self.assertEqual(rc, 0, err)
        np.testing.assert_array_equal(np.load(self.path("back.npy")), np.load(self.good))
        rc, _, err = run("preview", fits, self.path("g.png"), "--stretch", "log", "--cmap", "magma",
                         "--bare")
        self.assertEqual(rc, 0, err)
        head = read_bytes(self.path("g.png"))[:24]
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(int.from_bytes(head[16:20], "big"), 24)  # IHDR width: one pixel a pixel
        # The default: a figure (axes, colour bar) around the picture scaled to --size.
        rc, text, err = run("preview", fits, self.path("f.png"), "--size", "240")
        self.assertEqual(rc, 0, err)
        head = read_bytes(self.path("f.png"))[:24]
        if "colour bar" in text:  # a build with cairo
            self.assertGreater(int.from_bytes(head[16:20], "big"), 240)
            self.assertGreater(int.from_bytes(head[20:24], "big"), 160)

    def test_global_options_before_or_after_subcommand(self):
        rc, _, err = run("--device", "cpu", "--dtype", "float64", "info", self.good)
        self.assertEqual(rc, 0, err)
        rc, _, err = run("info", self.good, "--device", "cpu", "--threads", "1")
        self.assertEqual(rc, 0, err)

    # ---- usage errors: exit 2 ----
    def test_version_flag_and_readable_bounds(self):
        rc, out, err = run("--version")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^demix \d+\.\d+\.\d+\n$")
        # Out-of-range numbers: the bound and the value, not CLI11's 309-digit double range;
        # absurd sizes fail at once instead of hanging or exhausting memory.
        for args, words in [(["stats", "-J", "0", self.good], "-J: must be a number > 0, got '0'"),
                            (["--threads", "100000", "version"], "[0, 1024], got '100000'"),
                            (["stats", "-L", "100000", self.good], "[1, 64], got '100000'"),
                            (["stats", "--dn", "100000", self.good], "[0, 16], got '100000'"),
                            (["simulate", "blends", "--max-galaxies", "100000", "-o",
                              self.path("b.fits")], "[1, 100], got '100000'")]:
            self.assertFails(args, 2, words)
        # Choices: names in help and errors, not CLI11's name->code table; codes refused.
        rc, out, _ = run("stats", "--help")
        self.assertIn("{none, auto}", out.replace("{auto, none}", "{none, auto}"))
        self.assertNotIn("->", out)
        self.assertFails(["stats", "--kind", "1", self.good], 2, "must be one of")

    def test_usage_errors_exit_2(self):
        self.assertFails([], 2)
        self.assertFails(["frobnicate"], 2)
        self.assertFails(["convert", self.good], 2, "output")
        self.assertFails(["preview", self.good, self.path("p.png"), "--stretch", "cubic"], 2, "cubic",
                         output=self.path("p.png"))
        self.assertFails(["--device", "tpu", "info", self.good], 2, "tpu")
        self.assertFails(["info", self.good, "--no-such-option"], 2)

    # ---- runtime failures: exit 1, message, no output ----
    def test_missing_file(self):
        out = self.path("o.fits")
        self.assertFails(["convert", self.path("nope.fits"), out], 1, "nope.fits", "file not found",
                         output=out)

    def test_not_fits_or_npy(self):
        with open(self.path("notes.fits"), "w") as f:
            f.write("SIMPLE? no, just text\n")
        out = self.path("o.npy")
        self.assertFails(["convert", self.path("notes.fits"), out], 1, "notes.fits",
                         "neither a FITS file", output=out)

    def test_truncated_files(self):
        big = self.path("big.npy")
        np.save(big, np.zeros((64, 64)))
        data = read_bytes(big)
        write_bytes(self.path("cut.npy"), data[:-1000])
        out = self.path("o.fits")
        self.assertFails(["convert", self.path("cut.npy"), out], 1, "cut.npy", "truncated", output=out)
        rc, _, err = run("convert", big, self.path("big.fits"))
        self.assertEqual(rc, 0, err)
        data = read_bytes(self.path("big.fits"))
        write_bytes(self.path("cut.fits"), data[:-4000])
        self.assertFails(["convert", self.path("cut.fits"), out], 1, "cut.fits", "truncated", output=out)

    def test_unsupported_type(self):
        np.save(self.path("half.npy"), np.ones((4, 4), dtype=np.float16))
        out = self.path("o.fits")
        self.assertFails(["convert", self.path("half.npy"), out], 1, "half.npy", "'<f2'", output=out)
        # Integer images are read exactly (as float64).
        np.save(self.path("int.npy"), np.arange(16, dtype=np.int32).reshape(4, 4) - 8)
        rc, _, err = run("convert", self.path("int.npy"), self.path("int_out.npy"))
        self.assertEqual(rc, 0, err)
        np.testing.assert_array_equal(np.load(self.path("int_out.npy")), np.arange(16).reshape(4, 4) - 8)

    def test_complex_to_fits_refused(self):
        np.save(self.path("z.npy"), (np.ones((4, 4)) * (1 + 2j)).astype(np.complex64))
        out = self.path("z.fits")
        self.assertFails(["convert", self.path("z.npy"), out], 1, "complex", output=out)
        rc, _, err = run("preview", self.path("z.npy"), self.path("z.png"), "--part", "phase")
        self.assertEqual(rc, 0, err)

    def test_hdu_out_of_range_names_the_hdus(self):
        fits = self.path("one.fits")
        rc, _, err = run("convert", self.good, fits)
        self.assertEqual(rc, 0, err)
        for sel in ("[7]", "[SCI]"):
            out = self.path("o.npy")
            self.assertFails(["convert", fits + sel, out], 1, "no such HDU", "has 1 HDU(s)",
                             "0 PRIMARY (image)", output=out)
            self.assertFails(["stats", fits + sel, "-o", self.path("s.fits")], 1, "no such HDU",
                             output=self.path("s.fits"))

    def test_empty_hdu(self):
        # A FITS file whose only HDU has no data: NAXIS = 0.
        card = lambda s: s.ljust(80).encode()
        header = card("SIMPLE  =                    T") + card("BITPIX  =                    8") + \
            card("NAXIS   =                    0") + card("END")
        write_bytes(self.path("empty.fits"), header.ljust(2880, b" "))
        out = self.path("o.npy")
        self.assertFails(["convert", self.path("empty.fits"), out], 1, "empty.fits", "no image data",
                         output=out)

    def test_nan_refused_unless_replaced(self):
        x = np.ones((8, 8), dtype=np.float32)
        x[0, :3] = np.nan
        x[1, 0] = np.inf
        np.save(self.path("nan.npy"), x)
        out = self.path("o.fits")
        # convert keeps blanked pixels by default (routine in sky images); --nan reject refuses.
        rc, _, err = run("convert", self.path("nan.npy"), self.path("kept.npy"))
        self.assertEqual(rc, 0, err)
        np.testing.assert_array_equal(np.load(self.path("kept.npy")), x)
        self.assertFails(["convert", self.path("nan.npy"), out, "--nan", "reject"], 1, "nan.npy",
                         "4 non-finite", "3 NaN", "--nan", output=out)
        # Statistics refuse them unless told.
        self.assertFails(["stats", self.path("nan.npy"), "-o", out], 1, "non-finite", output=out)
        rc, _, err = run("convert", self.path("nan.npy"), self.path("z.npy"), "--nan", "zero")
        self.assertEqual(rc, 0, err)
        z = np.load(self.path("z.npy"))
        self.assertEqual(z[0, 0], 0.0)
        self.assertTrue(np.isfinite(z).all())

    def test_wrong_dimensions(self):
        np.save(self.path("line.npy"), np.ones(10))
        np.save(self.path("hyper.npy"), np.ones((2, 2, 2, 2)))
        out = self.path("o.fits")
        self.assertFails(["convert", self.path("line.npy"), out], 1, "1 dimension", output=out)
        self.assertFails(["convert", self.path("hyper.npy"), out], 1, "4 dimension", output=out)

    def test_output_folder_missing_and_bad_extension(self):
        out = self.path("no/such/dir/o.fits")
        self.assertFails(["convert", self.good, out], 1, "does not exist", output=out)
        self.assertFails(["convert", self.good, self.path("o.txt")], 1, "'.txt'",
                         output=self.path("o.txt"))

    def test_failed_run_keeps_existing_output(self):
        out = self.path("keep.npy")
        np.save(out, np.full((2, 2), 7.0))
        np.save(self.path("nan.npy"), np.full((4, 4), np.nan))
        self.assertFails(["convert", self.path("nan.npy"), out, "--nan", "reject"], 1, "non-finite")
        np.testing.assert_array_equal(np.load(out), np.full((2, 2), 7.0))

    def test_bad_plane_and_missing_cuda(self):
        np.save(self.path("cube.npy"), np.ones((3, 4, 4)))
        out = self.path("c.png")
        self.assertFails(["preview", self.path("cube.npy"), out, "--plane", "5"], 1, "--plane 5",
                         "3 planes", output=out)
        self.assertFails(["preview", self.good, out, "--plane", "5"], 1, "--plane 5",
                         "single map", output=out)
        self.assertFails(["preview", self.good, out, "--vmin", "nan"], 2, "a finite number",
                         output=out)
        self.assertFails(["preview", self.good, out, "--vmin", "2", "--vmax", "1"], 1,
                         "must be below --vmax", output=out)
        rc, out_text, _ = run("version")
        if "no CUDA device" in out_text:
            self.assertFails(["--device", "cuda", "info", self.good], 1, "cuda")


    # ---- outputs: checked first, written all-or-nothing, no temporary left ----
    def test_two_outputs_on_one_file_or_on_an_input(self):
        m = self.small_map()
        out = self.path("s.fits")
        self.assertFails(["stats", m, "-o", out, "--json", out], 1, "is the same file as",
                         output=out)
        # The same file under another spelling, and an output that is the input.
        self.assertFails(["stats", m, "-o", out, "--json", self.dir + "/./s.fits"], 1,
                         "is the same file as", output=out)
        before = read_bytes(m)
        self.assertFails(["convert", m, m], 1, "is an input")
        self.assertEqual(read_bytes(m), before)

    def test_failed_run_keeps_every_existing_output(self):
        m = self.small_map()
        table, json_path = self.path("t.fits"), self.path("t.json")
        write_bytes(table, b"old table")
        write_bytes(json_path, b"old json")
        # The second output's folder is missing: nothing is written, the first output is intact.
        self.assertFails(["stats", m, "-o", table, "--json", self.path("no/t.json")], 1,
                         "does not exist")
        self.assertEqual(read_bytes(table), b"old table")
        # simulate's --png folder is missing: refused before the simulation, -o intact.
        self.assertFails(["simulate", "isolated", "-n", "2", "-o", table, "--png",
                          self.path("no/p.png")], 1, "does not exist")
        self.assertEqual(read_bytes(table), b"old table")
        self.assertEqual(read_bytes(json_path), b"old json")

    def test_stale_temporary_of_a_dead_process_is_removed(self):
        host = "".join(c if c.isalnum() else "-" for c in socket.gethostname())
        # pid beyond Linux's largest (2^22): no such process can run.
        stale = self.path(f".demix-tmp_{host}_4194400_0_x.fits.part")
        other_host = self.path(".demix-tmp_elsewhere_4194400_0_x.fits.part")
        write_bytes(stale, b"left by a killed run")
        write_bytes(other_host, b"maybe being written on another machine")
        rc, _, err = run("convert", self.good, self.path("o.fits"))
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(other_host))

    def test_interrupted_run_leaves_no_temporary(self):
        out = self.path("blends.fits")
        p = subprocess.Popen([clitest.DEMIX, "simulate", "blends", "-n", "100000", "-o", out,
                              "--csv", self.path("truth.csv")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline and not any(f.startswith(".demix-tmp_")
                                                 for f in os.listdir(self.dir)):
            time.sleep(0.05)
        self.assertTrue(any(f.startswith(".demix-tmp_") for f in os.listdir(self.dir)),
                        "the run wrote no temporary within 60 s")
        for sig in (signal.SIGINT,):
            p.send_signal(sig)
        p.communicate(timeout=60)
        self.assertEqual(p.returncode, -signal.SIGINT)
        self.assertFalse(os.path.exists(out))
        self.assertNoTemporaries("an interrupted simulate")

    # ---- demix stats ----
    def small_map(self, name="s.npy", shape=(64, 64), seed=3):
        x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
        np.save(self.path(name), np.exp(0.5 * x))  # positive, so that --log applies
        return self.path(name)

    def test_stats_table_json_and_counts(self):
        from astropy.io import fits  # Debian's python3-astropy, as in the interop tests
        import json
        m = self.small_map()
        out, js = self.path("w.fits"), self.path("w.json")
        rc, text, err = run("stats", "--kind", "wph", "-J", "3", "--log", "--standardize", m,
                            "-o", out, "--json", js)
        self.assertEqual(rc, 0, err)
        self.assertIn("wrote", text)
        with fits.open(out, checksum=True) as h:
            self.assertEqual(h[1].name, "COEFFS")
            t, hdr = h["COEFFS"].data, h[0].header
            self.assertEqual((hdr["STAT"], hdr["J"], hdr["L"], hdr["DN"]), ("wph", 3, 4, 2))
            self.assertTrue(hdr["LOGMAP"] and hdr["STDMAP"])
            names = [h["COEFFS"].header[f"CLASS{i + 1}"] for i in range(h["COEFFS"].header["NCLASS"])]
            self.assertEqual(names, ["S11", "S00", "S01", "C01", "Cphase", "L"])
            self.assertEqual(set(t["CLASS"]), set(names))
            self.assertEqual(t.columns.names, ["CLASS", "J1", "T1", "P1", "J2", "T2", "P2", "N", "A",
                                               "PSEUDO", "REAL", "IMAG"])
            rows, classes, re = len(t), list(t["CLASS"]), np.array(t["REAL"])
        with open(js) as f:
            j = json.load(f)
        self.assertEqual(j["kind"], "wph")
        self.assertEqual(j["options"]["J"], 3)
        self.assertEqual(j["classes"], names)
        self.assertEqual(len(j["coefficients"]), rows)
        self.assertEqual([c["class"] for c in j["coefficients"]], classes)
        np.testing.assert_array_equal([c["re"] for c in j["coefficients"]], re)
        self.assertIn("j1", j["coefficients"][0])
        # Coefficient counts with a closed form: WST C = 1 + J L + L^2 J (J - 1) / 2, and the
        # scattering covariance 2 + 2 J L + L^2 J(J+1)/2 + L^3 C(J+2, 3) + 2 J + L J(J+1)/2 + L^2 C(J+2, 3).
        scov_count = 2 + 2 * 3 * 4 + 16 * 6 + 64 * 10 + 2 * 3 + 4 * 6 + 16 * 10  # C(5, 3) = 10
        for kind, extra, count in (("wst", ["-L", "8"], 1 + 3 * 8 + 64 * 3), ("scov", [], scov_count)):
            o = self.path(kind + ".fits")
            rc, _, err = run("stats", "--kind", kind, "-J", "3", *extra, m, "-o", o)
            self.assertEqual(rc, 0, err)
            with fits.open(o) as h:
                self.assertEqual(len(h["COEFFS"].data), count, kind)
                self.assertEqual(h[0].header["STAT"], kind)
        # The power spectrum: one bin per integer |k| up to Nyquist (0 .. 32 for 64 x 64), class P;
        # scales and normalisation do not apply to it.
        o = self.path("ps.fits")
        rc, _, err = run("stats", "--kind", "ps", m, "-o", o)
        self.assertEqual(rc, 0, err)
        with fits.open(o) as h:
            self.assertEqual(len(h["COEFFS"].data), 33)
            self.assertEqual(set(h["COEFFS"].data["CLASS"]), {"P"})
            self.assertEqual(h[0].header["STAT"], "ps")
            self.assertNotIn("J", h[0].header)
            self.assertLess(abs(h["COEFFS"].data["REAL"][0]), 1e-12)  # mean subtracted: k = 0 empty
        self.assertFails(["stats", "--kind", "ps", "--norm", "auto", m, "-o", o + "2"], 2, "--norm")
        self.assertFails(["stats", "--kind", "ps", "-J", "3", m, "-o", o + "2"], 2, "-J")
        # A cube is a batch: one vector of B values per row.
        np.save(self.path("cube.npy"), np.random.default_rng(4).normal(size=(2, 32, 32)))
        rc, _, err = run("stats", "--kind", "wst", "-J", "2", self.path("cube.npy"), "-o",
                         self.path("cube.fits"))
        self.assertEqual(rc, 0, err)
        with fits.open(self.path("cube.fits")) as h:
            self.assertEqual(h["COEFFS"].data["REAL"].shape, (1 + 2 * 8 + 64, 2))
            self.assertEqual(h["COEFFS"].header["NMAPS"], 2)

    def test_stats_cross_wph(self):
        from astropy.io import fits
        a, b = self.small_map("a.npy", seed=5), self.small_map("b.npy", seed=6)
        tables = {}
        for name, extra in (("auto", []), ("self", ["--cross", a]), ("ab", ["--cross", b])):
            o = self.path(name + ".fits")
            rc, _, err = run("stats", "--kind", "wph", "-J", "3", a, "-o", o, *extra)
            self.assertEqual(rc, 0, err)
            with fits.open(o) as h:
                tables[name] = np.array(h["COEFFS"].data["REAL"]) + 1j * np.array(h["COEFFS"].data["IMAG"])
                if extra:
                    self.assertEqual(h[0].header["CROSS"], extra[1])
        # cross-WPH of a map with itself is its WPH (float32: rounding of a few ulps of the largest).
        scale = np.abs(tables["auto"]).max()
        np.testing.assert_allclose(tables["self"], tables["auto"], rtol=0, atol=1e-5 * scale)
        self.assertGreater(np.abs(tables["ab"] - tables["auto"]).max(), 1e-2 * scale)
        out = self.path("x.fits")
        np.save(self.path("small.npy"), np.ones((32, 32)))
        self.assertFails(["stats", "-J", "3", a, "--cross", self.path("small.npy"), "-o", out], 1,
                         "--cross", "same shape", output=out)
        self.assertFails(["stats", "--kind", "wst", a, "--cross", b, "-o", out], 2, "--cross",
                         output=out)

    def test_stats_usage_and_runtime_errors(self):
        m = self.small_map()
        out, js = self.path("o.fits"), self.path("o.json")
        self.assertFails(["stats", "--kind", "ps2", m, "-o", out], 2, "ps2", output=out)
        self.assertFails(["stats", m], 2, "output", output=out)
        self.assertFails(["stats", "--kind", "wst", "--norm", "auto", m, "-o", out], 2, "--norm",
                         output=out)
        err = self.assertFails(["stats", "-J", "6", m, "-o", out, "--json", js], 1, "-J 6",
                               "64 x 64", "J <= 5", output=out)
        self.assertFalse(os.path.exists(js))
        self.assertFails(["stats", "--kind", "scov", "-J", "7", m, "-o", out], 1, "-J 7", "J <= 6",
                         output=out)
        np.save(self.path("neg.npy"), -np.ones((64, 64)))
        self.assertFails(["stats", "--log", self.path("neg.npy"), "-o", out], 1, "--log", "4096",
                         output=out)
        self.assertFails(["stats", "-J", "3", m, "-o", out, "--json", self.path("no/dir/o.json")], 1,
                         "no/dir", output=out)

    def test_stats_compare_maps_and_tables(self):
        a, b = self.small_map("a.npy", seed=5), self.small_map("b.npy", seed=6)
        png = self.path("cmp.png")
        rc, out, err = run("stats", "-J", "3", "--compare", a, b, "-o", png, "--width", "300",
                           "--height", "120")
        self.assertEqual(rc, 0, err)
        for cls in ("S11", "S00", "S01", "C01", "Cphase", "L", "all"):
            self.assertRegex(out, rf"\n{cls} +\d+ +[0-9.e+-]+ +[0-9.e+-]+\n", cls)
        self.assertIn("one panel per map", out)
        head = read_bytes(png)[:24]
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        # A chart (axes, legend, class names): panels at least 480 x 240, a 34-pixel title row.
        self.assertEqual(int.from_bytes(head[16:20], "big"), 480)
        self.assertEqual(int.from_bytes(head[20:24], "big"), 240 + 34)
        # Identical statistics (a coefficient file against its own map) differ by exactly 0.
        rc, _, err = run("stats", "-J", "3", a, "-o", self.path("a.fits"))
        self.assertEqual(rc, 0, err)
        rc, out, err = run("stats", "-J", "3", "--compare", self.path("a.fits"), a)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"\nall +518 +0 +0\n")
        # Different J: not comparable.
        self.assertFails(["stats", "-J", "2", "--compare", self.path("a.fits"), a, "-o", png], 1,
                         "cannot compare")
        self.assertFails(["stats", "--compare", a, b, "-o", self.path("c.fits")], 1, ".png")
        self.assertFails(["stats", "--compare", a, "-o", png], 2)
        # Same labels, other options (normalisation, standardised map): refused, naming the
        # keywords that differ, unless --force.
        rc, _, err = run("stats", "-J", "3", "--norm", "auto", "--standardize", a, "-o",
                         self.path("a_auto.fits"))
        self.assertEqual(rc, 0, err)
        self.assertFails(["stats", "--compare", self.path("a.fits"), self.path("a_auto.fits")], 1,
                         "NORM none vs auto, STDMAP F vs T")
        rc, out, err = run("stats", "--compare", self.path("a.fits"), self.path("a_auto.fits"),
                           "--force")
        self.assertEqual(rc, 0, err)
        self.assertIn("compared anyway", err)

    def test_stats_compare_batches_map_by_map(self):
        # Cubes A = [m0, m1], B = [m0, m2]: map 0 is identical in both, map 1 is not.
        rng = np.random.default_rng(7)
        m = [np.exp(0.5 * rng.normal(size=(64, 64))) for _ in range(3)]
        a, b = self.path("ca.npy"), self.path("cb.npy")
        np.save(a, np.stack([m[0], m[1]]))
        np.save(b, np.stack([m[0], m[2]]))
        classes = ("S11", "S00", "S01", "C01", "Cphase", "L", "all")
        num = r"([0-9.e+-]+)"
        png = self.path("batch.png")
        rc, out, err = run("stats", "-J", "3", "--compare", a, b, "-o", png, "--width", "300",
                           "--height", "100")
        self.assertEqual(rc, 0, err)
        rows = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) == 5 and f[1] in classes and f[0] in ("0", "1", "all"):
                rows[f[0], f[1]] = (int(f[2]), float(f[3]), float(f[4]))
        self.assertEqual(len(rows), 3 * len(classes), out)
        for cls in classes:
            self.assertEqual(rows["0", cls][1:], (0.0, 0.0), cls)  # the same map in A and B
            self.assertGreater(rows["1", cls][1], 0, cls)
            # Over both maps (same count each): the mean of the two means, the larger maximum.
            self.assertAlmostEqual(rows["all", cls][1], rows["1", cls][1] / 2,
                                   delta=1e-3 * rows["1", cls][1])
            self.assertEqual(rows["all", cls][2], rows["1", cls][2])
        self.assertEqual(rows["0", "all"][0], 518)
        # The chart: one panel per map, each with A (blue) and B (orange) drawn.
        rgb = read_png_rgb(png)
        self.assertEqual(rgb.shape, (2 * 240 + 34, 480, 3))
        blue, orange = np.array([31, 119, 180]), np.array([255, 127, 14])
        for panel in (rgb[34:34 + 240], rgb[34 + 240:]):
            self.assertTrue((panel == orange).all(-1).any())
            self.assertTrue((panel == blue).all(-1).any())
        # A cube against itself: zero for every map; a single map keeps the four-column table.
        rc, out, err = run("stats", "-J", "3", "--compare", a, a)
        self.assertEqual(rc, 0, err)
        for map_ in ("0", "1", "all"):
            self.assertRegex(out, rf"\n{map_} +all +518 +0 +0\n")
        rc, out, err = run("stats", "-J", "3", "--compare", self.small_map("s1.npy"),
                           self.small_map("s2.npy", seed=9), "-o", self.path("one.png"),
                           "--height", "100")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, rf"\nall +518 +{num} +{num}\n")
        self.assertNotIn("panels", out)
        self.assertEqual(read_png_rgb(self.path("one.png")).shape, (240 + 34, 1200, 3))
        # Batches of different sizes are not comparable.
        np.save(self.path("c3.npy"), np.stack(m))
        self.assertFails(["stats", "-J", "3", "--compare", a, self.path("c3.npy")], 1, "2 vs 3 maps")


if __name__ == "__main__":
    clitest.main()

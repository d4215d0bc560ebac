#!/usr/bin/env python3
"""`demix train-vae` and `demix train-flow`: outputs (model, history CSV, loss PNG, checkpoint),
resumption, the provenance stored in the model (read back with an independent parser of the
archive format), and bad inputs that must exit non-zero with a message and leave no model file.

usage: test_train.py PATH/TO/demix
"""
import os
import struct

import numpy as np

import clitest
from clitest import run

SMALL = ["--encoder-channels", "4,8", "--decoder-channels", "8,4,4", "--dense-units", "16",
         "--latent-dim", "4", "--batch-size", "16", "--ae-epochs", "1", "--threads", "2"]


def read_archive(path):
    """Entries of a demix archive (src/io/detail/tensor_archive.hpp), parsed from the bytes."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"DMXARCH1", data[:8]
    pos = 8
    (count,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    entries = {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        name = data[pos:pos + n].decode()
        pos += n
        kind = data[pos]
        pos += 1
        if kind == 1:
            (n,) = struct.unpack_from("<Q", data, pos)
            pos += 8
            entries[name] = data[pos:pos + n].decode()
            pos += n
        else:
            code, ndim = data[pos], struct.unpack_from("<I", data, pos + 1)[0]
            pos += 5
            shape = struct.unpack_from("<%dq" % ndim, data, pos)
            pos += 8 * ndim
            dtype = {0: "<f4", 1: "<f8", 2: "<i8"}[code]
            size = int(np.prod(shape)) if ndim else 1
            entries[name] = np.frombuffer(data, dtype, size, pos).reshape(shape)
            pos += size * np.dtype(dtype).itemsize
    assert pos + 8 == len(data), "trailing bytes"
    return entries


class TrainTest(clitest.CliTestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(3)
        n, b, s = 48, 2, 15
        yy, xx = np.mgrid[:s, :s] - s // 2
        radius = rng.uniform(0.8, 1.5, n)[:, None, None]
        profile = np.exp(-0.5 * (xx**2 + yy**2) / radius**2)
        profile /= profile.sum(axis=(1, 2), keepdims=True)
        self.sigmas = np.array([100.0, 200.0])
        flux = 10 ** rng.uniform(1.5, 3.0, (n, 1)) * self.sigmas
        clean = flux[:, :, None, None] * profile[:, None]
        noisy = clean + rng.normal(size=clean.shape) * self.sigmas[None, :, None, None]
        self.stamps = self.path("stamps.npy")
        self.clean = self.path("clean.npy")
        np.save(self.stamps, noisy.astype(np.float32))
        np.save(self.clean, clean.astype(np.float32))

    def train_vae(self, model, *extra):
        rc, out, err = run("train-vae", self.stamps, "--noiseless", self.clean, "-o", model,
                           "--epochs", 2, *SMALL, *extra)
        self.assertEqual(rc, 0, err)
        return out, err

    def test_train_vae_then_flow(self):
        model = self.path("m.dmx")
        out, err = self.train_vae(model, "--seed", 5)
        self.assertIn("epoch 1/2", err)
        self.assertIn("epoch 2/2", err)
        self.assertIn("targets: noiseless", err)
        self.assertIn("estimated from the stamp borders", err)
        self.assertIn("wrote " + model, out)
        for name in ("m.dmx", "m_vae.ckpt", "m_vae_history.csv", "m_vae_loss.png"):
            self.assertTrue(os.path.exists(self.path(name)), name)
        with open(self.path("m_vae_loss.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        rows = np.genfromtxt(self.path("m_vae_history.csv"), delimiter=",", names=True)
        self.assertEqual(rows["epoch"].tolist(), [1, 2])
        self.assertTrue(np.all(np.isfinite(rows["val_loss"])))

        a = read_archive(model)
        self.assertEqual(a["format"], "demix-madness-model")
        self.assertEqual(a["meta.band_names"], "band1\nband2")
        # Border estimate of the sigmas: 48 stamps x 176 border pixels, ~1.5 % error; 6 % is 4 of
        # those plus the small bias of galaxy light reaching the border.
        np.testing.assert_allclose(a["meta.noise_sigmas"], self.sigmas, rtol=0.06)
        self.assertEqual(a["flow.present"], 0)
        self.assertIn("demix train-vae", a["meta.provenance"])
        self.assertIn("--seed 5", a["meta.provenance"])
        self.assertEqual(a["vae.decoder.out.weight"].shape, (2, 4, 3, 3))
        self.assertEqual(a["vae.option.stamp_size"], 15)

        rc, out, err = run("train-flow", self.stamps, "--model", model, "-o", model, "--epochs", 2,
                           "--blocks", 2, "--hidden", "8,8", "--batch-size", 16)
        self.assertEqual(rc, 0, err)
        self.assertIn("epoch 2/2", err)
        for name in ("m_flow.ckpt", "m_flow_history.csv", "m_flow_loss.png"):
            self.assertTrue(os.path.exists(self.path(name)), name)
        a = read_archive(model)
        self.assertEqual(a["flow.present"], 1)
        lines = a["meta.provenance"].split("\n")
        self.assertEqual(len(lines), 2)
        self.assertIn("demix train-vae", lines[0])
        self.assertIn("demix train-flow", lines[1])
        self.assertEqual(a["flow.option.hidden"].tolist(), [8, 8])
        rc, out, err = run("info", model)
        self.assertEqual(rc, 0, err)
        self.assertIn("demix MADNESS model", out)
        self.assertIn("2 bands x 15 x 15 (band1 band2)", out)
        self.assertIn("2 MADE blocks", out)
        self.assertEqual(out.count("made by  : demix train-"), 2)

        # Resume the VAE run to 3 epochs: the history continues, the model is rewritten.
        rc, out, err = run("train-vae", self.stamps, "--noiseless", self.clean, "-o",
                           self.path("m3.dmx"), "--epochs", 3, "--seed", 5, "--batch-size", 16,
                           "--ae-epochs", 1, "--resume", self.path("m_vae.ckpt"))
        self.assertEqual(rc, 0, err)
        self.assertNotIn("epoch 1/3", err)
        self.assertIn("epoch 3/3", err)
        rows = np.genfromtxt(self.path("m3_vae_history.csv"), delimiter=",", names=True)
        self.assertEqual(rows["epoch"].tolist(), [1, 2, 3])

    def test_quiet_prints_nothing(self):
        rc, out, err = run("-q", "train-vae", self.stamps, "-o", self.path("q.dmx"), "--epochs", 1,
                           "--sigmas", "100,200", "--bands", "g,r", *SMALL)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out + err, "")
        self.assertEqual(read_archive(self.path("q.dmx"))["meta.band_names"], "g\nr")

    def test_bad_inputs(self):
        model = self.path("bad.dmx")
        self.assertFails(["train-vae", self.path("missing.npy"), "-o", model], 1, "missing.npy",
                         output=model)
        np.save(self.path("cube.npy"), np.zeros((4, 9, 9), np.float32))
        self.assertFails(["train-vae", self.path("cube.npy"), "-o", model], 1, "(N, B, S, S)",
                         output=model)
        self.assertFails(["train-vae", self.stamps, "-o", model, "--sigmas", "1,2,3"], 1,
                         "--sigmas has 3 values", output=model)
        self.assertFails(["train-vae", self.stamps, "-o", self.path("nope/m.dmx")], 1,
                         "does not exist")
        self.assertFails(["train-vae", self.stamps, "-o", model, "--target", "clean"], 2,
                         "--target", output=model)
        self.assertFails(["train-vae", self.stamps, "-o", model, "--target", "noiseless"], 1,
                         "no NOISELESS", output=model)
        np.save(self.path("zeros.npy"), np.zeros((8, 2, 15, 15), np.float32))
        self.assertFails(["train-vae", self.path("zeros.npy"), "-o", model], 1, "noiseless",
                         output=model)
        nan = np.load(self.stamps)
        nan[3, 1, 4, 2] = np.nan
        np.save(self.path("nan.npy"), nan)
        self.assertFails(["train-vae", self.path("nan.npy"), "-o", model, "--sigmas", "1,2"], 1,
                         "nan.npy", "1 NaN", "stamp 3, band 1, pixel (x 2, y 4)", output=model)
        self.assertFails(["train-vae", self.stamps, "-o", model, "--val-fraction", "0.9"], 2,
                         "--val-fraction", output=model)
        self.assertFails(["train-vae", self.stamps, "-o", model, "--resume", self.stamps,
                          "--latent-dim", "8"], 2, "checkpoint", output=model)
        self.assertFails(["train-vae", self.stamps, "-o", model, "--resume", self.stamps], 1,
                         "not a demix model", output=model)

        self.assertFails(["train-flow", self.stamps, "-o", model], 2, "--model", output=model)
        self.assertFails(["train-flow", self.stamps, "--model", self.stamps, "-o", model], 1,
                         "not a demix model", output=model)
        self.train_vae(self.path("v.dmx"))
        np.save(self.path("other.npy"), np.zeros((4, 2, 11, 11), np.float32))
        self.assertFails(["train-flow", self.path("other.npy"), "--model", self.path("v.dmx"),
                          "-o", model], 1, "(N, 2, 15, 15)", output=model)
        self.assertFails(["train-flow", self.stamps, "--model", self.path("v.dmx"), "-o", model,
                          "--hidden", "2"], 1, "hidden width", output=model)


if __name__ == "__main__":
    clitest.main(timeout=300, verbosity=1)

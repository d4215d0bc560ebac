"""Scattering statistics of two dust maps from Python, notebook style (run cell by cell in an
editor that knows "# %%", or as a script). Checks its own output.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/statistics.py ../shared/data/dust
"""

# %% Two maps, as the command line reads them (FITS or npy; FITS headers come back as a dict)
import sys

import numpy as np
import torch

import demix

folder = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/dust"
maps = []
for name in ("I_1.npy", "I_2.npy"):
    x, header = demix.read_image(f"{folder}/{name}")
    x = np.log(x[:128, :128].astype(np.float64))  # dust is log-normal-ish: analyse log I
    maps.append((x - x.mean()) / x.std())
batch = np.stack(maps)  # (2, 128, 128)

# %% Wavelet phase harmonics of both maps in one call: values (B, K), one label row each
wph = demix.WPH(batch.shape[-2:], J=5, L=4, dn=2)
c = wph(batch)
print(wph, "->", c)

# %% Per class: how far apart are the two maps' statistics?
for cls in c.classes:
    v = c[cls].values
    diff = np.abs(v[0] - v[1]) / np.maximum(np.abs(v[0]), np.abs(v[1])).clip(1e-12)
    print(f"{cls:7s} {len(c[cls]):5d} coefficients, median relative difference {np.median(diff):.3f}")
# One class, scale and shift (n = 0: no shift): the variances of the band-passed maps, real and
# positive.
s11 = c.select("S11", j1=3, n=0)
print("S11 at j = 3, no shift:", s11.values.real.round(4))
assert s11.values.shape == (2, 4) and np.all(s11.values.real > 0)  # 2 maps, 4 angles
assert np.all(np.abs(s11.values.imag) <= 1e-10 * np.abs(s11.values))

# %% The same statistics as a table (astropy) or a NumPy structured array
table = c.to_numpy()
print(table[:3])

# %% Gradients: move map 2 a few steps towards map 1's statistics with torch.autograd
x = torch.tensor(maps[1], requires_grad=True)
target = torch.from_numpy(c.values[0])
opt = torch.optim.Adam([x], lr=0.02)
losses = []
for step in range(5):
    opt.zero_grad()
    loss = (wph(x).values - target).abs().pow(2).sum()
    loss.backward()
    opt.step()
    losses.append(loss.item())
print("loss", " -> ".join(f"{l:.4g}" for l in losses))
assert losses[-1] < losses[0], "the optimiser should lower the loss"

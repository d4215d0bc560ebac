"""A script written the way pywph 1.1.3's examples are, running on demix through the drop-in
layer: the only demix-specific line is the import. Notebook style ("# %%" cells). It computes the
WPH coefficients of a dust map, selects a class, averages them over angles, and runs a few steps
of a synthesis from noise with pywph's chunked loss loop and ``loss.backward()``.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/pywph_style.py \\
        ../shared/data/dust/I_1.npy [out.npz] [--with-pywph]

``--with-pywph`` imports the real pywph instead (if installed) so that both runs can be compared
(tests/python/test_compat_examples.py does so); ``out.npz`` receives the numbers.
"""

# %% Imports: this line is the only change from a pywph script
import sys

import numpy as np
import torch

if "--with-pywph" in sys.argv:
    import pywph as pw
else:
    import demix.compat.pywph as pw

args = [a for a in sys.argv[1:] if not a.startswith("--")]
path = args[0] if args else "../shared/data/dust/I_1.npy"
output = args[1] if len(args) > 1 else None

# %% Parameters (as in pywph's examples, smaller so that it runs in seconds on a CPU)
M, N = 64, 64
J = 4
L = 4
dn = 1
norm = "auto"
device = "cpu"

data = np.log(np.load(path)[:2 * M:2, :2 * N:2].astype(np.float64))
data = (data - data.mean()) / data.std()

wph_op = pw.WPHOp(M, N, J, L=L, dn=dn, precision="double", device=device)

# %% Method 1: the tensor of coefficients (the first norm="auto" call stores the normalisation)
coeffs = wph_op.apply(data, norm=norm)
print(coeffs.shape, coeffs.dtype)

# %% Method 2: a WPH object, one class, then the isotropic and parity-invariant average
wph = wph_op.apply(data, norm=norm, ret_wph_obj=True)
s11, s11_indices = wph.get_coeffs("S11")
print("S11:", s11.shape, s11_indices.shape)
c01, c01_indices = wph.get_coeffs("C01", j1=0)
wph.to_isopar()
iso, iso_indices = wph.get_coeffs("C01")
print("isotropic C01:", iso.shape)

# %% A few synthesis steps from noise, with pywph's chunked loss loop
rng = np.random.default_rng(0)
x = torch.from_numpy(rng.normal(data.mean(), data.std(), data.shape))
x.requires_grad = True
optimizer = torch.optim.Adam([x], lr=0.05)
losses = []
for step in range(5):
    optimizer.zero_grad()
    x_curr, nb_chunks = wph_op.preconfigure(x)
    loss_tot = 0.0
    for i in range(nb_chunks):
        coeffs_chunk, indices = wph_op.apply(x_curr, i, norm=norm, ret_indices=True)
        loss = torch.sum(torch.abs(coeffs_chunk - coeffs[indices]) ** 2)
        loss.backward(retain_graph=True)
        loss_tot += loss.item()
    optimizer.step()
    losses.append(loss_tot)
    print(f"step {step}: loss {loss_tot:.6g}")

# %% Check and save
assert losses[-1] < losses[0], "the loss should decrease"
# The map normalised by its own statistics: unit variance of every wavelet field (S11 at n = 0).
assert np.allclose(s11[s11_indices[:, 6] == 0], 1, atol=1e-10)
if output:
    np.savez(output, coeffs=coeffs.detach().numpy(), s11=s11, s11_indices=s11_indices,
             c01=c01, c01_indices=c01_indices, iso=iso, iso_indices=iso_indices,
             losses=np.array(losses), x=x.detach().numpy())

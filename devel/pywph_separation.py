#!/usr/bin/env python3
"""The realizations estimator as pywph users write it (Regaldo-Saint Blancard et al. 2021): WPH
J5 L4 dn1 norm auto set by d, per-part spreads of phi(d + c_i), L-BFGS-B from d, on a 64^2 log
dust crop with white noise of SNR 1 (/tmp/q/s64.npy, /tmp/q/d64.npy, made as in
bench/results/2026-12-07-cpu-separation-vs-pywph.txt). Saves its realizations to noise.npy for
`demix separate d64.npy --contamination noise.npy --estimator realizations ...` to run on the same
ones. Needs pywph on sys.path (/tmp/peers) and a stub matplotlib (/tmp/probe/stubs)."""
import sys, json, time
import numpy as np, torch, scipy.optimize as opt
sys.path.insert(0, "/tmp/peers"); sys.path.insert(0, "/tmp/probe/stubs")
import pywph as pw
torch.set_num_threads(1)
n, J, M, iters = 64, 5, 10, 50
s = np.load("/tmp/q/s64.npy"); d = np.load("/tmp/q/d64.npy")
rng = np.random.default_rng(0); noise = rng.standard_normal((M, n, n))
np.save("noise.npy", noise)
op = pw.WPHOp(n, n, J, L=4, dn=1, device="cpu")
target = op.apply(torch.from_numpy(d), norm="auto", pbc=True)  # sets the normalisation from d
with torch.no_grad():
    V = torch.stack([op.apply(torch.from_numpy(d + noise[i]), norm="auto", pbc=True) for i in range(M)])
sr, si = V.real.std(0), V.imag.std(0)
allsd = torch.cat([sr, si]); rms = allsd.square().mean().sqrt()
wr = torch.where(sr > 1e-6 * rms, 1 / sr**2, torch.zeros_like(sr)); wi = torch.where(si > 1e-6 * rms, 1 / si**2, torch.zeros_like(si))
kept = int((wr > 0).sum() + (wi > 0).sum())
def obj(uf):
    u = torch.from_numpy(uf.reshape(n, n)).requires_grad_(True)
    tot = 0
    for i in range(M):
        c = op.apply(u + torch.from_numpy(noise[i]), norm="auto", pbc=True)
        r = c - target
        l = ((r.real**2 * wr + r.imag**2 * wi).sum()) / M / kept
        tot = tot + l
    tot.backward()
    return float(tot), u.grad.numpy().ravel().astype(np.float64)
t = time.time()
r = opt.minimize(obj, d.ravel(), method="L-BFGS-B", jac=True, options={"maxiter": iters, "maxcor": 20})
u = r.x.reshape(n, n)
print(json.dumps({"final": float(r.fun), "nit": int(r.nit), "mse": float(((u - s)**2).mean()), "mse_d": float(((d - s)**2).mean()), "corr": float(np.corrcoef(u.ravel(), s.ravel())[0,1]), "s": time.time() - t}))

#!/usr/bin/env python3
"""pywph's synthesis as ../shared/tools/peer_bench.py runs it (256^2 crop of I_1, standardised,
WPH J7 L4 dn2 norm auto, scipy L-BFGS-B, 100 iterations, white-noise start of seed 0), with the
loss after every iteration, for maxcor 20 (the peer script's) and 10 (demix's default history):
one JSON line each. To compare with `demix synth --scale none` loss histories.
usage: PEERS_DIR=... python3 pywph_history.py path/to/I_1.npy"""
import json, os, sys
import numpy as np, torch, scipy.optimize as opt
sys.path.insert(0, os.environ.get("PEERS_DIR", "/tmp/peers"))
import pywph as pw

n, J = 256, 7
dev = 0 if torch.cuda.is_available() else "cpu"
data = np.load(sys.argv[1]).astype(np.float32)[:n, :n]
data = (data - data.mean()) / data.std()
for maxcor in (20, 10):
    op = pw.WPHOp(n, n, J, L=4, dn=2, device=dev)
    target = op.apply(torch.from_numpy(data), norm="auto", pbc=True)
    x0 = np.random.default_rng(0).normal(data.mean(), data.std(), data.shape)
    history = []
    def obj(xf):
        x, nb = op.preconfigure(torch.from_numpy(xf.reshape(n, n).astype(np.float32)), requires_grad=True)
        tot = 0.0
        for i in range(nb):
            c, idx = op.apply(x, i, norm="auto", ret_indices=True, pbc=True)
            l = torch.sum(torch.abs(c - target[idx]) ** 2); l.backward(retain_graph=True); tot += l.item()
        return tot, x.grad.cpu().numpy().astype(np.float64).ravel()
    history.append(obj(x0.ravel())[0])
    r = opt.minimize(obj, x0.ravel(), method="L-BFGS-B", jac=True,
                     callback=lambda xk: history.append(obj(xk)[0]),
                     options={"maxiter": 100, "gtol": 1e-14, "ftol": 1e-14, "maxcor": maxcor})
    print(json.dumps({"code": "pywph-synthesis-history", "maxcor": maxcor, "iters": int(r.nit),
                      "final_loss": float(r.fun), "history": history}), flush=True)

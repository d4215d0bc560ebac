#!/usr/bin/env python3
"""pywph's synthesis as ../shared/tools/peer_bench.py runs it (256^2 crop of I_1, standardised,
WPH J7 L4 dn2 norm auto, scipy L-BFGS-B, 100 iterations, white-noise start of seed 0), with the
loss after every iteration (maxcor 20, the peer script's), one JSON line per start: white noise of
numpy seeds SEEDS (default "0", the peer script's). Each start is saved to /tmp/x0_pywph_SEED.npy
for `bench_synth cuda I_1.npy start=/tmp/x0_pywph_0.npy,...`, demix's descent from the same points.
usage: PEERS_DIR=... python3 pywph_history.py path/to/I_1.npy"""
import json, os, sys
import numpy as np, torch, scipy.optimize as opt
sys.path.insert(0, os.environ.get("PEERS_DIR", "/tmp/peers"))
import pywph as pw

n, J = 256, 7
dev = 0 if torch.cuda.is_available() else "cpu"
data = np.load(sys.argv[1]).astype(np.float32)[:n, :n]
data = (data - data.mean()) / data.std()
maxcor = 20
for seed in [int(v) for v in os.environ.get("SEEDS", "0").split()]:
    op = pw.WPHOp(n, n, J, L=4, dn=2, device=dev)
    target = op.apply(torch.from_numpy(data), norm="auto", pbc=True)
    x0 = np.random.default_rng(seed).normal(data.mean(), data.std(), data.shape)
    np.save(f"/tmp/x0_pywph_{seed}.npy", x0.astype(np.float32))
    history, last = [], {}
    def obj(xf):
        x, nb = op.preconfigure(torch.from_numpy(xf.reshape(n, n).astype(np.float32)), requires_grad=True)
        tot = 0.0
        for i in range(nb):
            c, idx = op.apply(x, i, norm="auto", ret_indices=True, pbc=True)
            l = torch.sum(torch.abs(c - target[idx]) ** 2); l.backward(retain_graph=True); tot += l.item()
        last.update(x=xf.copy(), f=tot)
        return tot, x.grad.cpu().numpy().astype(np.float64).ravel()
    def value(xk):  # the accepted point was the last evaluated, as a rule
        return last["f"] if np.array_equal(xk, last["x"]) else obj(xk)[0]
    history.append(obj(x0.ravel())[0])
    r = opt.minimize(obj, x0.ravel(), method="L-BFGS-B", jac=True,
                     callback=lambda xk: history.append(value(xk)),
                     options={"maxiter": 100, "gtol": 1e-14, "ftol": 1e-14, "maxcor": maxcor})
    print(json.dumps({"code": "pywph-synthesis-history", "seed": seed, "maxcor": maxcor, "iters": int(r.nit),
                      "final_loss": float(r.fun), "history": history}), flush=True)

"""WPH from Python, timed as bench_stats times it from C++ (bench_wph: norm auto, the map's own
reference, loss = squared distance to its own coefficients; median of 5 after 2 warm-ups), so
that the two print comparable JSON lines: the cost of the Python layer is the difference.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py [cpu|cuda] [I_1.npy] [256,512]

On the CPU it uses every core, as bench_stats does (demix from Python keeps torch's thread count,
which Debian's torch may start at 1).
"""

import json
import os
import statistics
import sys
import time

import numpy as np
import torch

import demix


def median_seconds(fn, reps=5, warm=2):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_wph(device, dust, n, J):
    x = torch.from_numpy(np.load(dust)[:n, :n].astype(np.float32)).to(device)
    x0 = (x - x.mean()) / x.std()
    op = demix.WPH((n, n), J=J, L=4, dn=2, norm="auto")
    ref = op.reference(x0)
    target = op(x0, reference=ref).values
    xb = x0.unsqueeze(0)

    def stats():
        with torch.no_grad():
            op(xb, reference=ref)

    stats_s = median_seconds(stats)
    grad_s = median_seconds(lambda: op.loss_and_grad(xb, target, reference=ref))
    # Through torch.autograd instead (forward, then backward in Python): what a user's own loss
    # costs; it keeps every chunk's graph, unlike loss_and_grad.
    xg = xb.clone().requires_grad_(True)

    def autograd():
        xg.grad = None
        ((op(xg, reference=ref).values - target).abs() ** 2).sum().backward()

    autograd_s = median_seconds(autograd)
    print(json.dumps({"code": "demix-python-wph", "n": n, "J": J, "L": 4, "dn": 2, "batch": 1,
                      "ncoef": len(op), "stats_s": stats_s, "loss_grad_s": grad_s,
                      "autograd_s": autograd_s, "device": str(device),
                      "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    device = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cpu")
    dust = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/dust/I_1.npy"
    sizes = [int(n) for n in sys.argv[3].split(",")] if len(sys.argv) > 3 else [256, 512]
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count())
    for n in sizes:
        bench_wph(device, dust, n, {256: 7, 512: 8}.get(n, 7))

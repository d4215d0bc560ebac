#!/usr/bin/env python3
"""Times the MADNESS decoder's architecture (demix's GalaxyVae, random weights) forward + backward
with respect to the latents, as the deblender runs it, under cuDNN settings and memory layouts, to
choose what the C++ decoder should use, and the cost of a batch size never seen before (cuDNN's
setup of a new shape). Usage: python3 decoder_variants.py [batch ... | new-shapes]"""
import sys
import time

import torch
import torch.nn.functional as F

dev = "cuda"
D, dc, bottom, S, B = 16, [64, 32, 16, 8], 6, 45, 6


def weights(dtype):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: (torch.randn(*s, generator=g) * 0.05).to(dev, dtype)
    w = {"d": r(128, D), "db": r(128), "e": r(dc[0] * bottom * bottom, 128), "eb": r(dc[0] * bottom * bottom)}
    for i in range(3):
        w[f"u{i}"], w[f"u{i}b"] = r(4 * dc[i + 1], dc[i], 3, 3), r(4 * dc[i + 1])
    w["o"], w["ob"] = r(B, dc[-1], 3, 3), r(B)
    return w


def decode(z, w, cl):
    h = F.silu(F.linear(z, w["d"], w["db"]))
    h = F.silu(F.linear(h, w["e"], w["eb"])).view(z.shape[0], dc[0], bottom, bottom)
    if cl:
        h = h.contiguous(memory_format=torch.channels_last)
    for i in range(3):
        h = F.silu(F.pixel_shuffle(F.conv2d(h, w[f"u{i}"], w[f"u{i}b"], padding=1), 2))
    o = (h.shape[2] - S) // 2
    h = h[:, :, o:o + S, o:o + S]
    return torch.exp(F.conv2d(h, w["o"], w["ob"], padding=1).clamp_max(10.0))


def bench(n, dtype, cl, benchmark, tf32):
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.allow_tf32 = tf32
    w = weights(dtype)
    if cl:
        w = {k: (v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v) for k, v in w.items()}
    z = torch.randn(n, D, device=dev, dtype=dtype, requires_grad=True)
    def step():
        y = decode(z, w, cl)
        (g,) = torch.autograd.grad(y.float().square().sum(), z)
        return g
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / 10


def new_shapes(first, count=5):
    """Mean time of a forward + backward at batch sizes never seen before (setup included)."""
    torch.backends.cudnn.benchmark = False
    w = weights(torch.float32)
    t = time.perf_counter()
    for n in range(first, first + count):
        z = torch.randn(n, D, device=dev, requires_grad=True)
        torch.autograd.grad(decode(z, w, False).square().sum(), z)
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / count


if len(sys.argv) > 1 and sys.argv[1] == "new-shapes":
    for first in (37, 301, 1201):
        print(f"batch ~{first}: new shape each call: {new_shapes(first) * 1e3:7.3f} ms; "
              f"same shape: {bench(first, torch.float32, False, False, True) * 1e3:7.3f} ms")
    sys.exit()

for n in [int(a) for a in sys.argv[1:]] or [3500, 500]:
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        for cl in (False, True):
            for benchmark in (False, True):
                tf32 = True
                ms = bench(n, dtype, cl, benchmark, tf32) * 1e3
                print(f"batch {n:5d} {str(dtype):15s} channels_last={cl!s:5s} cudnn.benchmark={benchmark!s:5s}: {ms:7.3f} ms")
    print(f"batch {n:5d} float32 tf32 off: {bench(n, torch.float32, False, False, False) * 1e3:7.3f} ms")

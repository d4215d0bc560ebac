#!/usr/bin/env python3
"""Sums the GPU kernels and copies of a Kineto Chrome trace (profile_wph with DEMIX_KINETO=1) by
name: count and total microseconds, the busy time of the GPU (union of its intervals) and the span
from the first to the last. Usage: kernel_summary.py trace.json [top]"""
import collections
import json
import sys

events = json.load(open(sys.argv[1]))
events = events["traceEvents"] if isinstance(events, dict) else events
top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
gpu = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
total, count = collections.Counter(), collections.Counter()
for e in gpu:
    total[e["name"][:110]] += e.get("dur", 0)
    count[e["name"][:110]] += 1
spans = sorted((e["ts"], e["ts"] + e.get("dur", 0)) for e in gpu)
busy, end = 0.0, None
for a, b in spans:
    if end is None or a > end:
        busy += b - a
        end = b
    elif b > end:
        busy += b - end
        end = b
if spans:
    print(f"{len(gpu)} GPU ops, busy {busy / 1e3:.3f} ms over a span of {(end - spans[0][0]) / 1e3:.3f} ms")
print(f"{'total us':>10} {'calls':>6}  kernel")
for name, t in total.most_common(top):
    print(f"{t:10.1f} {count[name]:6d}  {name}")

#!/usr/bin/env python3
"""Sums the op spans of a LibTorch Chrome trace by name (self time is not separated: nested ops
count in their parents too), printing the top entries. Usage: profile_summary.py trace.json [top]"""
import collections
import json
import sys

events = json.load(open(sys.argv[1]))
events = events["traceEvents"] if isinstance(events, dict) else events
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
total = collections.Counter()
count = collections.Counter()
starts = {}
for e in events:
    name = e.get("name", "?")
    if e.get("ph") == "X":
        total[name] += e.get("dur", 0)
        count[name] += 1
    elif e.get("ph") == "B":
        starts.setdefault((name, e.get("tid")), []).append(e["ts"])
    elif e.get("ph") == "E" and starts.get((name, e.get("tid"))):
        total[name] += e["ts"] - starts[(name, e.get("tid"))].pop()
        count[name] += 1
for name, us in total.most_common(top):
    print(f"{us / 1000:9.3f} ms {count[name]:6d}x  {name}")

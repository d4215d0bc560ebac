#!/usr/bin/env python3
"""Sums the op spans of a LibTorch Chrome trace by name and prints the top entries, by self time
(a span minus the spans nested in it on the same thread) and the total (nested ops included).
Usage: profile_summary.py trace.json [top] [op ...]: the ops named after top are also broken
down by the three ops that enclose them (which call makes the copies, say)."""
import collections
import json
import sys

events = json.load(open(sys.argv[1]))
events = events["traceEvents"] if isinstance(events, dict) else events
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
watched = set(sys.argv[3:])
by_parent = collections.Counter()
spans = []  # (tid, start, end, name)
starts = {}
for e in events:
    name = e.get("name", "?")
    if e.get("ph") == "X":
        spans.append((e.get("tid"), e["ts"], e["ts"] + e.get("dur", 0), name))
    elif e.get("ph") == "B":
        starts.setdefault((name, e.get("tid")), []).append(e["ts"])
    elif e.get("ph") == "E" and starts.get((name, e.get("tid"))):
        spans.append((e.get("tid"), starts[(name, e.get("tid"))].pop(), e["ts"], name))
spans.sort(key=lambda s: (s[0], s[1], -s[2]))
total, self_time, count = collections.Counter(), collections.Counter(), collections.Counter()
stack = []  # open spans of the current thread: [end, name, child time]
tid = None


def close(upto):
    while stack and stack[-1][0] <= upto:
        end, name, start, child = stack.pop()
        self_time[name] += (end - start) - child
        if stack:
            stack[-1][3] += end - start


for t, start, end, name in spans:
    if t != tid:
        close(float("inf"))
        tid = t
    close(start)
    total[name] += end - start
    count[name] += 1
    if name in watched:
        by_parent[(name, " < ".join(s[1] for s in reversed(stack[-3:])))] += end - start
    stack.append([end, name, start, 0])
close(float("inf"))
print(f"{'self ms':>9} {'total ms':>9} {'calls':>6}  op")
for name, us in self_time.most_common(top):
    print(f"{us / 1000:9.3f} {total[name] / 1000:9.3f} {count[name]:6d}  {name}")
for (name, parents), us in by_parent.most_common(top):
    print(f"{us / 1000:9.3f} ms  {name} < {parents}")

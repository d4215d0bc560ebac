#!/usr/bin/env python3
"""libdemix.so exports its public API and none of its private code (symbol visibility).

Usage: check_exports.py path/to/libdemix.so

The library is compiled with hidden visibility and its public headers push default visibility
around their declarations; a private helper (src/<domain>/detail, anonymous namespaces) that
leaks into the dynamic symbol table, or a public function that goes missing from it, fails here.
Symbols of LibTorch and the standard library instantiated in demix (vague linkage) are allowed.
"""
import re
import subprocess
import sys

lib = sys.argv[1]
out = subprocess.run(["nm", "-D", "--defined-only", "--demangle", lib],
                     capture_output=True, text=True, check=True).stdout
names = [line.split(" ", 2)[2] for line in out.splitlines() if line.count(" ") >= 2]

private = re.compile(r"\bdemix::(\w+::)*(detail|cli)::|\bdemix::(\w+::)*\(anonymous namespace\)")
leaked = sorted({n for n in names if private.search(n)})
if leaked:
    sys.exit(f"{lib} exports {len(leaked)} private symbols, for instance:\n  " +
             "\n  ".join(leaked[:10]))

# One entry point per domain, and the exception type the CLI catches across the library boundary.
required = ["demix::Context::Context(", "demix::read_image(", "demix::write_preview(",
            "demix::WphOperator::WphOperator(", "demix::make_statistic(",
            "demix::minimize_lbfgs(", "demix::BlendSimulator::BlendSimulator(", "demix::DeblendPipeline::",
            "typeinfo for demix::Error"]
missing = [r for r in required if not any(n.startswith(r) for n in names)]
if missing:
    sys.exit(f"{lib} does not export: " + ", ".join(missing))
ours = sum(1 for n in names if "demix::" in n)
print(f"{lib}: {ours} demix symbols exported, none private")

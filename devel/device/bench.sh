#!/usr/bin/env bash
# On the GPU machine, after build-and-test.sh: demix's benchmark and the peer codes' benchmark in one
# command, so the ratios are measured side by side. Peers come as wheels / sources in .device/peers
# (pywph, kymatio from PyPI; Cheng et al.'s `scattering` package) and are never committed.
# Usage: [PEERS="pywph cheng"] [BENCH_DIR=build-cuda/bench] bash devel/device/bench.sh [OUTDIR]
# (with prebuilt binaries: . devel/device/use-prebuilt.sh; BENCH_DIR=$BUILD/bench bash ...)
set -uo pipefail
out=${1:-/tmp/demix-device}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
"${BENCH_DIR:-build-cuda/bench}"/bench_stats cuda .device/shared/data/dust/I_1.npy | tee "$out/bench_demix.jsonl"
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
cp -r .device/peers/scattering /tmp/peers/
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 \
  timeout 400 python3 .device/shared/tools/peer_bench.py ${PEERS:-} 2>&1 | grep "^{" | tee "$out/bench_peers.jsonl"
# The CPU figures last (the peers run on the GPU): their own file.
"${BENCH_DIR:-build-cuda/bench}"/bench_stats cpu .device/shared/data/dust/I_1.npy quick | tee "$out/bench_demix_cpu.jsonl"

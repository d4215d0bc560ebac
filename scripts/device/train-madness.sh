#!/usr/bin/env bash
# On the GPU machine: simulate the training set, train the MADNESS prior (VAE, then flow) and
# deblend a test set with it. The model, its training histories and the benchmark land in $OUT.
# Usage: bash scripts/device/train-madness.sh   (after nothing: it builds what it needs)
set -uo pipefail
out=${OUT:-/tmp/demix-out}
mkdir -p "$out" /tmp/m
TARGETS="demix_cli" bash scripts/device/build-bench.sh /tmp/o > /tmp/o_build.log 2>&1 || { tail -30 /tmp/o_build.log; exit 1; }
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
(cmake --build build-cuda -j "$(nproc)" --target bench_deblend > /tmp/o_bench_build.log 2>&1 || grep -m5 -A3 "error" /tmp/o_bench_build.log) &
D=build-cuda/demix
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
t0=$(date +%s)
$D --device cuda simulate isolated -n ${NTRAIN:-50000} --seed 1 -o /tmp/m/train.fits 2>&1 | tail -2
echo "simulated in $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
timeout ${VAE_SECONDS:-240} $D --device cuda train-vae /tmp/m/train.fits -o /tmp/m/madness-lsst.dmx \
  --epochs ${VAE_EPOCHS:-60} --seed 1 2>&1 | tail -8
echo "train-vae: $(( $(date +%s) - t0 )) s"
model=/tmp/m/madness-lsst.dmx
[ -f "$model" ] || { echo "VAE stopped early: using its last checkpoint"; model=/tmp/m/madness-lsst_vae.ckpt; }
t0=$(date +%s)
timeout ${FLOW_SECONDS:-100} $D --device cuda train-flow /tmp/m/train.fits --model "$model" \
  -o /tmp/m/madness-lsst.dmx --epochs ${FLOW_EPOCHS:-100} --seed 1 2>&1 | tail -5
echo "train-flow: $(( $(date +%s) - t0 )) s"
$D info /tmp/m/madness-lsst.dmx
cp /tmp/m/madness-lsst.dmx /tmp/m/*history.csv /tmp/m/*loss.png "$out"/ 2>/dev/null
$D --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o /tmp/m/test.fits 2>&1 | tail -1
wait
build-cuda/bench/bench_deblend /tmp/m/test.fits /tmp/m/madness-lsst.dmx cuda | tee "$out/bench_deblend_cuda.jsonl"

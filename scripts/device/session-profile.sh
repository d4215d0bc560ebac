#!/usr/bin/env bash
# On the GPU machine: where the time goes. Builds the CLI and the benchmarks, then profiles one WPH
# loss + gradient (256^2 batch 1 and 100, 512^2 batch 1) and one batched MADNESS deblend of 1000
# blends, printing self time per op (scripts/device/profile_summary.py). Traces land in $OUT.
# Usage: bash scripts/device/session-profile.sh
set -u
out=${OUT:-/tmp/demix-out}
mkdir -p "$out"
TARGETS="demix_cli profile_wph bench_stats bench_deblend bench_prior" bash scripts/device/build-bench.sh /tmp/o > /tmp/o_prof.log 2>&1 || { tail -30 /tmp/o_prof.log; exit 1; }
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
map=.device/shared/data/dust/I_1.npy
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for spec in "256 7 1" "256 7 100" "512 8 1"; do
  set -- $spec
  build-cuda/bench/profile_wph cuda $map $1 $2 $3 /tmp/x.json | tee -a "$out/profile_wph.txt"
  CUDA_LAUNCH_BLOCKING=1 build-cuda/bench/profile_wph cuda $map $1 $2 $3 /tmp/t_$1_$3.json > /dev/null
  echo "== loss+grad $spec"; python3 scripts/device/profile_summary.py /tmp/t_$1_$3.json 25
  echo "== forward $spec"; python3 scripts/device/profile_summary.py /tmp/t_$1_$3.json.forward.json 12
done
D=build-cuda/demix
$D --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o /tmp/test.fits 2>&1 | tail -1
build-cuda/bench/bench_deblend /tmp/test.fits models/madness-lsst.dmx cuda | tee "$out/bench_deblend_cuda.jsonl" | cut -c1-200
DEMIX_PROFILE=/tmp/deblend.json CUDA_LAUNCH_BLOCKING=1 build-cuda/bench/bench_deblend /tmp/test.fits models/madness-lsst.dmx cuda > /dev/null
echo "== MADNESS deblend, 1000 blends"; python3 scripts/device/profile_summary.py /tmp/deblend.json 30
build-cuda/bench/bench_prior cuda models/madness-lsst.dmx 1000 3500 | cut -c1-200
gzip -c /tmp/deblend.json > "$out/deblend_trace.json.gz"; gzip -c /tmp/t_256_100.json > "$out/wph_256_100_trace.json.gz"

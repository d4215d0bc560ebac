#!/usr/bin/env bash
# On the GPU machine: one build of the benchmarks, then the deblender's first-call and repeated-call
# speed (with the capped-steps curve), the WPH benchmark and a batch-100 WPH profile, and the
# installed LibTorch's CUDA graph interface. Usage: bash scripts/device/session-probe.sh
set -u
TARGETS="demix_cli bench_deblend profile_wph bench_stats" bash scripts/device/build-bench.sh /tmp/o > /tmp/o_b.log 2>&1 || { tail -30 /tmp/o_b.log; exit 1; }
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
th=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
grep -n "capture_begin\|capture_end\|void replay\|CUDAGraph(\|keep_graph\|instantiate\|MempoolId_t" "$th/include/ATen/cuda/CUDAGraph.h" | head -20
grep -rn "cudaStreamCaptureMode\b" "$th/include/ATen/cuda/CUDAGraph.h" | head -3
D=build-cuda/demix
$D --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o /tmp/test.fits 2>&1 | tail -1
DEMIX_STEPS_CURVE=1 build-cuda/bench/bench_deblend /tmp/test.fits models/madness-lsst.dmx cuda | cut -c1-200
map=.device/shared/data/dust/I_1.npy
build-cuda/bench/bench_stats cuda $map wph
build-cuda/bench/profile_wph cuda $map 256 7 100 /tmp/x.json
CUDA_LAUNCH_BLOCKING=1 build-cuda/bench/profile_wph cuda $map 256 7 100 /tmp/t100.json > /dev/null && python3 scripts/device/profile_summary.py /tmp/t100.json 30

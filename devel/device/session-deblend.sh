#!/usr/bin/env bash
# On the GPU machine: the deblender's tests on CUDA, its benchmark on 1000 simulated blends with a
# profile (self time per op), the prior's cost per MAP step, and the decoder's architecture under
# cuDNN settings and memory layouts (devel/device/decoder_variants.py).
# Usage: bash devel/device/session-deblend.sh
set -u
out=${OUT:-/tmp/demix-out}
mkdir -p "$out"
TESTS=ON TARGETS="demix_cli demix_unit_tests bench_deblend bench_prior" bash devel/device/build-bench.sh /tmp/o > /tmp/o_b.log 2>&1 || { tail -30 /tmp/o_b.log; exit 1; }
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
build-cuda/tests/demix_unit_tests --gtest_filter='Flow*:Madness*:Stamp*:PairProduct*:PhaseHarmonic*:Vae*' 2>&1 | grep -E "^\[  (PASSED|FAILED) |Failure|error" | head -30
D=build-cuda/demix
$D --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o /tmp/test.fits 2>&1 | tail -1
build-cuda/bench/bench_deblend /tmp/test.fits models/madness-lsst.dmx cuda | tee "$out/bench_deblend_cuda.jsonl" | cut -c1-330
DEMIX_PROFILE=/tmp/deblend.json CUDA_LAUNCH_BLOCKING=1 build-cuda/bench/bench_deblend /tmp/test.fits models/madness-lsst.dmx cuda > /dev/null
echo "== MADNESS deblend, 1000 blends"; python3 devel/device/profile_summary.py /tmp/deblend.json 25
build-cuda/bench/bench_prior cuda models/madness-lsst.dmx 500 3500 | cut -c1-250
python3 devel/device/decoder_variants.py 3500 500

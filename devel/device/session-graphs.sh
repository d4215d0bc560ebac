#!/usr/bin/env bash
# On the GPU machine: CUDA graphs (src/optim/step_graph.*) in WPH's loss + gradient and in the
# deblender's Adam steps: their tests on CUDA (with the deblending metrics'), then the WPH benchmark
# beside pywph, and the deblender's benchmark with and without graphs and with capped steps.
# Usage: bash devel/device/session-graphs.sh
set -u
TESTS=ON TARGETS="demix_cli demix_unit_tests bench_deblend bench_stats" bash devel/device/build-bench.sh /tmp/o > /tmp/o_b.log 2>&1 || { tail -30 /tmp/o_b.log; exit 1; }
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
build-cuda/tests/demix_unit_tests --gtest_filter='StepGraph*:Madness*:Wph*:*wph*:Flow*:DeblendMetrics*' > /tmp/t.log 2>&1
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran" /tmp/t.log | head -20
grep -B3 -A12 "Failure" /tmp/t.log | head -60
map=.device/shared/data/dust/I_1.npy
build-cuda/bench/bench_stats cuda $map wph
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
cp -r .device/peers/scattering /tmp/peers/
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 200 python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{"
build-cuda/bench/bench_stats cuda $map wph
D=build-cuda/demix
$D --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o /tmp/test.fits 2>&1 | tail -1
DEMIX_NO_GRAPH=1 DEMIX_STEPS_CURVE=1 build-cuda/bench/bench_deblend /tmp/test.fits models/madness-lsst.dmx cuda

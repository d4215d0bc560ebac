#!/usr/bin/env bash
# On the GPU machine: builds the library, CLI, unit tests and bench_separate (build-device/new, as
# session-before-after.sh does), runs the CUDA tests of separation, matching loss and L-BFGS, then
# the separation issue's benchmarks: speed (256^2, M = 100, 5 eras of 50 iterations, both
# estimators) beside pywph's looped denoising evaluation (peer_bench.py pywph), and the quality
# table (SNR 2 to 0.25, 3 noise seeds, M = 20) from d and from the matched filter, with WPH and
# with WPH + PS. Results under $OUT/separation/. PART=speed: build, tests and speed only;
# PART=quality (on the warm machine after PART=speed): the quality table only.
set -u
O=${OUT:-/tmp/out}/separation; mkdir -p $O
STEPS="build" QUICK=1 JOBS=16 TARGETS="demix_cli bench_separate demix_unit_tests" bash devel/device/session-before-after.sh > /tmp/build.txt 2>&1 || true
grep -E "build|exit" /tmp/build.txt | tail -5
D=$PWD/build-device; deps=$D/deps; N=$D/new
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"
if [ "${PART:-all}" != quality ]; then
$N/tests/demix_unit_tests --gtest_filter='Separation*:WienerFilter*:SquaredDistance*:MatchingLoss*:Lbfgs*:Synthesis.Recorded*' \
  > /tmp/tests.log 2>&1; grep -E "^\[  (PASSED|FAILED|SKIPPED) |OnCuda|CudaEquals" /tmp/tests.log | tee $O/tests.txt
grep -B3 -A12 ": Failure$" /tmp/tests.log | head -40 | tee -a $O/tests.txt
M=.device/shared/data/dust/I_1.npy
timeout 150 $N/bench/bench_separate cuda $M 256:100:5:50 snr=1 seeds=1 methods=bias,realizations speed=1 | tee $O/speed.jsonl
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 150 \
  python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{" | tee -a $O/speed.jsonl
fi
[ "${PART:-all}" = speed ] && exit 0
timeout 240 $N/bench/bench_separate cuda $M 256:20:5:50 start=observation,matched | tee $O/quality.jsonl | cut -c1-150
timeout 90 $N/bench/bench_separate cuda $M 256:20:5:50 snr=1,0.5 seeds=1 methods=bias,realizations start=observation,matched stats=wph+ps |
  tee -a $O/quality.jsonl | cut -c1-150
timeout 60 $N/bench/bench_separate cuda $M 256:20:5:50 snr=1 seeds=1 methods=bias start=matched terms=contamination,independence |
  tee -a $O/quality.jsonl | cut -c1-150
true

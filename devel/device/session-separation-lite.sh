#!/usr/bin/env bash
# On the GPU machine, one call of at most 10 minutes (a short device budget): builds what
# session-separation.sh builds, runs the CUDA tests, the separation speed benchmark, a short
# quality table (SNR 1 and 0.5, one noise seed, from d and from the matched filter), and pywph's
# looped denoising evaluation (peer_bench.py pywph) if time is left. Results under
# $OUT/separation/.
set -u
T0=$(date +%s); left() { echo $(( ${LIMIT_S:-570} - ($(date +%s) - T0) )); }
O=${OUT:-/tmp/out}/separation; mkdir -p $O
STEPS="build" QUICK=1 JOBS=16 TARGETS="demix_cli bench_separate demix_unit_tests" \
  bash devel/device/session-before-after.sh > /tmp/build.txt 2>&1 || true
grep -E "build|exit" /tmp/build.txt | tail -3; echo "built at $(( $(date +%s) - T0 )) s"
D=$PWD/build-device; deps=$D/deps; N=$D/new
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"
timeout 90 $N/tests/demix_unit_tests --gtest_filter='*Cuda*:Separation*:WienerFilter*' > /tmp/tests.log 2>&1
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \] [A-Z]" /tmp/tests.log | tee $O/tests.txt
grep -B3 -A12 ": Failure$" /tmp/tests.log | head -30 | tee -a $O/tests.txt
M=.device/shared/data/dust/I_1.npy
timeout $(( $(left) > 120 ? 120 : $(left) )) $N/bench/bench_separate cuda $M 256:100:5:50 snr=1 seeds=1 \
  methods=bias,realizations speed=1 | tee $O/speed.jsonl
[ $(left) -gt 60 ] && timeout $(( $(left) - 100 > 60 ? $(left) - 100 : 60 )) $N/bench/bench_separate cuda $M \
  256:20:5:50 snr=1,0.5 seeds=1 start=observation,matched | tee $O/quality.jsonl | cut -c1-150
if [ $(left) -gt 40 ]; then
  rm -rf /tmp/peers && mkdir -p /tmp/peers
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
  PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout $(left) \
    python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{" | tee -a $O/speed.jsonl
fi
echo "done at $(( $(date +%s) - T0 )) s"

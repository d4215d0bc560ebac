#!/usr/bin/env bash
# On the GPU machine, first of two calls (at most LIMIT_S seconds): builds everything there
# (library, CLI, tests, benchmarks, the Python package when the interpreter has headers), then the
# CUDA unit tests (separation, synthesis, matching loss, L-BFGS, region variance, every *Cuda*
# test), the Python tests on CUDA (pytest carried in .device/pytest) and WPH from Python beside
# bench_stats, the separation speed (256^2, M = 100, 5 x 50, both estimators) and the synthesis
# speed (bench_synth gpu). Results under $OUT/a/. session-gpu-b.sh follows on the warm machine.
set -u
T0=$(date +%s); left() { echo $(( ${LIMIT_S:-580} - ($(date +%s) - T0) )); }
O=${OUT:-/tmp/out}/a; mkdir -p $O
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $O/gpu.txt
STEPS="build" QUICK=1 JOBS=16 bash devel/device/session-before-after.sh > /tmp/build.txt 2>&1 || true
grep -E "build|exit|Python package" /tmp/build.txt | tail -4 | tee -a $O/gpu.txt
grep -h "Python package" build-device/new/CMakeCache.txt /tmp/build.txt 2>/dev/null | head -2
echo "built at $(( $(date +%s) - T0 )) s" | tee -a $O/gpu.txt
D=$PWD/build-device; deps=$D/deps; N=$D/new
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"
for i in 0 1; do
  GTEST_TOTAL_SHARDS=2 GTEST_SHARD_INDEX=$i timeout 150 $N/tests/demix_unit_tests \
    --gtest_filter='*Cuda*:Separation*:Synthesis*:MatchingLoss*:Lbfgs*:RegionVariance*:WienerFilter*:StepGraph*' \
    > /tmp/tests$i.log 2>&1 &
done; wait
cat /tmp/tests0.log /tmp/tests1.log > /tmp/tests.log
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \] [A-Z]" /tmp/tests.log | tee $O/tests.txt
grep -B3 -A12 ": Failure$" /tmp/tests.log | head -40 | tee -a $O/tests.txt
echo "tests done at $(( $(date +%s) - T0 )) s"
M=.device/shared/data/dust/I_1.npy
if [ -d $N/python/demix ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/pt .device/pytest/*.whl .device/whl/*.whl
  PYTHONPATH=$N/python:/tmp/pt DEMIX_SHARED_DIR=$PWD/.device/shared timeout 120 python3 -m pytest -q -p no:cacheprovider \
    tests/python 2>&1 | tail -15 | tee $O/python.txt
  PYTHONPATH=$N/python timeout 60 python3 bench/bench_python.py cuda $M 256,512 | tee $O/python-bench.jsonl
  timeout 60 $N/bench/bench_stats cuda $M wph | tee -a $O/python-bench.jsonl | cut -c1-200
else
  echo "no Python package in this build" | tee $O/python.txt
fi
[ $(left) -gt 60 ] && timeout $(( $(left) - 45 )) $N/bench/bench_separate cuda $M 256:100:5:50 snr=1 seeds=1 \
  methods=bias,realizations speed=1 | tee $O/separation-speed.jsonl
[ $(left) -gt 40 ] && timeout $(( $(left) - 5 )) $N/bench/bench_synth cuda $M gpu | tee $O/synthesis.jsonl
echo "done at $(( $(date +%s) - T0 )) s"

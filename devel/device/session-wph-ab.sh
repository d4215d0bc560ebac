#!/usr/bin/env bash
# On the GPU machine, with the carried prebuilt binaries (stage-prebuilt.sh): a WPH change measured
# against the build before it, in one command. .device/old holds that build's bench_stats and
# libdemix (copied from .device/prebuilt before restaging). Runs the WPH and kernel tests on CUDA,
# then bench_stats wph old, new, pywph, new, old; a Kineto profile of the new 512^2 loss + gradient
# (GPU kernel times) and, with LARGE=1, the new build's map sizes up to 4096^2. FULL=1 runs the
# whole unit-test binary (4 shards at once) and the CLI tests instead of the WPH tests only.
# Results under $OUT.
set -u
. devel/device/use-prebuilt.sh
B=$BUILD; O=${OUT:-/tmp/out}; mkdir -p $O
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if [ -n "${FULL:-}" ]; then
  for i in 0 1 2 3; do GTEST_TOTAL_SHARDS=4 GTEST_SHARD_INDEX=$i $B/tests/demix_unit_tests > $O/tests$i.log 2>&1 & done; wait
  cat $O/tests?.log > $O/tests.log && rm $O/tests?.log
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .device/whl/*.whl
  for t in cli/test_cli.py cli/test_deblend_cli.py cli/test_simulate_cli.py interop/test_astropy.py; do
    PYTHONPATH=/tmp/site timeout 300 python3 tests/$t $B/demix > /tmp/cli.log 2>&1 && echo "$t: passed" ||
      { echo "$t: FAILED"; tail -20 /tmp/cli.log; }; done | tee $O/cli.txt
else
  $B/tests/demix_unit_tests --gtest_filter='BoxGather*:PairProduct*:PhaseHarmonic*:Wph*:Statistics/*:StepGraph.Wph*' > $O/tests.log 2>&1
fi
grep -E "^\[  (PASSED|FAILED|SKIPPED) " $O/tests.log; grep -E "^\[  FAILED  \] [A-Z]" $O/tests.log; grep -B3 -A12 ": Failure$" $O/tests.log | head -40
map=.device/shared/data/dust/I_1.npy
old() { LD_LIBRARY_PATH=$PWD/.device/old:$LD_LIBRARY_PATH .device/old/bench_stats "$@" | sed 's/^{/{"build":"old",/'; }
new() { $B/bench/bench_stats "$@" | sed 's/^{/{"build":"new",/'; }
old cuda $map wph | tee $O/wph.jsonl
new cuda $map wph | tee -a $O/wph.jsonl
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
cp -r .device/peers/scattering /tmp/peers/
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 200 python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{" | tee -a $O/wph.jsonl
new cuda $map wph | tee -a $O/wph.jsonl
old cuda $map wph | tee -a $O/wph.jsonl
DEMIX_KINETO=1 $B/devel/profile_wph cuda $map 512 8 1 /tmp/k512.json && python3 devel/device/kernel_summary.py /tmp/k512.json 40 | tee $O/kernels512.txt
[ -n "${LARGE:-}" ] && new cuda $map large 2>&1 | grep -v "^frame" | tee -a $O/wph.jsonl
true

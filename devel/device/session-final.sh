#!/usr/bin/env bash
# On the GPU machine, with the carried prebuilt binaries (stage-prebuilt.sh; no compilation there):
# the whole unit-test suite on CUDA (4 shards at once) and the CLI tests, WPH's benchmark twice
# around pywph's, and MADNESS on 1000 blends: cold (the process's first call at this size, then
# a repeat) and after another batch of 1000 blends (a pipeline's steady state). Results under $OUT.
# (build-and-test.sh builds on the GPU machine instead and also runs the demo there.)
set -u
. devel/device/use-prebuilt.sh
B=$BUILD; O=${OUT:-/tmp/out}; mkdir -p $O
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for i in 0 1 2 3; do GTEST_TOTAL_SHARDS=4 GTEST_SHARD_INDEX=$i $B/tests/demix_unit_tests > $O/tests$i.log 2>&1 & done; wait
cat $O/tests?.log | grep -E "^\[  (PASSED|FAILED|SKIPPED) " ; cat $O/tests?.log | grep -E "^\[  FAILED  \] [A-Z]" ; grep -h "float16 upsampling" $O/tests?.log
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .device/whl/*.whl && export PYTHONPATH=/tmp/site
for t in cli/test_cli.py cli/test_deblend_cli.py cli/test_simulate_cli.py interop/test_astropy.py; do
  timeout 300 python3 tests/$t $B/demix > $O/$(basename $t .py).log 2>&1; echo "$t: exit $?"; done
map=.device/shared/data/dust/I_1.npy
$B/bench/bench_stats cuda $map wph | tee $O/wph.jsonl
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
cp -r .device/peers/scattering /tmp/peers/
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 200 python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{" | tee -a $O/wph.jsonl
$B/bench/bench_stats cuda $map wph | tee -a $O/wph.jsonl
for s in 2 3; do $B/demix --device cuda simulate blends -n 1000 --seed $s --min-galaxies 2 --max-galaxies 5 -o /tmp/test$s.fits 2>&1 | tail -1; done
$B/bench/bench_deblend /tmp/test2.fits models/madness-lsst.dmx cuda | tee $O/deblend.jsonl | cut -c1-150
DEMIX_WARM_DATASET=/tmp/test3.fits $B/bench/bench_deblend /tmp/test2.fits models/madness-lsst.dmx cuda | grep madness | tee -a $O/deblend.jsonl | cut -c1-150

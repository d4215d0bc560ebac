#!/usr/bin/env bash
# On the GPU machine, with the carried prebuilt binaries (stage-prebuilt.sh): where the time goes.
#  1. CUDA tests of CUDA graphs, the deblender and the VAE;
#  2. MADNESS on 1000 blends per decoder compute ($VARIANTS) and shrink fraction ($SHRINK), first
#     call and repeat, with segment timings (bench_deblend's DEMIX_VARIANTS);
#  3. WPH: time of the 256^2 batch-100 statistics and their op profile, bench_stats wph and large;
#  4. with PROFILE=1, an eager MADNESS run under the op profiler.
# Usage: [VARIANTS=float,half-cl] [SHRINK=0,0.3] [PROFILE=1] bash devel/device/session-measure.sh
set -u
. devel/device/use-prebuilt.sh
B=$BUILD; O=${OUT:-/tmp/out}; mkdir -p $O
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$B/tests/demix_unit_tests --gtest_filter='StepGraph*:Madness*:*Graph*:GalaxyVae*' > $O/tests.log 2>&1
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran" $O/tests.log | head; grep -B3 -A12 "Failure" $O/tests.log | head -40
$B/demix --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o /tmp/test.fits 2>&1 | tail -1
DEMIX_VARIANTS=${VARIANTS:-float,half-cl} DEMIX_SHRINK=${SHRINK:-0,0.3} $B/bench/bench_deblend /tmp/test.fits models/madness-lsst.dmx cuda | tee $O/deblend.jsonl | grep -v segments | cut -c1-400
map=.device/shared/data/dust/I_1.npy
$B/devel/profile_wph cuda $map 256 7 100 /tmp/nb.json
CUDA_LAUNCH_BLOCKING=1 $B/devel/profile_wph cuda $map 256 7 100 /tmp/wph100.json
python3 devel/device/profile_summary.py /tmp/wph100.json.forward.json 25
$B/bench/bench_stats cuda $map wph | tee $O/wph.jsonl
$B/bench/bench_stats cuda $map large | tee -a $O/wph.jsonl
if [ -n "${PROFILE:-}" ]; then
  CUDA_LAUNCH_BLOCKING=1 DEMIX_PROFILE=/tmp/deb.json $B/bench/bench_deblend /tmp/test.fits models/madness-lsst.dmx cuda > /dev/null
  python3 devel/device/profile_summary.py /tmp/deb.json 40
fi

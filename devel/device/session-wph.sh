#!/usr/bin/env bash
# On the GPU machine: build the benchmarks only, then WPH speed/memory side by side with pywph, map
# sizes up to 4096^2 (LARGE=1), and a profile of one loss + gradient; first the WPH unit, regression and
# property tests on CUDA. Usage: [LARGE=1] bash devel/device/session-wph.sh  (LARGE: up to 4096^2)
set -u
TESTS=ON TARGETS="demix_unit_tests profile_wph bench_stats" bash devel/device/build-bench.sh /tmp/o > /tmp/o_prof.log 2>&1 || { tail -30 /tmp/o_prof.log; exit 1; }
grep -m1 "CUDA:" /tmp/o/configure.log
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
build-cuda/tests/demix_unit_tests --gtest_filter='PhaseHarmonic*:Wph*:*wph*' 2>&1 | grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran|Failure|error" | head -30
map=.device/shared/data/dust/I_1.npy
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
build-cuda/bench/bench_stats cuda $map wph
[ -n "${LARGE:-}" ] && build-cuda/bench/bench_stats cuda $map large 2>&1 | grep -v "^frame" | head -20
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
cp -r .device/peers/scattering /tmp/peers/
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 200 python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{"
for b in 1 100; do
  build-cuda/devel/profile_wph cuda $map 256 7 $b /tmp/x.json
  CUDA_LAUNCH_BLOCKING=1 build-cuda/devel/profile_wph cuda $map 256 7 $b /tmp/t$b.json > /dev/null && python3 devel/device/profile_summary.py /tmp/t$b.json 22 aten::copy_ aten::index_select aten::index_add_ aten::fill_
done

#!/usr/bin/env bash
# On the GPU machine: the whole test suite and the demo on CUDA (build-and-test.sh), then the WPH
# benchmark beside pywph and the large-map figures. Usage: bash scripts/device/session-final.sh
set -u
bash scripts/device/build-and-test.sh /tmp/o > /tmp/o_bt.log 2>&1; echo "build-and-test rc=$?"
grep -E "tests passed|tests failed|\(Failed\)|Not Run|Timeout" /tmp/o_bt.log | head -20
grep -A12 "== deblending" /tmp/o_bt.log | head -20
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
map=.device/shared/data/dust/I_1.npy
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
build-cuda/bench/bench_stats cuda $map wph
build-cuda/bench/bench_stats cuda $map large 2>&1 | grep "^{"
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
cp -r .device/peers/scattering /tmp/peers/
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 150 python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{"

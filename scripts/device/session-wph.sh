set -u
bash scripts/device/build-and-test.sh /tmp/o > /tmp/o_bt.log 2>&1; echo "build-and-test rc=$?"; grep -E "tests passed|tests failed|FAILED|Failed|\(Failed\)" /tmp/o_bt.log | head -20
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
cmake --build build-cuda --target profile_wph -j 16 > /dev/null 2>&1
map=.device/shared/data/dust/I_1.npy
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
build-cuda/bench/bench_stats cuda $map wph
build-cuda/bench/bench_stats cuda $map large 2>&1 | tail -5
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
cp -r .device/peers/scattering /tmp/peers/
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 200 python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{"
CUDA_LAUNCH_BLOCKING=1 build-cuda/bench/profile_wph cuda $map 256 7 1 /tmp/t1.json && python3 scripts/device/profile_summary.py /tmp/t1.json 25
build-cuda/bench/profile_wph cuda $map 256 7 100 /tmp/t2.json

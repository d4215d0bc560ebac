set -uo pipefail
out=${OUT:-/tmp/demix-out}; mkdir -p /tmp/m
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
[ -x build-cuda/demix ] || TARGETS="demix_cli" bash devel/device/build-bench.sh /tmp/o > /tmp/o_build.log 2>&1
(cmake --build build-cuda -j 16 --target bench_deblend > /tmp/o_bench_build.log 2>&1 || grep -m5 -A3 "error" /tmp/o_bench_build.log) &
D=build-cuda/demix
[ -f /tmp/m/train.fits ] || $D --device cuda simulate isolated -n 50000 --seed 1 -o /tmp/m/train.fits 2>&1 | tail -1
[ -f /tmp/m/test.fits ] || $D --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o /tmp/m/test.fits 2>&1 | tail -1
t0=$(date +%s)
timeout 150 $D --device cuda train-flow /tmp/m/train.fits --model models/madness-lsst-vae-only.dmx -o /tmp/m/madness-lsst.dmx --epochs 60 --seed 1 2>&1 | tail -4
echo "train-flow: $(( $(date +%s) - t0 )) s"
cp /tmp/m/madness-lsst.dmx /tmp/m/*flow_history.csv /tmp/m/*flow_loss.png "$out"/ 2>/dev/null
wait
build-cuda/bench/bench_deblend /tmp/m/test.fits /tmp/m/madness-lsst.dmx cuda | tee "$out/bench_deblend_cuda.jsonl"

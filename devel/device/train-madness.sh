#!/usr/bin/env bash
# On the GPU machine: simulate the training set and train the MADNESS prior, in two calls that fit
# the device's 10-minute limit (the machine stays warm between them, and build-cuda/m keeps the
# files):   PHASE=vae bash devel/device/train-madness.sh    # simulate, train the VAE
#           PHASE=flow bash devel/device/train-madness.sh   # train the flow, benchmark the model
# The model, its histories and loss curves, and the benchmark land in $OUT.
set -uo pipefail
out=${OUT:-/tmp/demix-out}
m=build-cuda/m
mkdir -p "$out"
[ -x build-cuda/demix ] || TARGETS="demix_cli" bash devel/device/build-bench.sh /tmp/o > /tmp/o_build.log 2>&1 || { tail -30 /tmp/o_build.log; exit 1; }
mkdir -p $m
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
D=build-cuda/demix
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
t0=$(date +%s)
[ -f $m/train.fits ] || $D --device cuda simulate isolated -n ${NTRAIN:-50000} --seed 1 -o $m/train.fits 2>&1 | tail -1
echo "simulated in $(( $(date +%s) - t0 )) s"
if [ "${PHASE:-vae}" = vae ]; then
  t0=$(date +%s)
  timeout ${VAE_SECONDS:-330} $D --device cuda train-vae $m/train.fits -o $m/madness-lsst-vae.dmx \
    --epochs ${VAE_EPOCHS:-100} --batch-size 256 --lr-decay-epochs 40 --patience 25 --seed 1 2>&1 | tail -6
  echo "train-vae: $(( $(date +%s) - t0 )) s"
  cp $m/madness-lsst-vae.dmx $m/*vae_history.csv $m/*vae_loss.png "$out"/ 2>/dev/null
  exit 0
fi
(cmake --build build-cuda -j "$(nproc)" --target bench_deblend > /tmp/o_bench_build.log 2>&1 || grep -m5 -A3 "error" /tmp/o_bench_build.log) &
model=$m/madness-lsst-vae.dmx
[ -f "$model" ] || { echo "no VAE: using its last checkpoint"; model=$m/madness-lsst-vae_vae.ckpt; }
t0=$(date +%s)
timeout ${FLOW_SECONDS:-300} $D --device cuda train-flow $m/train.fits --model "$model" -o $m/madness-lsst.dmx \
  --epochs ${FLOW_EPOCHS:-150} --batch-size 512 --lr-decay-epochs 60 --seed 1 2>&1 | tail -4
echo "train-flow: $(( $(date +%s) - t0 )) s"
$D info $m/madness-lsst.dmx | head -40
cp $m/madness-lsst.dmx $m/*flow_history.csv $m/*flow_loss.png "$out"/ 2>/dev/null
[ -f $m/test.fits ] || $D --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o $m/test.fits 2>&1 | tail -1
wait
for model in models/madness-lsst.dmx $m/madness-lsst.dmx; do
  echo "== $model"; build-cuda/bench/bench_deblend $m/test.fits $model cuda | tee -a "$out/bench_deblend_cuda.jsonl" | cut -c1-400
done

#!/usr/bin/env bash
# On the GPU machine (fresh, or warm after session-gpu-a.sh), one call of at most LIMIT_S seconds: builds the CLI and bench_synth,
# then the synthesis speed (bench_synth gpu) beside pywph's synthesis (peer_bench.py synth) in the
# same command, and the synthesis quality of the synthesis issue (256^2 crop of I_1, log,
# standardised, 8 samples, seed 1; WPH J7 L4 dn2, WPH + PS, the scattering covariance, the
# Gaussian baseline), validated, at each count of ITERATIONS (default "100 1000"). Results under
# $OUT/c/.
set -u
T0=$(date +%s); left() { echo $(( ${LIMIT_S:-580} - ($(date +%s) - T0) )); }
O=${OUT:-/tmp/out}/c; mkdir -p $O
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $O/gpu.txt
# (on the warm machine after session-gpu-a.sh its build is there: no build)
[ -x build-device/new/bench/bench_synth ] || STEPS="build" QUICK=1 JOBS=16 \
  TARGETS="demix_cli bench_synth" bash devel/device/session-before-after.sh > /tmp/build.txt 2>&1 || true
grep -E "build|exit" /tmp/build.txt | tail -3; echo "built at $(( $(date +%s) - T0 )) s" | tee -a $O/gpu.txt
D=$PWD/build-device; deps=$D/deps; N=$D/new
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"
M=.device/shared/data/dust/I_1.npy
timeout 120 $N/bench/bench_synth cuda $M gpu | tee $O/bench.jsonl
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust timeout 60 \
  python3 .device/shared/tools/peer_bench.py synth 2>&1 | grep "^{" | tee -a $O/bench.jsonl
timeout 60 $N/bench/bench_synth cuda $M gpu | tee -a $O/bench.jsonl
# A 2048^2 synthesis (I_1 tiled 4 x 4), 20 iterations: does it fit one GPU? Peak memory sampled.
python3 -c "import numpy as np; np.save('/tmp/target2048.npy', np.tile(np.load('$M'), (4, 4)).astype(np.float32))"
( while :; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done ) > /tmp/mem.txt &
mp=$!; t0=$(date +%s.%N)
timeout 120 $N/demix --device cuda --quiet synth /tmp/target2048.npy --log --standardize -J 9 -L 4 --dn 2 \
  --iterations 20 --seed 1 -o /tmp/s2048.fits; rc=$?; kill $mp
echo "2048^2 J9 20 iterations: rc $rc, $(python3 -c "import time; print(round(time.time() - $t0, 1))") s with start-up, peak GPU memory $(sort -n /tmp/mem.txt | tail -1) MiB" | tee $O/large.txt
python3 -c "import numpy as np; np.save('/tmp/target256.npy', np.load('$M')[:256, :256].astype(np.float64))"
S="$N/demix --device cuda --quiet synth /tmp/target256.npy --log --standardize --samples 8 --seed 1"
runs=("wph -J 7 --init gaussian --iterations 0")
for it in ${ITERATIONS:-100 1000}; do
  runs+=("wph,ps -J 7 -L 4 --dn 2 --iterations $it" "wph -J 7 -L 4 --dn 2 --iterations $it"
         "scov -J 7 -L 4 --iterations $it")
done
for run in "${runs[@]}"; do
  [ $(left) -lt 30 ] && break
  name=$(echo $run | awk '{print $1 "-" $NF}' | tr , +); case "$run" in *gaussian*) name=gaussian;; esac
  t0=$(date +%s.%N); timeout $(( $(left) - 15 )) $S --stats $run -o /tmp/$name.fits || continue
  echo "$name: synth $(python3 -c "import time; print(round(time.time() - $t0, 2))") s (process, with start-up)" | tee -a $O/quality.txt
  $N/demix validate /tmp/target256.npy /tmp/$name.fits --log --report /tmp/$name | tee -a $O/quality.txt
  { echo "== $name validation.json"; cat /tmp/$name/validation.json; echo; } >> $O/validation.txt
  case $name in wph+ps-1000|scov-1000) cp /tmp/$name.fits $O/;; esac # validate here for figures
done
echo "done at $(( $(date +%s) - T0 )) s"

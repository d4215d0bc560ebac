#!/usr/bin/env bash
# On the GPU machine, after session-before-after.sh built build-device/new: the synthesis
# benchmark beside pywph's (peer_bench.py synth), then the quality runs of the synthesis issue:
# a 256^2 crop of the shared dust map, log and standardised, 8 samples of WPH (J7 L4 dn2), of the
# scattering covariance (J7 L4), and the Gaussian baseline (a Gaussian field with the target's
# spectrum, no descent), each validated against the target; QUALITY_ITERATIONS="100 500" runs each
# statistic for each count. Results under $OUT/synthesis/ (bench.jsonl, history.jsonl, quality.txt,
# validation.txt; the samples stay in /tmp).
set -u
O=${OUT:-/tmp/out}/synthesis; mkdir -p $O
D=$PWD/build-device; deps=$D/deps; N=$D/new
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"
M=.device/shared/data/dust/I_1.npy
timeout ${BENCH_S:-200} $N/bench/bench_synth cuda $M gpu | tee $O/bench.jsonl
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust timeout 120 \
  python3 .device/shared/tools/peer_bench.py synth 2>&1 | grep "^{" | tee -a $O/bench.jsonl
# pywph's loss after each iteration from the starts of seeds 0-7, and demix's descent from them.
SEEDS="0 1 2 3 4 5 6 7" PEERS_DIR=/tmp/peers timeout 150 python3 devel/device/pywph_history.py $M |
  tee -a $O/history.jsonl | cut -c1-160
starts=$(ls /tmp/x0_pywph_*.npy | paste -sd,)
timeout 60 $N/bench/bench_synth cuda $M start=$starts | tee -a $O/history.jsonl | cut -c1-160
python3 -c "import numpy as np; np.save('/tmp/target256.npy', np.load('$M')[:256, :256].astype(np.float64))"
S="$N/demix --device cuda --quiet synth /tmp/target256.npy --log --standardize --samples 8 --seed 1"
runs=("wph -J 7 --init gaussian --iterations 0")
for it in ${QUALITY_ITERATIONS:-100}; do
  runs+=("wph -J 7 -L 4 --dn 2 --iterations $it" "scov -J 7 -L 4 --iterations $it"
         "wph,ps -J 7 -L 4 --dn 2 --iterations $it")
done
for run in "${runs[@]}"; do
  name=$(echo $run | awk '{print $1 "-" $NF}' | tr , +); case "$run" in *gaussian*) name=gaussian;; esac
  t0=$(date +%s.%N); $S --stats $run -o /tmp/$name.fits
  echo "$name: synth $(python3 -c "import time; print(round(time.time() - $t0, 2))") s (process, with start-up)" | tee -a $O/quality.txt
  $N/demix validate /tmp/target256.npy /tmp/$name.fits --log --report /tmp/$name | tee -a $O/quality.txt
  # (few files come back from the device: the reports go into one)
  { echo "== $name validation.json"; cat /tmp/$name/validation.json; echo; } >> $O/validation.txt
done

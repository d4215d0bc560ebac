#!/usr/bin/env bash
# On the GPU machine, after session-before-after.sh built build-device/new: the synthesis
# benchmark beside pywph's (peer_bench.py synth), then the quality runs of the synthesis issue:
# a 256^2 crop of the shared dust map, log and standardised, 8 samples of WPH (J7 L4 dn2), of the
# scattering covariance (J7 L4), and the Gaussian baseline (a Gaussian field with the target's
# spectrum, no descent), each validated against the target. Results under $OUT/synthesis/.
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
python3 -c "import numpy as np; np.save('/tmp/target256.npy', np.load('$M')[:256, :256].astype(np.float64))"
S="$N/demix --device cuda --quiet synth /tmp/target256.npy --log --standardize --samples 8 --seed 1"
for run in "wph -J 7 -L 4 --dn 2 --iterations 100" "scov -J 7 -L 4 --iterations 100" \
           "wph -J 7 --init gaussian --iterations 0"; do
  name=$(echo $run | awk '{print $1}'); case "$run" in *gaussian*) name=gaussian;; esac
  t0=$(date +%s.%N); $S --stats $run -o $O/$name.fits
  echo "$name: synth $(python3 -c "import time; print(round(time.time() - $t0, 2))") s (process, with start-up)"
  $N/demix validate /tmp/target256.npy $O/$name.fits --log --report $O/$name | tee $O/$name.txt
done

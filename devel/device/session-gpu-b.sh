#!/usr/bin/env bash
# On the warm GPU machine after session-gpu-a.sh (its build in build-device/new): the peers in
# one command with demix (pywph's looped denoising evaluation and pywph's synthesis), the
# separation quality table of the separation issue (256^2 log dust + white noise, SNR 2, 1, 0.5,
# 0.25, 3 noise seeds, M = 20, 5 x 50: Wiener and the bias estimator from the matched filter with
# WPH + PS; then one seed with the realizations estimator, and the bias estimator from d as the
# papers start), and the synthesis quality at 100 and 500 iterations if time is left. Results
# under $OUT/b/.
set -u
T0=$(date +%s); left() { echo $(( ${LIMIT_S:-580} - ($(date +%s) - T0) )); }
O=${OUT:-/tmp/out}/b; mkdir -p $O
D=$PWD/build-device; deps=$D/deps; N=$D/new
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"
M=.device/shared/data/dust/I_1.npy
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 120 \
  python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{" | tee $O/peers.jsonl
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 60 \
  python3 .device/shared/tools/peer_bench.py synth 2>&1 | grep "^{" | tee -a $O/peers.jsonl
echo "peers done at $(( $(date +%s) - T0 )) s"
Q=$O/quality.jsonl
timeout $(( $(left) - 200 )) $N/bench/bench_separate cuda $M 256:20:5:50 methods=wiener,bias start=matched \
  stats=wph+ps | tee $Q | cut -c1-160
echo "table done at $(( $(date +%s) - T0 )) s"
[ $(left) -gt 90 ] && timeout $(( $(left) - 60 > 150 ? 150 : $(left) - 60 )) $N/bench/bench_separate cuda $M 256:20:5:50 \
  snr=2,1,0.5,0.25 seeds=1 methods=realizations start=matched stats=wph+ps | tee -a $Q | cut -c1-160
[ $(left) -gt 50 ] && timeout $(( $(left) - 10 )) $N/bench/bench_separate cuda $M 256:20:5:50 \
  snr=1,0.5 seeds=1 methods=bias start=observation stats=wph | tee -a $Q | cut -c1-160
echo "done at $(( $(date +%s) - T0 )) s"

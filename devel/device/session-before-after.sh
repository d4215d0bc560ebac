#!/usr/bin/env bash
# On the GPU machine: a change measured against the build before it, both built there, in one
# command. The old sources travel in .device/old-src (git archive of the old commit, made here:
#   rm -rf .device/old-src && mkdir -p .device/old-src &&
#   git archive OLD_COMMIT | tar x -C .device/old-src).
# Builds both at once (library, CLI, benchmarks; the new tests too), runs the new unit tests on
# CUDA (4 shards) and the CLI tests, then bench_stats old, new, pywph, new, old and bench_deblend
# old, new on the same 1000 blends. Results under $OUT. QUICK=1: the new build, its tests and its
# WPH figures only. Builds go to build-device/ (git-ignored, kept by a warm machine between
# calls): a step already done is skipped, so a run cut by the 10-minute limit goes on where it
# stopped. STEPS="build tests bench" picks steps.
set -u
O=${OUT:-/tmp/out}; mkdir -p $O
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
STEPS=${STEPS:-build tests bench}
has() { [[ " $STEPS " == *" $1 "* ]]; }
D=$PWD/build-device; mkdir -p $D
deps=$D/deps
if [ ! -f $D/deps.done ]; then
  rm -rf "$deps" && mkdir -p "$deps"
  for d in .device/debs/*.deb; do dpkg -x "$d" "$deps"; done
  ln -sf "$(ls "$deps"/lib/x86_64-linux-gnu/libz.so.1.*)" "$deps/usr/lib/x86_64-linux-gnu/libz.so"
  tar xzf .device/cfitsio_*.orig.tar.gz -C $D
  cmake -S $D/cfitsio-* -B $D/cfitsio-build -DCMAKE_BUILD_TYPE=Release -DUSE_CURL=OFF \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DCMAKE_PREFIX_PATH="$deps/usr" -DZLIB_ROOT="$deps/usr" \
    -DCMAKE_INSTALL_PREFIX="$deps/usr" > $O/cfitsio.log 2>&1
  cmake --build $D/cfitsio-build -j 16 >> $O/cfitsio.log 2>&1 &&
    cmake --install $D/cfitsio-build >> $O/cfitsio.log 2>&1 && touch $D/deps.done
fi
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
[ -z "${CUDACXX:-}" ] && [ -x /usr/local/cuda/bin/nvcc ] && export CUDACXX=/usr/local/cuda/bin/nvcc
configure() { # source folder, build folder, tests ON/OFF
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" \
    -DZLIB_ROOT="$deps/usr" -DDEMIX_SHARED_DIR="$PWD/.device/shared" -DDEMIX_BUILD_TESTS=$3 \
    -DDEMIX_CUDA_ARCHITECTURES=90 -DDEMIX_BUILD_EXAMPLES=OFF -DDEMIX_TEST_PYTHON="$(command -v python3)"
}
N=$D/new; OLD=$D/old
if has build; then
  T0=$(date +%s)
  [ -z "${QUICK:-}" ] && (configure .device/old-src $OLD OFF > $O/configure-old.log 2>&1 &&
    cmake --build $OLD -j 6 --target demix_cli bench_stats bench_deblend > $O/build-old.log 2>&1
    echo "old build: exit $?") &
  (configure . $N ON > $O/configure-new.log 2>&1 && cmake --build $N -j ${JOBS:-10} ${TARGETS:+--target $TARGETS} -- -k 0 > $O/build-new.log 2>&1
    echo "new build: exit $?") &
  wait
  echo "builds: $(( $(date +%s) - T0 )) s"; tail -5 $O/build-new.log; tail -3 $O/build-old.log 2>/dev/null
fi
has tests && for b in $N/tests/demix_*tests; do
  for i in 0 1 2 3; do GTEST_TOTAL_SHARDS=4 GTEST_SHARD_INDEX=$i $b > $O/$(basename $b)$i.log 2>&1 & done; wait
done
if has tests; then
  cat $O/demix_*tests?.log > $O/tests.log; rm -f $O/demix_*tests?.log
  grep -E "^\[  (PASSED|FAILED|SKIPPED) " $O/tests.log; grep -E "^\[  FAILED  \] [A-Z]" $O/tests.log
  grep -B3 -A12 ": Failure$" $O/tests.log | head -60
fi
map=.device/shared/data/dust/I_1.npy
if [ -n "${QUICK:-}" ]; then $N/bench/bench_stats cuda $map wph | tee $O/stats.jsonl; exit 0; fi
if has tests; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .device/whl/*.whl
  for t in cli/test_cli.py cli/test_deblend_cli.py cli/test_simulate_cli.py interop/test_astropy.py; do
    PYTHONPATH=/tmp/site timeout 300 python3 tests/$t $N/demix > /tmp/cli.log 2>&1 && echo "$t: passed" ||
      { echo "$t: FAILED"; tail -20 /tmp/cli.log; }; done | tee $O/cli.txt
fi
has bench || exit 0
old() { $OLD/bench/bench_stats "$@" | sed 's/^{/{"build":"old",/'; }
new() { $N/bench/bench_stats "$@" | sed 's/^{/{"build":"new",/'; }
old cuda $map | tee $O/stats.jsonl
new cuda $map | tee -a $O/stats.jsonl
rm -rf /tmp/peers && mkdir -p /tmp/peers
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .device/peers/*.whl
PEERS_DIR=/tmp/peers DUST_DIR=.device/shared/data/dust PYTHONUNBUFFERED=1 timeout 200 \
  python3 .device/shared/tools/peer_bench.py pywph 2>&1 | grep "^{" | tee -a $O/stats.jsonl
new cuda $map wph | tee -a $O/stats.jsonl
old cuda $map wph | tee -a $O/stats.jsonl
$OLD/demix --device cuda simulate blends -n 1000 --seed 2 --min-galaxies 2 --max-galaxies 5 -o /tmp/test2.fits 2>&1 | tail -1
for b in old new; do
  d=$OLD; [ $b = new ] && d=$N
  $d/bench/bench_deblend /tmp/test2.fits models/madness-lsst.dmx cuda | sed "s/^{/{\"build\":\"$b\",/" | tee -a $O/deblend.jsonl | cut -c1-200
done
$OLD/bench/bench_deblend /tmp/test2.fits models/madness-lsst.dmx cuda | grep madness | sed 's/^{/{"build":"old",/' | tee -a $O/deblend.jsonl | cut -c1-200
$N/bench/bench_deblend /tmp/test2.fits models/madness-lsst.dmx cuda | grep madness | sed 's/^{/{"build":"new",/' | tee -a $O/deblend.jsonl | cut -c1-200
true

#!/usr/bin/env bash
# On the GPU machine (PyTorch installed, no package registry): unpack the carried dependencies,
# build demix against PyTorch's CUDA LibTorch, run the whole CTest suite (CUDA tests included)
# and the demo on the GPU. Usage: bash devel/device/build-and-test.sh [OUTDIR]
set -euo pipefail
out=${1:-/tmp/demix-device}
mkdir -p "$out"
deps=/tmp/deps
jobs=$(nproc)
rm -rf "$deps" && mkdir -p "$deps"
for d in .device/debs/*.deb; do dpkg -x "$d" "$deps"; done
ln -sf "$(ls "$deps"/lib/x86_64-linux-gnu/libz.so.1.*)" "$deps/usr/lib/x86_64-linux-gnu/libz.so"
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"

fail() { echo "FAILED: see $1"; tail -40 "$1"; exit 1; }
tar xzf .device/cfitsio_*.orig.tar.gz -C /tmp
cmake -S /tmp/cfitsio-* -B /tmp/cfitsio-build -DCMAKE_BUILD_TYPE=Release -DUSE_CURL=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
  -DCMAKE_PREFIX_PATH="$deps/usr" -DZLIB_ROOT="$deps/usr" -DCMAKE_INSTALL_PREFIX="$deps/usr" > "$out/cfitsio.log" 2>&1 || fail "$out/cfitsio.log"
cmake --build /tmp/cfitsio-build -j "$jobs" >> "$out/cfitsio.log" 2>&1 || fail "$out/cfitsio.log"
cmake --install /tmp/cfitsio-build >> "$out/cfitsio.log" 2>&1 || fail "$out/cfitsio.log"

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .device/whl/*.whl
export PYTHONPATH=/tmp/site

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
[ -z "${CUDACXX:-}" ] && [ -x /usr/local/cuda/bin/nvcc ] && export CUDACXX=/usr/local/cuda/bin/nvcc  # our kernels
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" \
  -DZLIB_ROOT="$deps/usr" -DDEMIX_SHARED_DIR="$PWD/.device/shared" -DDEMIX_TEST_PYTHON="$(command -v python3)" 2>&1 | tee "$out/configure.log" | grep -A8 "configuration"
cmake --build build-cuda -j "$jobs" > "$out/build.log" 2>&1 || fail "$out/build.log"
build-cuda/demix version
(cd build-cuda && ctest --output-on-failure -j 4 2>&1 | tee "$out/ctest.log" | tail -15)
build-cuda/demix --device cuda --dtype float64 info .device/shared/data/dust/I_1.npy
make demo BUILD_DIR=build-cuda DEMO_MAP=.device/shared/data/dust/I_1.npy DEMO_OUT="$out/demo" \
  TORCH_PREFIX="$torch_prefix" -o deps -o configure
map=.device/shared/data/dust/I_1.npy
cpu=$(build-cuda/demix --device cpu info "$map" | grep -E "min/max|mean/std")
gpu=$(build-cuda/demix --device cuda info "$map" | grep -E "min/max|mean/std")
if [ "$cpu" == "$gpu" ]; then echo "info: CPU and CUDA summaries agree"; else echo "info: CPU/CUDA MISMATCH"; echo "$cpu"; echo "$gpu"; exit 1; fi

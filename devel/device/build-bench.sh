#!/usr/bin/env bash
# On the GPU machine: build the library, the CLI and the benchmark programs (no tests) against
# PyTorch's LibTorch, quickly. Usage: [TESTS=ON] [TARGETS="demix_cli bench_deblend"] bash devel/device/build-bench.sh [OUTDIR]
set -euo pipefail
out=${1:-/tmp/demix-device}
mkdir -p "$out"
deps=/tmp/deps
if [ ! -d build-cuda ]; then
  rm -rf "$deps" && mkdir -p "$deps"
  for d in .device/debs/*.deb; do dpkg -x "$d" "$deps"; done
  ln -sf "$(ls "$deps"/lib/x86_64-linux-gnu/libz.so.1.*)" "$deps/usr/lib/x86_64-linux-gnu/libz.so"
  tar xzf .device/cfitsio_*.orig.tar.gz -C /tmp
  cmake -S /tmp/cfitsio-* -B /tmp/cfitsio-build -DCMAKE_BUILD_TYPE=Release -DUSE_CURL=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    -DCMAKE_PREFIX_PATH="$deps/usr" -DZLIB_ROOT="$deps/usr" -DCMAKE_INSTALL_PREFIX="$deps/usr" > "$out/cfitsio.log" 2>&1
  cmake --build /tmp/cfitsio-build -j "$(nproc)" >> "$out/cfitsio.log" 2>&1
  cmake --install /tmp/cfitsio-build >> "$out/cfitsio.log" 2>&1
fi
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu:$deps/usr/lib:${LD_LIBRARY_PATH:-}"
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
# nvcc builds demix's own CUDA kernels (CMake finds it through CUDACXX when it is not on PATH).
[ -z "${CUDACXX:-}" ] && [ -x /usr/local/cuda/bin/nvcc ] && export CUDACXX=/usr/local/cuda/bin/nvcc
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" \
  -DZLIB_ROOT="$deps/usr" -DDEMIX_SHARED_DIR="$PWD/.device/shared" -DDEMIX_BUILD_TESTS=${TESTS:-OFF} -DDEMIX_CUDA_ARCHITECTURES=90 \
  -DDEMIX_BUILD_EXAMPLES=OFF -DDEMIX_BUILD_DEVEL=ON > "$out/configure.log" 2>&1
cmake --build build-cuda -j "$(nproc)" --target ${TARGETS:-profile_wph bench_stats} > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }

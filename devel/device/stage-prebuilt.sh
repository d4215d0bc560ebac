#!/usr/bin/env bash
# Here (no GPU): copy a CUDA build of demix made on this machine against PyTorch's LibTorch into
# .device/prebuilt (git-ignored, carried to the GPU machine), so that a device run spends no time
# compiling. The build is made once with
#   pip download torch==<the device's version> && unzip its torch/ folder to $TORCH_DIR/..;
#   cfitsio from .device/cfitsio_*.orig.tar.gz installed to $DEPS (no curl);
#   cmake (>= 3.26, for CUDA 20) -S . -B $BUILD -DCMAKE_PREFIX_PATH="$TORCH_DIR/..;$DEPS"
#     -DDEMIX_SHARED_DIR=/work/shared -DDEMIX_CUDA_ARCHITECTURES=90
#     -DCMAKE_{EXE,SHARED}_LINKER_FLAGS=-Wl,--allow-shlib-undefined  (cuDNN & co. live there only)
#   with TORCH_CUDA_ARCH_LIST=9.0 (no GPU here to detect).
# The binaries keep their build-tree RPATHs; devel/device/use-prebuilt.sh recreates those
# paths on the GPU machine as links. Usage: BUILD=... TORCH_DIR=... DEPS=... stage-prebuilt.sh
set -euo pipefail
BUILD=${BUILD:-/work/build-cu} TORCH_DIR=${TORCH_DIR:-/work/torchcu/torch} DEPS=${DEPS:-/work/torchcu/deps}
dst=.device/prebuilt
rm -rf "$dst" && mkdir -p "$dst/build/bench" "$dst/build/devel" "$dst/build/tests" "$dst/deps"
cp -a "$BUILD"/libdemix.so* "$dst/build/"
for f in demix bench/bench_stats bench/bench_deblend devel/profile_wph tests/demix_unit_tests; do
  [ -f "$BUILD/$f" ] && cp "$BUILD/$f" "$dst/build/$f"
done
cp -a "$DEPS"/lib/libcfitsio.so* "$dst/deps/"
strip --strip-unneeded "$dst"/build/libdemix.so.*.* "$dst"/build/demix "$dst"/build/bench/* "$dst"/build/tests/* 2>/dev/null || true
printf 'BUILD=%s\nTORCH_DIR=%s\nDEPS=%s\nCOMMIT=%s\n' "$BUILD" "$TORCH_DIR" "$DEPS" \
  "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include bench tests || echo +changes)" > "$dst/paths"
du -sh "$dst"

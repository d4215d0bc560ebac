#!/usr/bin/env bash
# On the GPU machine: make the build staged by stage-prebuilt.sh runnable where it was built
# (links at its build paths to the carried files and to this machine's PyTorch), and unpack the
# carried Debian packages (libpng, zlib). Prints the build folder; source it to get
# LD_LIBRARY_PATH. Usage: . devel/device/use-prebuilt.sh
set -u
src=$PWD/.device/prebuilt
. "$src/paths"
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
mkdir -p "$(dirname "$BUILD")" "$(dirname "$TORCH_DIR")" "$DEPS" /work
ln -sfn "$src/build" "$BUILD"
mkdir -p "$TORCH_DIR" && ln -sfn "$torch_lib" "$TORCH_DIR/lib"
ln -sfn "$src/deps" "$DEPS/lib"
[ -e /work/shared ] || ln -sfn "$PWD/.device/shared" /work/shared
[ -e /work/main ] || ln -sfn "$PWD" /work/main
rm -rf /tmp/deps && mkdir -p /tmp/deps
for d in .device/debs/*.deb; do dpkg -x "$d" /tmp/deps; done
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
echo "prebuilt $COMMIT at $BUILD"

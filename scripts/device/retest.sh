#!/usr/bin/env bash
# On a warm GPU machine after build-and-test.sh: rebuild what changed, rerun CTest and the demo.
set -u
export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu:/tmp/deps/usr/lib:${LD_LIBRARY_PATH:-}"
export PYTHONPATH=/tmp/site
cmake --build build-cuda -j "$(nproc)" > /tmp/o/build2.log 2>&1 || { grep -m5 -A5 error /tmp/o/build2.log; exit 1; }
(cd build-cuda && ctest --output-on-failure -j 4 2>&1 | tail -25)
make demo BUILD_DIR=build-cuda DEMO_MAP=.device/shared/data/dust/I_1.npy DEMO_OUT=/tmp/o/demo \
  TORCH_PREFIX="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" -o deps -o configure 2>&1 | tail -22

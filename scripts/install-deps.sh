#!/usr/bin/env bash
# Installs the Debian 12 packages demix needs to build and test, only those that are missing,
# so a second run costs nothing. Needs root (or sudo) when something is missing.
set -euo pipefail

packages=(
  cmake make g++ pkg-config
  libtorch-dev          # LibTorch (CPU) >= 1.13: tensors, FFTs, autograd
  libcfitsio-dev        # FITS
  libcli11-dev          # command line
  libpng-dev            # PNG previews
  zlib1g-dev            # gzip of outputs named *.gz
  libcairo2-dev fonts-dejavu-core  # charts with text (validation figures)
  libgtest-dev          # unit tests
  libbenchmark-dev      # bench/
  python3-numpy python3-astropy  # test oracles for npy and FITS interoperability
  python3-dev python3-torch pybind11-dev python3-pytest python3-venv  # the Python package (python/)
)

# A CUDA LibTorch chosen with TORCH_PREFIX replaces Debian's (and its Python torch: the package
# is then built when the python3 on the machine imports a torch of that LibTorch's version).
if [ -n "${TORCH_PREFIX:-}" ]; then
  packages=("${packages[@]/libtorch-dev/}")
  packages=("${packages[@]/python3-torch/}")
fi

missing=()
for p in "${packages[@]}"; do
  [ -n "$p" ] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

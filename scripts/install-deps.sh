#!/usr/bin/env bash
# Checks the Debian 12 packages demix needs to build and test, and installs only those missing, so
# that a second run costs nothing and a machine that has them all needs no root.
#
# Installing runs apt-get, only as root or with permission to use sudo (DEMIX_ALLOW_SUDO=1).
# Otherwise a missing build dependency stops here with the command to run; missing optional
# packages (tests, charts, benchmarks) only warn: CMake then builds without them.
# Not a Debian system (no dpkg-query), or DEMIX_SKIP_DEPS=1: nothing is checked; CMake reports
# what it cannot find.
set -euo pipefail

required=(
  cmake make g++ pkg-config
  libtorch-dev          # LibTorch (CPU) >= 1.13: tensors, FFTs, autograd
  libcfitsio-dev        # FITS
  libcli11-dev          # command line
  libpng-dev            # PNG previews
  zlib1g-dev            # gzip of outputs named *.gz
)
optional=(
  libcairo2-dev fonts-dejavu-core  # charts with text (validation figures)
  libgtest-dev          # unit, regression and property tests
  libbenchmark-dev      # bench/
  python3-numpy python3-astropy  # test oracles for npy and FITS interoperability
  python3-dev python3-torch pybind11-dev python3-pytest python3-venv  # the Python package (python/)
)

# A CUDA LibTorch chosen with TORCH_PREFIX replaces Debian's (and its Python torch: the package
# is then built when the python3 on the machine imports a torch of that LibTorch's version).
if [ -n "${TORCH_PREFIX:-}" ]; then
  required=("${required[@]/libtorch-dev/}")
  optional=("${optional[@]/python3-torch/}")
fi

if [ "${DEMIX_SKIP_DEPS:-0}" = 1 ] || ! command -v dpkg-query >/dev/null; then
  exit 0
fi

missing_of() {
  local p
  for p in "$@"; do
    [ -n "$p" ] || continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing_required < <(missing_of "${required[@]}")
mapfile -t missing_optional < <(missing_of "${optional[@]}")
missing=("${missing_required[@]}" "${missing_optional[@]}")
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if [ "${DEMIX_ALLOW_SUDO:-0}" = 1 ] && command -v sudo >/dev/null; then
    sudo="sudo"
  elif [ ${#missing_required[@]} -gt 0 ]; then
    echo "install-deps: missing Debian packages needed to build demix: ${missing_required[*]}" >&2
    [ ${#missing_optional[@]} -eq 0 ] || echo "install-deps: and optional ones: ${missing_optional[*]}" >&2
    echo "install-deps: install them as root (apt-get install ${missing[*]})," >&2
    echo "install-deps: or allow this script to use sudo: make ... DEMIX_ALLOW_SUDO=1" >&2
    exit 1
  else
    echo "install-deps: optional packages missing (built without them): ${missing_optional[*]}" >&2
    echo "install-deps: as root, or with DEMIX_ALLOW_SUDO=1, this script installs them" >&2
    exit 0
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for the GPU machine, which reaches no package registry: the
# Debian packages demix builds against, CFITSIO's Debian source tarball (built there without curl),
# and astropy wheels for the interoperability tests. Run here, once, from the repository root.
set -euo pipefail
mkdir -p .device/debs .device/whl
(cd .device/debs && apt-get download libcli11-dev libgtest-dev libpng-dev libpng16-16 zlib1g-dev zlib1g)
src=$(mktemp -d)
mkdir -p "$src/lists/partial"
echo "deb-src http://deb.debian.org/debian bookworm main" > "$src/src.list"
apt_src=(-o Dir::Etc::SourceList="$src/src.list" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$src/lists")
apt-get "${apt_src[@]}" update -qq
(cd "$src" && apt-get "${apt_src[@]}" source --download-only cfitsio || true)  # only orig.tar.gz is needed
cp "$src"/cfitsio_*.orig.tar.gz .device/
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .device/whl astropy pyerfa astropy-iers-data
mkdir -p .device/shared && cp -r ../shared/data ../shared/reference ../shared/tools .device/shared/  # shared/ does not travel
# Peer codes for bench.sh: pywph and kymatio from PyPI. Cheng et al.'s `scattering` package is not
# on PyPI: copy its scattering/*.py (and backend/) from a snapshot of SihaoCheng/scattering_transform
# into .device/peers/scattering by hand. Never commit any of it.
mkdir -p .device/peers
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  -d .device/peers pywph kymatio appdirs
du -sh .device

#!/usr/bin/env bash
# Installs the Python package as a user does (pip install of an sdist made from a copy of the
# source, into a fresh virtual environment) and uses it from outside the source tree: the sdist
# must hold everything the build needs. `make test` does not do this:
# its Python tests (ctest -L python) use the package that the normal build assembles in
# build/python, so the library is not compiled twice. This compiles it again, which takes too
# long for every CI run on 2 cores (see the README's "Python" section); run it after changing
# pyproject.toml, python/CMakeLists.txt or the install rules.
#
#   scripts/check-pip-install.sh [PYTHON]    PYTHON: an interpreter with torch (default
#                                            /usr/bin/python3, with Debian's python3-torch)
# Needs network access to PyPI (scikit-build-core). Uses ccache when it is installed.
set -euo pipefail
python=${1:-/usr/bin/python3}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/demix-pip.XXXXXX")
# Kept when something fails, for a look at the build (build/) and the virtual environment.
trap 'status=$?; if [ $status -eq 0 ]; then rm -rf "$work"; else echo "check-pip-install: failed ($status); see $work" >&2; fi' EXIT

# The files git knows or would add (no build folders, virtual environments or outputs).
mkdir -p "$work/src"
git -C "$src" ls-files -z -co --exclude-standard |
  tar -C "$src" --null -T - -cf - | tar -C "$work/src" -xf -

"$python" -m venv --system-site-packages "$work/venv"
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR="$work"
fi
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
start=$(date +%s)
# The sdist (scikit-build-core's, through PEP 517's `build`), then the package built from it.
"$work/venv/bin/pip" install --quiet build scikit-build-core
"$work/venv/bin/python" -m build --sdist --no-isolation --outdir "$work/dist" "$work/src" > "$work/sdist.log"
sdist=$(ls "$work"/dist/demix-*.tar.gz)
echo "check-pip-install: $(basename "$sdist"), $(tar tzf "$sdist" | wc -l) files"
# A build folder of its own, so that ccache sees the same relative paths on every run.
"$work/venv/bin/pip" install --quiet --config-settings=build-dir="$work/build" "$sdist"
echo "check-pip-install: pip install took $(( $(date +%s) - start )) s"

cd "$work"
"$work/venv/bin/python" -X faulthandler -u - "$work/venv" <<'PY'
import pathlib, subprocess, sys
import numpy as np
import demix

venv = pathlib.Path(sys.argv[1])
package = pathlib.Path(demix.__file__).parent
assert venv in package.parents, f"imported {package}, not the installed package"
extension = next(package.glob("_demix*.so"))
assert (package / "libdemix.so").exists(), "libdemix.so is not beside the extension"
dynamic = subprocess.run(["readelf", "-d", str(extension)], capture_output=True, text=True).stdout
assert "$ORIGIN" in dynamic, "the extension does not look for libdemix.so beside itself"
x = np.random.default_rng(0).normal(size=(64, 64))
c = demix.WPH(x.shape, J=3)(x)
assert isinstance(c.values, np.ndarray) and len(c["C01"]) > 0
# The drop-in layer, separation and the shipped MADNESS model (found beside libdemix.so).
import demix.compat.pywph as pw
op = pw.WPHOp(64, 64, 3)
assert op.apply(x).shape[-1] == len(op.wph_moments_indices) + len(op.scaling_moments_indices)
noise = np.random.default_rng(1).normal(size=(4, 64, 64))
s = demix.separate(x + noise[0], noise[1:], eras=1, iterations=2)
assert s.signal.shape == x.shape
ds = demix.simulate_blends(venv.parent / "b.fits", count=1, seed=2, max_galaxies=2)
xy = np.stack([ds.truth["x"], ds.truth["y"]], 1)
r = demix.deblend(ds.images[0], ds.header, positions=xy, max_steps=5)  # the shipped model
assert r.stamps.shape[0] == len(xy)
print(f"check-pip-install: demix {demix.__version__} from {package}: {len(c)} WPH coefficients")
PY

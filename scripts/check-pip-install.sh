#!/usr/bin/env bash
# Installs the Python package as a user does (pip install . into a fresh virtual environment, from
# a copy of the source) and uses it from outside the source tree. `make test` does not do this:
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
# A build folder inside the copy, so that ccache sees the same relative paths on every run.
"$work/venv/bin/pip" install --quiet --config-settings=build-dir=build "$work/src"
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
print(f"check-pip-install: demix {demix.__version__} from {package}: {len(c)} WPH coefficients")
PY

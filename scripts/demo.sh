#!/usr/bin/env bash
# The demo: the main job of demix on built-in data. For now (foundation): read the shared dust map,
# write it as FITS and as a PNG preview, and print its summary. Later issues add statistics,
# synthesis and separation here.
set -euo pipefail
DEMIX=${DEMIX:-build/demix}
DEMO_MAP=${DEMO_MAP:-../shared/data/dust/I_1.npy}
DEMO_OUT=${DEMO_OUT:-out/demo}

if [ ! -f "$DEMO_MAP" ]; then
  echo "demo: the dust map '$DEMO_MAP' is missing; set DEMO_MAP=path/to/map.npy or .fits" >&2
  exit 1
fi
mkdir -p "$DEMO_OUT"
echo "== demix demo: $DEMO_MAP"
"$DEMIX" version
echo
"$DEMIX" convert "$DEMO_MAP" "$DEMO_OUT/dust.fits"
"$DEMIX" preview "$DEMO_OUT/dust.fits" "$DEMO_OUT/dust.png" --stretch asinh
echo
"$DEMIX" info "$DEMO_OUT/dust.fits"
echo
echo "== outputs in $DEMO_OUT/:"
echo "   dust.fits  the map as FITS (float32, HISTORY says where it came from)"
echo "   dust.png   a preview (asinh stretch, viridis, row 0 at the bottom)"

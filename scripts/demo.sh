#!/usr/bin/env bash
# The demo: the main job of demix on built-in data. Read the shared dust map, write it as FITS and as
# a PNG preview, print its summary; then compute its wavelet phase harmonics (WPH) and compare them
# with those of the second shared dust map (I_2.npy beside it). Later issues add synthesis and
# separation here.
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
# WPH of log(map), standardised; J defaults to min(7, log2(min(H, W)) - 2): 7 on the 512 x 512 map.
# About 10 s per map on 2 CPU cores.
echo "== WPH statistics of log(dust), standardised (L = 4, dn = 2)"
"$DEMIX" stats --kind wph --log --standardize "$DEMO_MAP" \
  -o "$DEMO_OUT/dust_wph.fits" --json "$DEMO_OUT/dust_wph.json"
SIBLING="$(dirname "$DEMO_MAP")/I_2.npy"
if [ -f "$SIBLING" ] && [ "$SIBLING" -ef "$DEMO_MAP" ]; then SIBLING=""; fi
if [ -n "$SIBLING" ] && [ -f "$SIBLING" ]; then
  echo
  echo "== the same statistics of $SIBLING, and the comparison"
  "$DEMIX" stats --kind wph --log --standardize "$SIBLING" -o "$DEMO_OUT/dust2_wph.fits"
  echo
  "$DEMIX" stats --compare "$DEMO_OUT/dust_wph.fits" "$DEMO_OUT/dust2_wph.fits" \
    -o "$DEMO_OUT/wph_compare.png"
else
  echo "(no second map I_2.npy beside $DEMO_MAP: comparison skipped)"
fi
echo
echo "== outputs in $DEMO_OUT/:"
echo "   dust.fits         the map as FITS (float32, HISTORY says where it came from)"
echo "   dust.png          a preview (asinh stretch, viridis, row 0 at the bottom)"
echo "   dust_wph.fits     its WPH coefficients: HDU 1 'COEFFS' table (CLASS, J1 T1 P1 J2 T2 P2 N A"
echo "                     PSEUDO, REAL, IMAG), HDU 0 the statistic's keywords (STAT, J, L, DN...)"
echo "   dust_wph.json     the same coefficients as JSON"
if [ -n "$SIBLING" ] && [ -f "$SIBLING" ]; then
  echo "   dust2_wph.fits    the WPH coefficients of $SIBLING"
  echo "   wph_compare.png   log10 |coefficient| by class (blue: $DEMO_MAP, orange: $SIBLING)"
fi

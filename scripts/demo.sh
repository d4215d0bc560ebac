#!/usr/bin/env bash
# The demo: the main job of demix on built-in data. Read the shared dust map, write it as FITS and as
# a PNG preview, print its summary; then compute its wavelet phase harmonics (WPH) and compare them
# with those of the second shared dust map (I_2.npy beside it). Then simulate an LSST-like blend of
# galaxies and deblend it with the shipped MADNESS model (models/madness-lsst.dmx). Then synthesise
# new dust maps from a crop of the map (microcanonical synthesis) and validate them against it.
# Then add white noise to the crop and separate it again (statistical component separation).
set -euo pipefail
DEMIX=${DEMIX:-build/demix}
DEMO_MAP=${DEMO_MAP:-../shared/data/dust/I_1.npy}
DEMO_OUT=${DEMO_OUT:-out/demo}
DEMO_MODEL=${DEMO_MODEL:-models/madness-lsst.dmx}

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
echo "== deblending: a simulated LSST blend of 3 galaxies (10-year depth, u g r i z y), the shipped"
echo "   MADNESS model (VAE + flow prior), galaxy positions from the truth catalogue"
"$DEMIX" simulate blends -n 1 --seed 11 --min-galaxies 3 --max-galaxies 3 -o "$DEMO_OUT/blend.fits" \
  --csv "$DEMO_OUT/blend_truth.csv" --png "$DEMO_OUT/blend.png"
"$DEMIX" deblend "$DEMO_OUT/blend.fits" --catalog "$DEMO_OUT/blend_truth.csv" --model "$DEMO_MODEL" \
  -o "$DEMO_OUT/deblend" --catalogue-format csv
"$DEMIX" preview "$DEMO_OUT/deblend/residual.fits" "$DEMO_OUT/deblend/residual_r.png" --plane 2
for g in "$DEMO_OUT"/deblend/galaxy_*.fits; do
  "$DEMIX" preview "$g" "${g%.fits}_r.png" --plane 2 --stretch asinh
done
echo
echo "   galaxy   x       y       r-band flux (e-): deblended   true      relative error"
awk -F, 'function col(name,   i) { for (i = 1; i <= NF; ++i) if ($i == name) return i; return 0 }
  FNR == 1 { if (NR == 1) { tx = col("x"); ty = col("y"); tf = col("flux_r") } else { mf = col("flux_r") }; next }
  NR == FNR { truth[FNR - 2] = $tf; x[FNR - 2] = $tx; y[FNR - 2] = $ty; next }
  { k = FNR - 2; printf "   %-8d %-7.1f %-7.1f %12.0f %12.0f %10.1f%%\n", k, x[k], y[k], $mf, truth[k],
      100 * ($mf - truth[k]) / truth[k] }' "$DEMO_OUT/blend_truth.csv" "$DEMO_OUT/deblend/catalogue.csv"
echo "   (true flux: the whole profile; deblended: the model's 45 x 45 stamp)"
echo
echo "== synthesis: 4 new maps whose WPH statistics (J 5, L 4, dn 2) match those of a 128 x 128 crop"
echo "   of the dust map (log, standardised), 100 L-BFGS iterations from white noise, then a"
echo "   validation on what the synthesis did not constrain (about a minute on 2 CPU cores)"
"$DEMIX" convert "$DEMO_MAP" "$DEMO_OUT/dust_crop.fits" --crop 0,0,128,128
"$DEMIX" synth "$DEMO_OUT/dust_crop.fits" --log --standardize -J 5 -L 4 --dn 2 --samples 4 \
  --iterations 100 --seed 1 -o "$DEMO_OUT/synth.fits"
"$DEMIX" validate "$DEMO_OUT/dust_crop.fits" "$DEMO_OUT/synth.fits" --log --report "$DEMO_OUT/validation"
"$DEMIX" preview "$DEMO_OUT/dust_crop.fits" "$DEMO_OUT/dust_crop.png" --stretch asinh
for k in 0 1; do
  "$DEMIX" preview "$DEMO_OUT/synth.fits" "$DEMO_OUT/synth_$k.png" --plane $k --stretch asinh
done
echo
echo "== separation: the crop plus white noise as strong as the signal (SNR 1), separated by"
echo "   matching its WPH and power-spectrum statistics, the noise known by 10 realizations"
echo "   (bias estimator, 3 eras of 30 L-BFGS iterations; about 20 s on 2 CPU cores)"
"$DEMIX" simulate observation "$DEMO_OUT/dust_crop.fits" --snr 1 --seed 7 -o "$DEMO_OUT/noisy.fits" \
  -M 10 --realizations-output "$DEMO_OUT/noise_realizations.fits"
"$DEMIX" separate "$DEMO_OUT/noisy.fits" --contamination "$DEMO_OUT/noise_realizations.fits" \
  --stats wph,ps -J 5 --eras 3 --iterations 30 -o "$DEMO_OUT/separated.fits" \
  --wiener "$DEMO_OUT/wiener.fits" --truth "$DEMO_OUT/dust_crop.fits" --report "$DEMO_OUT/separation"
for m in noisy separated wiener; do
  "$DEMIX" preview "$DEMO_OUT/$m.fits" "$DEMO_OUT/$m.png" --stretch asinh
done
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
echo "   blend.fits/.png   the simulated blend (6 bands; PNG: i, r, g as red, green, blue) and its"
echo "   blend_truth.csv   truth catalogue"
echo "   deblend/          galaxy_<k>.fits (6, 45, 45) models, residual.fits, catalogue.csv, r-band PNGs"
echo "   dust_crop.fits/.png  the 128 x 128 target of the synthesis"
echo "   synth.fits        4 synthesised maps (4, 128, 128), the target's header, LOSS table;"
echo "   synth.json        options, seed and loss history; synth_0.png, synth_1.png two of them"
echo "   validation/       validation.json and validation.png: spectrum, PDF, Minkowski functionals,"
echo "                     bispectra and peak counts of the target against the samples"
echo "   noisy.fits/.png   the crop plus white noise (SNR 1); noise_realizations.fits 10 more draws"
echo "   separated.fits    the separated signal (PNG beside it), CONTAM (d - s~) and LOSS extensions;"
echo "   separated.json    options and loss history; wiener.fits/.png the Wiener filter baseline"
echo "   separation/       separation.png: power spectra of d, s~, Wiener, noise and truth, and their"
echo "                     correlation with the truth per scale; validation.json/.png: s~ against"
echo "                     the truth (PDF, Minkowski functionals, bispectra, peaks)"

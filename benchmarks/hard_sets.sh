#!/usr/bin/env bash
# `tiepoint bench` on the hard-pair sets, each appended to OUT/<set>/results.json (same method and options
# replaced). Sets: real (Oxford, temple-32), relit-oxford, relit-temple, held-out (rendered scenes); also
# upright (the rendered scenes with upright cameras), run only when SETS names it.
# Usage: [SETS="real held-out"] bash benchmarks/hard_sets.sh OUT BENCH-OPTIONS...
#   e.g. bash benchmarks/hard_sets.sh benchmarks/glue --methods clidd-s96+mnn clidd-s96+glue
# The sets are written first by: tiepoint-lab data relit --dataset oxford --out data/bench/relit-oxford
#   tiepoint-lab data relit --dataset middlebury:1,2 --out data/bench/relit-temple
#   tiepoint-lab data scenes --out data/bench/scenes
#   tiepoint-lab data scenes --roll 10 --out data/bench/scenes-upright
set -euo pipefail
out=$1
shift
read -r -a sets <<< "${SETS:-real relit-oxford relit-temple held-out}"
shared=${TIEPOINT_DATA:-../shared/data}
run() { tiepoint bench --append --quiet "$@"; }
for set in "${sets[@]}"; do
  case $set in
    real) run "$@" --dataset oxford middlebury:1,2 --root "$shared" --output "$out/real" ;;
    relit-oxford) run "$@" --dataset oxford --root data/bench/relit-oxford --output "$out/relit-oxford" ;;
    relit-temple) run "$@" --dataset pairs:data/bench/relit-temple/pairs.txt --output "$out/relit-temple" ;;
    held-out) run "$@" --dataset pairs:data/bench/scenes/pairs.txt --output "$out/held-out" ;;
    upright) run "$@" --dataset pairs:data/bench/scenes-upright/pairs.txt --output "$out/upright" ;;
    *) echo "unknown set $set (sets: real relit-oxford relit-temple held-out upright)" >&2; exit 2 ;;
  esac
done

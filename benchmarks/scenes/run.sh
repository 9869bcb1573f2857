#!/usr/bin/env bash
# The hard-pair benchmarks of docs/scenes.md for one CLIDD S96 weights file, appended to the records here.
# Usage: bash benchmarks/scenes/run.sh WEIGHTS [SETS...]   (sets: real relit-oxford relit-temple held-out)
# The sets are written first by: tiepoint-lab data relit --dataset oxford --out data/bench/relit-oxford
#   tiepoint-lab data relit --dataset middlebury:1,2 --out data/bench/relit-temple
#   tiepoint-lab data scenes --out data/bench/scenes
set -euo pipefail
weights=$1
shift
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(real relit-oxford relit-temple held-out)
here=benchmarks/scenes
shared=${TIEPOINT_DATA:-../shared/data}
run() { tiepoint bench --methods clidd --option "weights=$weights" --append --quiet "$@"; }
for set in "${sets[@]}"; do
  case $set in
    real) run --dataset oxford middlebury:1,2 --root "$shared" --output "$here/real" ;;
    relit-oxford) run --dataset oxford --root data/bench/relit-oxford --output "$here/relit-oxford" ;;
    relit-temple) run --dataset pairs:data/bench/relit-temple/pairs.txt --output "$here/relit-temple" ;;
    held-out) run --dataset pairs:data/bench/scenes/pairs.txt --output "$here/held-out" ;;
    *) echo "unknown set $set" >&2; exit 2 ;;
  esac
done

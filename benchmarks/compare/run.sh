#!/usr/bin/env bash
# The comparison of docs/comparison.md: tiepoint's shipped methods beside the pretrained peers.
# Usage: bash benchmarks/compare/run.sh [METHODS...]
#   Each method runs on the hard-pair sets (benchmarks/hard_sets.sh; SETS chooses them), appended to the
#   records here. Without METHODS: every method of the page, then their time per 640x480 pair in one
#   interleaved run (pair_speed.json; run it on an otherwise idle machine), then the page's tables.
set -euo pipefail
ours="clidd clidd-a48+mnn clidd-t64+mnn raco-clidd-s96+mnn clidd-s96+glue sift+glue eloftr effl0-featsharp+mnn dinov2s-featsharp+mnn extreme sift"
peers="aliked-n16+lightglue aliked-n32+lightglue disk+lightglue raco-aliked+lightglue xfeat xfeat+lighterglue xfeat-star"
read -r -a methods <<< "${*:-$ours $peers}"
# the rotation between the cameras of each held-out scene pair, for the page's upright/rotated columns
python -c 'import json, sys; pairs = json.load(open(sys.argv[1]))["pairs"]
json.dump({"source": sys.argv[1], "angle_deg": {p["pair"]: p["angle_deg"] for p in pairs}},
          open(sys.argv[2], "w"), indent=1)' data/bench/scenes/benchmark.json benchmarks/compare/scene_rotations.json
for method in "${methods[@]}"; do
  bash benchmarks/hard_sets.sh benchmarks/compare --methods "$method"
done
if [ $# -eq 0 ]; then
  python benchmarks/match_speed.py "${methods[@]}" --repeats 5 --threads 2 \
    --output benchmarks/compare/pair_speed.json
  python -m tiepoint_lab.docs
fi

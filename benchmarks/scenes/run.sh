#!/usr/bin/env bash
# The hard-pair benchmarks of docs/scenes.md for one CLIDD S96 weights file, appended to the records here.
# Usage: bash benchmarks/scenes/run.sh WEIGHTS [SETS...]   (sets: real relit-oxford relit-temple held-out;
# how to write them: benchmarks/hard_sets.sh)
set -euo pipefail
weights=$1
shift
SETS="${*:-real relit-oxford relit-temple held-out}" bash benchmarks/hard_sets.sh benchmarks/scenes \
  --methods clidd --option "weights=$weights"

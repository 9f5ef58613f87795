#!/usr/bin/env bash
# Rebuild the embedded HRM checkpoints src/tinyreason/embedded/hrm-sudoku-tiny/ from scratch:
# generate easy sudoku, train (configs/hrm/train_sudoku_tiny.yaml), keep 4 checkpoints of the run,
# ship the held-out evaluation data beside them and measure the figures of the model card.
# About 15 minutes on 2 CPU cores. Usage: scripts/build_embedded_hrm.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
TR="$PY -m tinyreason.cli"
B=build/hrm-sudoku-tiny
DEST=src/tinyreason/embedded/hrm-sudoku-tiny
rm -rf "$B"; mkdir -p "$B"

# Training puzzles (unique solutions, 72 givens) and 200 test puzzles, from one seed.
$TR hrm build sudoku --out "$B/data-train" --generate 20000 --generate-test 200 --givens 72 --seed 0
# 256 further puzzles from another seed: never seen in training, shipped as the `train` split of
# the embedded data so ensemble weights / stackers have a held-out split to be fitted on.
$TR hrm build sudoku --out "$B/data-val" --generate 256 --generate-test 1 --givens 72 --seed 1

$TR hrm train --config configs/hrm/train_sudoku_tiny.yaml

rm -rf "$DEST"; mkdir -p "$DEST/data/train" "$DEST/data/test"
cp "$B"/run/step_* "$B/run/all_config.yaml" "$B/run/metrics.jsonl" "$B/run/training_curves.png" "$DEST/"
cp "$B/data-train/identifiers.json" "$DEST/data/"
cp "$B"/data-train/test/* "$DEST/data/test/"
cp "$B"/data-val/train/* "$DEST/data/train/"
$TR hrm compare --checkpoints "embedded:hrm-sudoku-tiny" --data "embedded:hrm-sudoku-tiny/data" --out "$B/compare.json"
$PY benchmarks/hrm_halting.py | tee "$B/halting.txt"
$PY scripts/embedded_hrm_card.py "$B/compare.json" "$B/halting.txt" "$DEST"

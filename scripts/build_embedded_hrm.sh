#!/usr/bin/env bash
# Rebuild the embedded HRM checkpoints src/tinyreason/embedded/hrm-sudoku-tiny/ from scratch:
# generate sudoku, train (configs/hrm/train_sudoku_tiny.yaml), keep the 4 checkpoints of the run,
# ship held-out easy puzzles beside them and measure the figures of the model card
# (compare table, ensembles beside their members, halting benchmark).
# About 15-20 minutes on 2 shared CPU cores. Usage: scripts/build_embedded_hrm.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
TR="$PY -m tinyreason.cli"
NAME=hrm-sudoku-tiny
B=build/$NAME
DEST=src/tinyreason/embedded/$NAME
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # on 2 shared cores one thread trains several times faster than two
export HF_HUB_OFFLINE=1
rm -rf "$B"; mkdir -p "$B"
START=$(date +%s)

# Training puzzles: 20,000 with unique solutions and 72 givens (9 blanks), plus 200 test puzzles
# for the evaluations during training, from one seed.
$TR hrm build sudoku --out "$B/data-train" --generate 20000 --generate-test 200 --givens 72 --seed 0
# The shipped data, from another seed: easy puzzles (77 givens, 4 blanks), never trained on:
# `test` (200) for the figures, `train` (256) as the held-out split for ensemble weights / stackers.
$TR hrm build sudoku --out "$B/data-easy" --generate 256 --generate-test 200 --givens 77 --seed 1

T0=$(date +%s)
$TR hrm train --config configs/hrm/train_sudoku_tiny.yaml
echo "$(( $(date +%s) - T0 ))" > "$B/train_seconds.txt"

rm -rf "$DEST"; mkdir -p "$DEST/data/train" "$DEST/data/test"
cp "$B"/run/step_* "$B/run/all_config.yaml" "$B/run/metrics.jsonl" "$B/run/training_curves.png" "$DEST/"
cp "$B/data-easy/identifiers.json" "$DEST/data/"
cp "$B"/data-easy/test/* "$DEST/data/test/"
cp "$B"/data-easy/train/* "$DEST/data/train/"

DATA="embedded:$NAME/data"
$TR hrm compare --checkpoints "embedded:$NAME" --data "$DATA" --out "$B/compare.json"
# Ensembles of the last three checkpoints, weights / stacker fitted on the held-out `train` split.
LAST3=$(ls "$DEST" | grep '^step_' | sort -t_ -k2 -n | tail -3 | sed "s|^|embedded:$NAME/|")
$TR hrm ensemble --checkpoints $LAST3 --strategy average --fit-weights true --data "$DATA" --out "$B/ensemble_average.json" --per-puzzle false
$TR hrm ensemble --checkpoints $LAST3 --strategy stack --data "$DATA" --out "$B/ensemble_stack.json" --per-puzzle false
$PY benchmarks/hrm_halting.py | tee "$B/halting.txt"
$PY scripts/embedded_hrm_card.py "$B" "$DEST"
echo "built $DEST in $(( $(date +%s) - START )) s"

#!/usr/bin/env bash
# Rebuild the embedded TRM checkpoints src/tinyreason/embedded/trm-sudoku-tiny/ from scratch:
# the same training puzzles as hrm-sudoku-tiny (scripts/build_embedded_hrm.sh), training with
# configs/hrm/train_sudoku_trm_tiny.yaml, 3 of its checkpoints shipped beside a held-out set of
# hard puzzles (35 givens), then both embedded models compared on three held-out sets and the
# model card written from the measurements. Needs the embedded HRM (embedded:hrm-sudoku-tiny).
# About 15 minutes of training on an idle core (more on a shared machine: the card records
# wall and CPU time). Usage: scripts/build_embedded_trm.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
TR="$PY -m tinyreason.cli"
NAME=trm-sudoku-tiny
B=build/$NAME
DEST=src/tinyreason/embedded/$NAME
KEEP="step_750 step_3000 step_4500"  # 0.9 MB each (3 keep the folder under 3 MB): early, equal steps with the HRM, last
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # on 2 shared cores one thread trains several times faster than two
export HF_HUB_OFFLINE=1
rm -rf "$B"; mkdir -p "$B"
START=$(date +%s)

# Training puzzles: exactly the HRM model's (20,000 with 72 givens + 200 test puzzles, seed 0).
$TR hrm build sudoku --out "$B/data-train" --generate 20000 --generate-test 200 --givens 72 --seed 0
# Held-out puzzles a person would call a puzzle: 35 givens (46 blanks), seed 2; only `test` is shipped.
$TR hrm build sudoku --out "$B/data-hard" --generate 1 --generate-test 200 --givens 35 --seed 2

{ uptime; lscpu | grep -E "^(Model name|CPU\(s\)|Flags):"; } > "$B/machine.txt"
TIMEFORMAT="%R %U %S"  # wall, user CPU, system CPU seconds of the training process
{ time $TR hrm train --config configs/hrm/train_sudoku_trm_tiny.yaml > "$B/train.log" 2>&1; } 2> "$B/train_time.txt"
uptime >> "$B/machine.txt"

rm -rf "$DEST"; mkdir -p "$DEST/data-hard/test"
for s in $KEEP; do cp "$B/run/$s" "$DEST/"; done
cp "$B/run/all_config.yaml" "$B/run/metrics.jsonl" "$B/run/training_curves.png" "$DEST/"
cp "$B/data-hard/identifiers.json" "$DEST/data-hard/"
cp "$B"/data-hard/test/* "$DEST/data-hard/test/"

HRM=embedded:hrm-sudoku-tiny/step_3000
TRM_ALL=$(for s in $KEEP; do printf "embedded:$NAME/%s " "$s"; done)
TRM_FIRST=embedded:$NAME/${KEEP%% *}
TRM_LAST=embedded:$NAME/${KEEP##* }
# Easy held-out puzzles shipped with the HRM (77 givens), the training kind (72 givens, test
# split of the training data) and the hard set (35 givens): one compare table each.
$TR hrm compare --checkpoints $HRM $TRM_ALL --data embedded:hrm-sudoku-tiny/data --out "$B/compare_easy.json" --per-puzzle false
$TR hrm compare --checkpoints $HRM $TRM_ALL --data "$B/data-train" --out "$B/compare_train_kind.json" --per-puzzle false
$TR hrm compare --checkpoints $HRM $TRM_ALL --data "embedded:$NAME/data-hard" --out "$B/compare_hard.json" --per-puzzle false
# Blank cells filled right, per puzzle (noise, and paired differences of the two last checkpoints).
$PY scripts/sudoku_blank_eval.py "$B/blank_easy.json" embedded:hrm-sudoku-tiny/data $HRM $TRM_FIRST $TRM_LAST
$PY scripts/sudoku_blank_eval.py "$B/blank_train_kind.json" "$B/data-train" $HRM $TRM_FIRST $TRM_LAST
$PY scripts/sudoku_blank_eval.py "$B/blank_hard.json" "embedded:$NAME/data-hard" $HRM $TRM_FIRST $TRM_LAST
$PY scripts/embedded_trm_card.py "$B" "$DEST"
echo "built $DEST in $(( $(date +%s) - START )) s"

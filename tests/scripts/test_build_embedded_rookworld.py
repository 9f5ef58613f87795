"""scripts/build_embedded_rookworld.sh: every training command it runs parses into its typed config.

The script takes hours, so CI does not run it; this keeps its `chess sft` / `chess grpo` lines in step
with the configs and the config classes (a renamed field or reward would otherwise surface only in
the next rebuild)."""

from __future__ import annotations

import shlex
from pathlib import Path

from tinyreason.chess.tasks import TASKS
from tinyreason.config import parse_command
from tinyreason.lm.grpo_train import GRPOTrainConfig
from tinyreason.lm.sft import SFTConfig
from tinyreason.lm.tasks import reward_weights

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_embedded_rookworld.sh"


def training_commands(work: str) -> list[tuple[str, list[str]]]:
    """(`sft` or `grpo`, argv after it) for each `$TR chess sft|grpo` line, with $WORK set to `work`."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("$TR chess sft ") or line.startswith("$TR chess grpo "):
            argv = shlex.split(line.replace("$WORK", work))
            out.append((argv[2], argv[3:]))
    return out


def _parse(kind: str, argv: list[str]):
    argv = [str(ROOT / a) if a.startswith("configs/") else a for a in argv]
    return parse_command(SFTConfig if kind == "sft" else GRPOTrainConfig, argv)


def test_the_build_runs_its_six_stages_in_order(tmp_path):
    work = str(tmp_path)
    cmds = training_commands(work)
    assert [k for k, _ in cmds] == ["sft", "sft", "grpo", "sft", "grpo"]
    sft1, sft2, grpo3, sft4, grpo6 = (_parse(k, a) for k, a in cmds)
    assert sft1.model == f"{work}/init" and sft1.train_data == [f"{work}/train.txt"]
    assert sft2.model == f"{work}/stage1" and sft2.train_data == [f"{work}/train2.txt"]
    # stage 3: the long GRPO recipe from stage 2's bf16 weights, a fixed step count, no time budget
    assert grpo3.model == f"{work}/stage2" and grpo3.train_data == [f"{work}/train2.txt"]
    assert grpo3.max_steps == 4095 and grpo3.time_budget_min is None and grpo3.schedule == "constant"
    weights = reward_weights(TASKS, grpo3.reward_weights)
    assert weights["policy"]["policy_valid_best_move"] == 1.0 and weights["policy"]["policy_best_move"] == 0.0
    # stage 4: the longer SFT, also from stage 2; stage 6: the same GRPO recipe, from the merge (stage 5)
    assert sft4.model == f"{work}/stage2" and sft4.train_data == [f"{work}/train2.txt"]
    assert (sft4.max_steps, sft4.lr, sft4.seed) == (10000, 5e-4, 1)
    assert grpo6.model == f"{work}/stage5" and grpo6.max_steps == 200 and grpo6.time_budget_min is None
    assert grpo6.reward_weights == grpo3.reward_weights and grpo6.lr == grpo3.lr
    text = SCRIPT.read_text()
    for line in ('ship_bf16 "$WORK/sft2" "$WORK/stage2"', 'ship_bf16 "$WORK/grpo" "$WORK/stage3"',
                 'ship_bf16 "$WORK/sft3" "$WORK/stage4"', 'ship_bf16 "$WORK/grpo6" "$WORK/shipped"',
                 '$PY scripts/merge_task_vectors.py "$WORK/stage2" "$WORK/stage5" --add "$WORK/stage3" 0.75 '
                 '--add "$WORK/stage4" 1'):
        assert line in text, line

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


def test_the_build_runs_two_sft_stages_then_grpo_from_stage_two(tmp_path):
    work = str(tmp_path)
    cmds = training_commands(work)
    assert [k for k, _ in cmds] == ["sft", "sft", "grpo"]
    sft1, sft2, grpo = (_parse(k, a) for k, a in cmds)
    assert sft1.model == f"{work}/init" and sft1.train_data == [f"{work}/train.txt"]
    assert sft2.model == f"{work}/stage1" and sft2.train_data == [f"{work}/train2.txt"]
    # stage 3: the long GRPO recipe from stage 2's bf16 weights, a fixed step count, no time budget
    assert grpo.model == f"{work}/stage2" and grpo.train_data == [f"{work}/train2.txt"]
    assert grpo.max_steps == 4095 and grpo.time_budget_min is None and grpo.schedule == "constant"
    weights = reward_weights(TASKS, grpo.reward_weights)
    assert weights["policy"]["policy_valid_best_move"] == 1.0 and weights["policy"]["policy_best_move"] == 0.0
    text = SCRIPT.read_text()
    assert 'ship_bf16 "$WORK/sft2" "$WORK/stage2"' in text and 'ship_bf16 "$WORK/grpo" "$WORK/shipped"' in text

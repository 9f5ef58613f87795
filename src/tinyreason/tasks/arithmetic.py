"""Addition as a verifiable task (`12+35=` -> `47`): the pattern for bringing your own task to GRPO.

A task is `tinyreason.lm.tasks.Task`: reward functions with TRL's signature, their weights
and held-out metrics. Its examples come from a loader `load(ref, split, limit)`; here a
reference names a generated problem set, `sums:<max>`: every `a+b=` with 0 <= a, b <= max,
shuffled once (fixed seed), the first 80% the `train` split and the rest `test` (split None:
all). The verifier computes the sum from the prompt; the reference completion is not needed.

    from tinyreason.lm.grpo_train import GRPOTrainConfig, train
    from tinyreason.tasks import arithmetic
    cfg = GRPOTrainConfig(model="runs/add_sft/checkpoints/step_0000300", train_data=["sums:9"],
                          eval_data=["sums:9"], task_ratio="1", ...)
    train(cfg, arithmetic.TASKS, arithmetic.load)

(a model that has seen the format first: `tinyreason.lm.sft.train(sft_cfg, arithmetic.load)`;
docs/lm.md, "Bring your own task").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from tinyreason.errors import UserError
from tinyreason.lm.tasks import Example, Task

PROMPT = re.compile(r"(\d+)\+(\d+)=")
TRAIN_SHARE = 0.8


def _answer(completion: str) -> str:
    """The completion as generated, without the surrounding whitespace (a newline may end it)."""
    return completion.strip()


def verify(prompt: str, completion: str) -> bool:
    """Whether `completion` is the sum asked by `prompt` (`a+b=`), written as plain digits."""
    m = PROMPT.fullmatch(prompt)
    if m is None:
        raise UserError(f"not an addition prompt 'a+b=': {prompt!r}")
    answer = _answer(completion)
    return answer.isdigit() and int(answer) == int(m[1]) + int(m[2])


def correct(prompts: list[str], completions: list[str], **_) -> list[float]:
    """1 for the right sum, else 0."""
    return [float(verify(p, c)) for p, c in zip(prompts, completions)]


def digits_only(prompts: list[str], completions: list[str], **_) -> list[float]:
    """1 when the completion is a number (digits only, at most one more than the sum can have), else 0."""
    out = []
    for p, c in zip(prompts, completions):
        answer, m = _answer(c), PROMPT.fullmatch(p)
        width = len(str(int(m[1]) + int(m[2]))) + 1 if m else 0
        out.append(float(answer.isdigit() and len(answer) <= width))
    return out


def metrics(examples: Sequence[Example], completions: Sequence[str]) -> dict[str, float | int | None]:
    """n_add, add_accuracy (right sums), add_digits_rate (number-shaped answers); None without examples."""
    n = len(examples)
    prompts = [e.prompt for e in examples]
    return {"n_add": n,
            "add_accuracy": sum(correct(prompts, list(completions))) / n if n else None,
            "add_digits_rate": sum(digits_only(prompts, list(completions))) / n if n else None}


TASKS: dict[str, Task] = {
    "add": Task({"correct": correct, "digits_only": digits_only}, {"correct": 1.0, "digits_only": 0.2}, metrics),
}


def load(ref: str, split: str | None, limit: int | None) -> list[Example]:
    """The problems of `sums:<max>` in the split (`train`, `test` or None for all), at most `limit`."""
    m = re.fullmatch(r"sums:(\d+)", str(ref))
    if m is None:
        raise UserError(f"arithmetic data is named 'sums:<max operand>' (e.g. sums:9), not {ref!r}")
    top = int(m[1])
    if not 1 <= top <= 999:
        raise UserError(f"sums:<max>: max must be 1..999, got {top}")
    pairs = [(a, b) for a in range(top + 1) for b in range(top + 1)]
    order = np.random.default_rng(0).permutation(len(pairs))
    cut = int(len(pairs) * TRAIN_SHARE)
    if split == "train":
        order = order[:cut]
    elif split == "test":
        order = order[cut:]
    elif split is not None:
        raise UserError(f"arithmetic splits are train and test (or null for all), not {split!r}")
    examples = [Example("add", f"{pairs[i][0]}+{pairs[i][1]}=", str(sum(pairs[i]))) for i in order]
    return examples if limit is None else examples[:limit]

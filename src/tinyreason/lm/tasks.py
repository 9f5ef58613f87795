"""Verifiable tasks for the LM trainers: what GRPO needs to know about a task, and nothing else.

A task is data, not a subclass: its reward functions (TRL's signature), their default
weights and its held-out metrics. Its prompts come from a loader, `load(ref, split, limit)`,
that the caller hands the trainer with the tasks: one data reference may hold examples of
several tasks (a RookWorld file interleaves policy and environment samples), and `limit`
and the held-out cut apply to the reference as it is read, so the loader belongs to the
set of tasks rather than to each one. Every example names its task.

Reward functions take `(prompts, completions, **columns)` and return one float per
completion, or None where the function does not apply (as TRL: None adds nothing to the
total and is left out of that function's logged mean). The trainer passes the column
`reference=` (each example's reference completion), so the functions can be handed to
TRL's GRPOTrainer unchanged. See docs/lm.md "Bring your own task".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tinyreason.errors import UserError

RewardFunc = Callable[..., list]  # (prompts: list[str], completions: list[str], **columns) -> list[float | None]


class ExampleLike(Protocol):
    """What the trainers read of an example (chess's `Sample` has the same three fields)."""

    task: str
    prompt: str
    completion: str


@dataclass(frozen=True)
class Example:
    """One prompt of a task with its reference completion (the ground truth the rewards may use)."""

    task: str
    prompt: str
    completion: str

    @property
    def text(self) -> str:
        return self.prompt + self.completion


Loader = Callable[[str, str | None, int | None], Sequence[ExampleLike]]  # (ref, split, limit) -> examples
Metrics = Callable[[Sequence[ExampleLike], Sequence[str]], dict]  # (examples, greedy completions) -> rates


@dataclass(frozen=True)
class Task:
    """A verifiable task: reward functions by name, their default weights, held-out metrics.

    `weights` lists the rewards that count (weight 0 keeps a function known, so a config can
    turn it on, without computing it). `metrics(examples, completions)` is called on the
    task's held-out examples (possibly none) and returns rates named `<task>_<rate>`, so the
    logged `eval/<task>_<rate>` keys group by task in metrics.jsonl and curves.png.
    """

    rewards: dict[str, RewardFunc]
    weights: dict[str, float]
    metrics: Metrics

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(self.rewards))
        if unknown:
            raise ValueError(f"weights for unknown reward(s) {unknown} (rewards: {sorted(self.rewards)})")


def reward_weights(tasks: dict[str, Task], overrides: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each task's default reward weights with `overrides` (task -> reward -> weight) applied."""
    out = {name: dict(task.weights) for name, task in tasks.items()}
    for name, w in overrides.items():
        if name not in out:
            raise UserError(f"reward_weights: unknown task '{name}' ({' or '.join(out)})")
        unknown = set(w) - set(tasks[name].rewards)
        if unknown:
            raise UserError(f"reward_weights.{name}: unknown reward(s) {sorted(unknown)} (have {sorted(tasks[name].rewards)})")
        out[name].update(w)
    return out


def score(task: Task, weights: dict[str, float], prompts: list[str], completions: list[str],
          references: list[str]) -> tuple[list[float], dict[str, list[float | None]]]:
    """Weighted sum of a task's rewards and each component by name (zero weights skipped, None adds 0)."""
    components: dict[str, list[float | None]] = {}
    total = [0.0] * len(completions)
    for name, w in weights.items():
        if w == 0:
            continue
        values = task.rewards[name](prompts, completions, reference=references)
        if len(values) != len(completions):
            raise UserError(f"reward '{name}' returned {len(values)} values for {len(completions)} completions")
        components[name] = values
        total = [t if v is None else t + w * v for t, v in zip(total, values)]
    return total, components


def check_tasks(tasks: dict[str, Task], examples: Sequence[ExampleLike], where: str) -> None:
    """UserError when an example names a task that is not in `tasks`."""
    unknown = sorted({e.task for e in examples} - set(tasks))
    if unknown:
        raise UserError(f"{where}: examples of unknown task(s) {unknown} (tasks: {', '.join(tasks)})")

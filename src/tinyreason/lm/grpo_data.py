"""GRPO prompts and rewards: the task mix of a step's prompts and scoring of sampled completions.

Generic over tasks (`tinyreason.lm.tasks.Task`); the tasks and their loader come from the caller
(chess: `tinyreason.chess.tasks`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from tinyreason.errors import UserError
from tinyreason.lm.tasks import ExampleLike, Loader, Task, check_tasks, score


def parse_ratio(text: str) -> tuple[Fraction, ...]:
    """Shares (summing to 1) of a task ratio 'a:b[:c...]' (tasks in order; policy:env for chess)."""
    try:
        parts = [Fraction(x.strip()).limit_denominator(1000) for x in text.split(":")]
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"task_ratio must be shares of the tasks in order like 1:1 (policy:env), got {text!r}") from None
    if any(p < 0 for p in parts) or sum(parts) == 0:
        raise ValueError(f"task_ratio needs non-negative parts, not all 0: {text!r}")
    return tuple(p / sum(parts) for p in parts)


class TaskMixer:
    """Prompts for a step as a pure function of (step, rank): resuming needs only the step.

    Global prompt k goes to the first task when floor((k+1)f) > floor(kf) (f = its share), so
    the mix is exact over any window; otherwise it is prompt k - floor(kf) of the remaining
    tasks, mixed the same way with their renormalised shares. Each task walks its own
    reshuffled epochs.
    """

    def __init__(self, pools: dict[str, list[ExampleLike]], shares: tuple[Fraction, ...], seed: int):
        if len(shares) != len(pools):
            raise UserError(f"task_ratio has {len(shares)} part(s) for {len(pools)} task(s) ({':'.join(pools)})")
        self.pools, self.names, self.seed = pools, list(pools), seed
        self.cond = []  # each task's share of the prompts that reach it (those the earlier tasks left)
        for i, share in enumerate(shares):
            rest = sum(shares[i:], Fraction(0))
            self.cond.append(share / rest if rest > 0 else Fraction(1))
            if share > 0 and not pools[self.names[i]]:
                raise UserError(f"task_ratio asks for {self.names[i]} prompts but the training data has none")
        self._perm: dict[str, tuple[int, np.ndarray]] = {}  # task -> (epoch, its permutation)

    def _item(self, i: int, j: int) -> ExampleLike:
        task = self.names[i]
        pool = self.pools[task]
        epoch, j = divmod(j, len(pool))
        if self._perm.get(task, (-1,))[0] != epoch:
            self._perm[task] = (epoch, np.random.default_rng([self.seed, epoch, i]).permutation(len(pool)))
        return pool[int(self._perm[task][1][j])]

    def at(self, k: int) -> ExampleLike:
        for i, f in enumerate(self.cond[:-1]):
            n = math.floor(k * f)
            if math.floor((k + 1) * f) > n:
                return self._item(i, n)
            k -= n
        return self._item(len(self.names) - 1, k)

    def batch(self, step: int, n: int, rank: int, world: int) -> list[ExampleLike]:
        base = ((step - 1) * world + rank) * n
        return [self.at(base + j) for j in range(n)]

    def position(self, step: int, n: int, world: int) -> dict[str, int]:
        k = step * world * n
        out = {"prompts_drawn": k}
        for name, f in zip(self.names[:-1], self.cond[:-1]):
            out[f"{name}_drawn"] = math.floor(k * f)
            k -= out[f"{name}_drawn"]
        out[f"{self.names[-1]}_drawn"] = k
        return out


def load_pools(load: Loader, tasks: dict[str, Task], refs: list[str], split: str | None,
               limit: int | None) -> dict[str, list[ExampleLike]]:
    """Each task's training examples from the data references (each read with `limit`)."""
    pools: dict[str, list[ExampleLike]] = {name: [] for name in tasks}
    for ref in refs:
        examples = load(ref, split, limit)
        check_tasks(tasks, examples, ref)
        for e in examples:
            pools[e.task].append(e)
    return pools


def score_rows(tasks: dict[str, Task], batch: list[ExampleLike], completions: list[str], g: int,
               weights: dict[str, dict[str, float]]) -> tuple[list[float], list[dict[str, float | None]]]:
    """Total reward and components per row (row r answers batch[r // g]), one `score` call per task."""
    totals: list[float] = [0.0] * len(completions)
    parts: list[dict[str, float | None]] = [{} for _ in completions]
    for name, task in tasks.items():
        rows = [r for r in range(len(completions)) if batch[r // g].task == name]
        if not rows:
            continue
        tot, comps = score(task, weights[name], [batch[r // g].prompt for r in rows], [completions[r] for r in rows],
                           [batch[r // g].completion for r in rows])
        for i, r in enumerate(rows):
            totals[r] = float(tot[i])
            parts[r] = {fn: None if vals[i] is None else float(vals[i]) for fn, vals in comps.items()}
    return totals, parts

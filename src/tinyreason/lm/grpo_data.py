"""GRPO prompts and rewards: the policy:env task mix and scoring of sampled completions."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from tinyreason.chess.data import Sample, load_samples
from tinyreason.chess.rewards import DEFAULT_WEIGHTS, score
from tinyreason.errors import UserError


def parse_ratio(text: str) -> Fraction:
    """Policy share of a 'policy:env' ratio."""
    try:
        p, e = (Fraction(x.strip()).limit_denominator(1000) for x in text.split(":"))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"task_ratio must be 'policy:env' like 1:1, got {text!r}") from None
    if p < 0 or e < 0 or p + e == 0:
        raise ValueError(f"task_ratio needs non-negative parts, not both 0: {text!r}")
    return p / (p + e)


class TaskMixer:
    """Prompts for a step as a pure function of (step, rank): resuming needs only the step.

    Global prompt k goes to policy when floor((k+1)f) > floor(kf) (f = policy share), so
    the mix is exact over any window; each task walks its own reshuffled epochs.
    """

    def __init__(self, pools: dict[str, list[Sample]], policy_share: Fraction, seed: int):
        self.pools, self.f, self.seed = pools, policy_share, seed
        for task, share in (("policy", policy_share), ("env", 1 - policy_share)):
            if share > 0 and not pools.get(task):
                raise UserError(f"task_ratio asks for {task} prompts but the training data has none")
        self._perm: dict[str, tuple[int, np.ndarray]] = {}  # task -> (epoch, its permutation)

    def _item(self, task: str, i: int) -> Sample:
        pool = self.pools[task]
        epoch, j = divmod(i, len(pool))
        if self._perm.get(task, (-1,))[0] != epoch:
            self._perm[task] = (epoch, np.random.default_rng([self.seed, epoch, task == "env"]).permutation(len(pool)))
        return pool[int(self._perm[task][1][j])]

    def at(self, k: int) -> Sample:
        n_pol = math.floor(k * self.f)
        if math.floor((k + 1) * self.f) > n_pol:
            return self._item("policy", n_pol)
        return self._item("env", k - n_pol)

    def batch(self, step: int, n: int, rank: int, world: int) -> list[Sample]:
        base = ((step - 1) * world + rank) * n
        return [self.at(base + j) for j in range(n)]

    def position(self, step: int, n: int, world: int) -> dict[str, int]:
        k = step * world * n
        return {"prompts_drawn": k, "policy_drawn": math.floor(k * self.f), "env_drawn": k - math.floor(k * self.f)}


def load_pools(refs: list[str], split: str | None, limit: int | None) -> dict[str, list[Sample]]:
    pools: dict[str, list[Sample]] = {"policy": [], "env": []}
    for ref in refs:
        for s in load_samples(ref, split=split, limit=limit):
            pools[s.task].append(s)
    return pools


def reward_weights(overrides: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The chess domain's default reward weights per task with `overrides` applied."""
    out = {task: dict(w) for task, w in DEFAULT_WEIGHTS.items()}
    for task, w in overrides.items():
        if task not in out:
            raise UserError(f"reward_weights: unknown task '{task}' (policy or env)")
        unknown = set(w) - set(out[task])
        if unknown:
            raise UserError(f"reward_weights.{task}: unknown reward(s) {sorted(unknown)} (have {sorted(out[task])})")
        out[task].update(w)
    return out


def score_rows(batch: list[Sample], completions: list[str], g: int, weights) -> tuple[list[float], list[dict[str, float]]]:
    """Total reward and components per row (row r answers batch[r // g]), one score() call per task."""
    totals: list[float] = [0.0] * len(completions)
    parts: list[dict[str, float]] = [{} for _ in completions]
    for task in ("policy", "env"):
        rows = [r for r in range(len(completions)) if batch[r // g].task == task]
        if not rows:
            continue
        tot, comps = score(task, [batch[r // g].prompt for r in rows], [completions[r] for r in rows],
                           [batch[r // g].completion for r in rows], weights[task])
        for i, r in enumerate(rows):
            totals[r] = float(tot[i])
            parts[r] = {name: float(vals[i]) for name, vals in comps.items()}
    return totals, parts

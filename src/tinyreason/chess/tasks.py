"""The RookWorld tasks for the generic LM trainers: policy and environment (`TASKS`), and their loader.

Rewards and default weights are `tinyreason.chess.rewards`; held-out metrics are
`tinyreason.chess.eval_metrics` (policy: legal-move rate and best-move accuracy against the
reference's top eval, format rate; env: exact FEN and exact completion against the arbiter).
`load` is `tinyreason.chess.data.load_samples`: one RookWorld file interleaves both tasks,
each sample naming its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinyreason.chess import eval_metrics
from tinyreason.chess.data import Sample, load_samples
from tinyreason.chess.rewards import DEFAULT_WEIGHTS, REWARD_FUNCS
from tinyreason.lm.tasks import Task


def policy_metrics(samples: Sequence[Sample], completions: Sequence[str]) -> dict[str, float | int | None]:
    """n_policy, policy_legal_rate, policy_best_move_accuracy, policy_format_rate (None without samples)."""
    records = [eval_metrics.score_policy(s.prompt, s.completion, c) for s, c in zip(samples, completions)]
    summary = eval_metrics.summarize_policy(records) if records else {}
    return {"n_policy": len(records), "policy_legal_rate": summary.get("legal_best_move_rate"),
            "policy_best_move_accuracy": summary.get("best_move_accuracy"),
            "policy_format_rate": summary.get("format_valid_rate")}


def env_metrics(samples: Sequence[Sample], completions: Sequence[str]) -> dict[str, float | int | None]:
    """n_env, env_fen_exact_rate, env_exact_rate (None without samples)."""
    records = [eval_metrics.score_env(s.prompt, c) for s, c in zip(samples, completions)]
    summary = eval_metrics.summarize_env(records) if records else {}
    return {"n_env": len(records), "env_fen_exact_rate": summary.get("fen_exact_rate"),
            "env_exact_rate": summary.get("exact_rate")}


TASKS: dict[str, Task] = {
    "policy": Task(REWARD_FUNCS["policy"], DEFAULT_WEIGHTS["policy"], policy_metrics),  # P: <FEN> -> M: E: B:
    "env": Task(REWARD_FUNCS["env"], DEFAULT_WEIGHTS["env"], env_metrics),  # A: <FEN>+<move>+<history>+ -> FEN+r+t+t
}


def load(ref: str, split: str | None, limit: int | None) -> list[Sample]:
    """RookWorld samples of both tasks from a file, folder or Hub dataset (`load_samples`)."""
    return load_samples(ref, split=split, limit=limit)

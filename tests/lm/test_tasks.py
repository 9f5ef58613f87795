"""Tasks for the generic trainers: `lm/` imports no chess, unknown tasks are refused, held-out metrics
are each task's own, and the chess tasks are built from the chess rewards and metrics."""

import ast
from pathlib import Path

import pytest

import tinyreason.lm
from tinyreason.errors import UserError
from tinyreason.lm.heldout import evaluate_samples
from tinyreason.lm.tasks import Example, Task, check_tasks


def test_lm_imports_no_chess():
    for path in Path(tinyreason.lm.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) and node.module else []
            assert not any(n.startswith("tinyreason.chess") for n in names), (path.name, names)


def _rate(name):
    def metrics(examples, completions):
        n = len(examples)
        return {f"n_{name}": n, f"{name}_exact": sum(e.completion == c for e, c in zip(examples, completions)) / n if n else None}
    return metrics


def test_heldout_metrics_are_each_tasks_own():
    tasks = {"a": Task({}, {}, _rate("a")), "b": Task({}, {}, _rate("b")), "c": Task({}, {}, _rate("c"))}
    examples = [Example("a", "1", "x"), Example("b", "2", "y"), Example("a", "3", "z")]
    got = evaluate_samples(tasks, examples, ["x", "n", "n"])
    assert got == {"n_a": 2, "a_exact": 0.5, "n_b": 1, "b_exact": 0.0, "n_c": 0, "c_exact": None}
    with pytest.raises(UserError, match=r"unknown task\(s\) \['d'\]"):
        check_tasks(tasks, examples + [Example("d", "", "")], "eval_data")


def test_chess_tasks_are_the_chess_rewards_and_metrics():
    from tinyreason.chess import rewards
    from tinyreason.chess.data import split_text
    from tinyreason.chess.tasks import TASKS

    assert list(TASKS) == ["policy", "env"]
    for name, task in TASKS.items():
        assert task.rewards == rewards.REWARD_FUNCS[name] and task.weights == rewards.DEFAULT_WEIGHTS[name]
    s = split_text("P: rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1 M: e2e4 d2d4 E: 0.3 0.2 B: e2e4")
    got = TASKS["policy"].metrics([s], [s.completion])
    assert got == {"n_policy": 1, "policy_legal_rate": 1.0, "policy_best_move_accuracy": 1.0, "policy_format_rate": 1.0}
    assert TASKS["env"].metrics([], []) == {"n_env": 0, "env_fen_exact_rate": None, "env_exact_rate": None}

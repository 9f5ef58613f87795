"""GRPO curves: per-task series split out of metrics.jsonl records, EMA smoothing, the PNG written."""

import pytest

from tinyreason.lm.curves import ema, grpo_panels, plot_grpo_curves, smoothing_span
from tinyreason.runlog import RunDir


def _records(steps: int = 12) -> list[dict]:
    """GRPO-shaped records: every step mixes both tasks; an eval line every 4 steps (a second record at that step)."""
    out = []
    for s in range(1, steps + 1):
        rec = {"step": s, "loss": 0.1, "reward_mean": 0.3 + 0.4 * (s % 2), "kl": 0.01 * s, "entropy": 1.0,
               "completion_len_mean": 40.0 + s, "reward/policy/mean": 0.1 * s, "reward/policy/std": 0.2,
               "reward/policy/policy_best_move": 0.02 * s, "reward/policy/policy_best_move/std": 0.5,
               "reward/policy/policy_legal_moves": 0.5, "reward/policy/policy_legal_moves/std": 0.1,
               "reward/env/mean": 0.9 - 0.01 * s, "reward/env/std": 0.1, "reward/env/env_fen_exact": 0.0,
               "reward/env/env_fen_exact/std": 0.0}
        if s == 3:
            rec["reward/env/env_fen_exact"] = None  # a NaN logged as null: no point
        out.append(rec)
        if s % 4 == 0:
            out.append({"step": s, "eval/n_policy": 8, "eval/n_env": 8, "eval/policy_legal_rate": 0.25 + 0.01 * s,
                        "eval/policy_best_move_accuracy": 0.0, "eval/env_fen_exact_rate": 0.5})
    return out


def test_grpo_panels_split_the_series_by_task():
    panels = {p.title: p for p in grpo_panels(_records())}
    assert list(panels) == ["reward by task (mean)", "policy reward functions (mean)", "env reward functions (mean)",
                            "KL to the reference", "entropy", "completion length (mean)", "eval policy (greedy)",
                            "eval env (greedy)"]
    by_task = {label: (steps, values) for label, steps, values in panels["reward by task (mean)"].lines}
    assert list(by_task) == ["policy", "env"]
    assert by_task["policy"] == (list(range(1, 13)), pytest.approx([0.1 * s for s in range(1, 13)]))
    assert by_task["env"][1] == pytest.approx([0.9 - 0.01 * s for s in range(1, 13)])
    policy_fns = panels["policy reward functions (mean)"].lines
    assert [label for label, _, _ in policy_fns] == ["policy_best_move", "policy_legal_moves"]  # no /std, mean, std
    (env_fn,) = panels["env reward functions (mean)"].lines
    assert env_fn[0] == "env_fen_exact" and env_fn[1] == [s for s in range(1, 13) if s != 3]
    evals = panels["eval policy (greedy)"]
    assert not evals.smooth and panels["KL to the reference"].smooth
    assert [(label, steps) for label, steps, _ in evals.lines] == [("legal_rate", [4, 8, 12]), ("best_move_accuracy", [4, 8, 12])]
    assert [label for label, _, _ in panels["eval env (greedy)"].lines] == ["fen_exact_rate"]  # not the counts n_*


def test_a_single_task_run_and_old_records():
    policy_only = [{k: v for k, v in r.items() if "/env" not in k and "eval/env" not in k} for r in _records()]
    titles = [p.title for p in grpo_panels(policy_only)]
    assert "env reward functions (mean)" not in titles and "eval env (greedy)" not in titles
    assert [label for label, _, _ in grpo_panels(policy_only)[0].lines] == ["policy"]
    no_tasks = [{"step": s, "reward_mean": 0.5, "kl": 0.0} for s in (1, 2)]
    assert [(p.title, [x[0] for x in p.lines]) for p in grpo_panels(no_tasks)] == [
        ("reward (mean)", ["all"]), ("KL to the reference", ["kl"])]
    assert grpo_panels([]) == []


def test_ema_is_debiased_and_follows_a_step():
    assert ema([], 5) == []
    assert ema([2.0, 2.0, 2.0], 9) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0 at the start
    assert ema([1.0, 5.0], 1) == [1.0, 5.0]  # span 1: no smoothing
    zigzag = ema([0.0, 1.0] * 50, 10)
    assert all(0.3 < v < 0.7 for v in zigzag[20:])  # the alternation averaged out
    assert smoothing_span(5) == 1 and smoothing_span(200) == 20 and smoothing_span(10**5) == 50


@pytest.mark.slow
def test_plot_grpo_curves_writes_a_png(tmp_path):
    run = RunDir(tmp_path / "run")
    for rec in _records():
        run.log(rec)
    out = plot_grpo_curves(run.path, title="GRPO test")
    assert out == tmp_path / "run" / "curves.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_grpo_curves(tmp_path / "empty") is None


def test_any_task_names_and_an_eval_only_task():
    records = [{"step": s, "reward_mean": 0.1 * s, "reward/add/mean": 0.1 * s, "reward/add/correct": 0.1 * s}
               for s in (1, 2)] + [{"step": 2, "eval/n_add": 4, "eval/add_accuracy": 0.5, "eval/env_exact_rate": 0.25}]
    titles = [p.title for p in grpo_panels(records)]
    assert titles[:2] == ["reward by task (mean)", "add reward functions (mean)"] and "eval add (greedy)" in titles
    assert "eval env (greedy)" not in titles  # a task is known from its rewards unless the run names it
    named = {p.title: p for p in grpo_panels(records, ["add", "env"])}
    assert [line[0] for line in named["eval env (greedy)"].lines] == ["exact_rate"]

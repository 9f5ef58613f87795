"""Task mix: exact task ratio over any window, deterministic per step, epochs reshuffled; scoring rows by task."""

import math
from fractions import Fraction

import pytest

from tinyreason.chess.data import Sample
from tinyreason.errors import UserError
from tinyreason.lm.grpo_data import TaskMixer, parse_ratio, score_rows
from tinyreason.lm.tasks import Example, Task, reward_weights


def _pools(n_pol=5, n_env=3):
    return {"policy": [Sample("policy", f"P: {i} ", "M: x") for i in range(n_pol)],
            "env": [Sample("env", f"A: {i}+", "f+0+0+0") for i in range(n_env)]}


def test_parse_ratio():
    assert parse_ratio("3:1") == (Fraction(3, 4), Fraction(1, 4)) and parse_ratio("1:0") == (1, 0)
    assert parse_ratio("0.5:1.5")[0] == Fraction(1, 4) and parse_ratio("1") == (1,)
    assert parse_ratio("1:2:1") == (Fraction(1, 4), Fraction(1, 2), Fraction(1, 4))
    for bad in ("a:b", "0:0", "-1:2", ""):
        with pytest.raises(ValueError):
            parse_ratio(bad)


def test_mix_is_exact_and_a_pure_function_of_the_step():
    mixer = TaskMixer(_pools(), parse_ratio("3:1"), seed=1)
    tasks = [mixer.at(k).task for k in range(40)]
    for start in range(0, 40, 4):
        assert tasks[start:start + 4].count("policy") == 3
    # every policy sample once per epoch, in a different order in the next epoch
    first = [mixer.at(k).prompt for k in range(40) if tasks[k] == "policy"]
    assert sorted(first[:5]) == sorted(s.prompt for s in _pools()["policy"]) and first[:5] != first[5:10]
    again = TaskMixer(_pools(), parse_ratio("3:1"), seed=1)
    assert [s.prompt for s in again.batch(3, 4, rank=1, world=2)] == [mixer.at(k).prompt for k in range(20, 24)]
    assert mixer.position(3, 4, 2) == {"prompts_drawn": 24, "policy_drawn": 18, "env_drawn": 6}


def test_mix_needs_the_asked_task():
    with pytest.raises(UserError, match="env"):
        TaskMixer({"policy": _pools()["policy"], "env": []}, parse_ratio("1:1"), seed=0)
    with pytest.raises(UserError, match="2 part"):
        TaskMixer({"policy": _pools()["policy"]}, parse_ratio("1:1"), seed=0)


def test_two_tasks_follow_the_floor_rule_and_more_tasks_mix_exactly():
    mixer = TaskMixer(_pools(), parse_ratio("1:2"), seed=0)
    f = Fraction(1, 3)  # the policy share: prompt k is policy when floor((k+1)f) > floor(kf)
    assert [mixer.at(k).task for k in range(30)] == [
        "policy" if math.floor((k + 1) * f) > math.floor(k * f) else "env" for k in range(30)]
    pools = {**_pools(), "add": [Example("add", f"{i}+1=", str(i + 1)) for i in range(4)]}
    three = TaskMixer(pools, parse_ratio("1:2:1"), seed=0)
    tasks = [three.at(k).task for k in range(40)]
    for start in range(0, 40, 4):
        window = tasks[start:start + 4]
        assert (window.count("policy"), window.count("env"), window.count("add")) == (1, 2, 1)
    assert three.position(2, 4, 1) == {"prompts_drawn": 8, "policy_drawn": 2, "env_drawn": 4, "add_drawn": 2}
    only = TaskMixer({"add": pools["add"]}, parse_ratio("1"), seed=0)
    assert sorted(only.at(k).prompt for k in range(4)) == sorted(e.prompt for e in pools["add"])


def _exact(prompts, completions, reference, **_):
    return [float(c == r) for c, r in zip(completions, reference)]


def _short(prompts, completions, **_):
    return [None if c == "" else float(len(c) < 3) for c in completions]


def test_score_rows_weights_each_task_and_skips_none():
    tasks = {"a": Task({"exact": _exact, "short": _short}, {"exact": 1.0, "short": 0.5}, lambda e, c: {}),
             "b": Task({"exact": _exact, "short": _short}, {"exact": 2.0, "short": 0.0}, lambda e, c: {})}
    weights = reward_weights(tasks, {"b": {"short": 1.0}})
    assert weights == {"a": {"exact": 1.0, "short": 0.5}, "b": {"exact": 2.0, "short": 1.0}}
    batch = [Example("a", "p", "xy"), Example("b", "q", "long")]
    totals, parts = score_rows(tasks, batch, ["xy", "", "long", "zz"], 2, weights)
    assert totals == [1.5, 0.0, 2.0, 1.0]
    assert parts[1] == {"exact": 0.0, "short": None} and parts[2] == {"exact": 1.0, "short": 0.0}
    for bad, match in (({"c": {}}, "unknown task 'c'"), ({"a": {"nope": 1.0}}, "unknown reward")):
        with pytest.raises(UserError, match=match):
            reward_weights(tasks, bad)
    with pytest.raises(ValueError, match="unknown reward"):
        Task({"exact": _exact}, {"exact": 1.0, "typo": 1.0}, lambda e, c: {})

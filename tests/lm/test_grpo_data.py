"""Task mix: exact policy:env ratio over any window, deterministic per step, epochs reshuffled."""

from fractions import Fraction

import pytest

from tinyreason.chess.data import Sample
from tinyreason.errors import UserError
from tinyreason.lm.grpo_data import TaskMixer, parse_ratio


def _pools(n_pol=5, n_env=3):
    return {"policy": [Sample("policy", f"P: {i} ", "M: x") for i in range(n_pol)],
            "env": [Sample("env", f"A: {i}+", "f+0+0+0") for i in range(n_env)]}


def test_parse_ratio():
    assert parse_ratio("3:1") == Fraction(3, 4) and parse_ratio("1:0") == 1 and parse_ratio("0.5:1.5") == Fraction(1, 4)
    for bad in ("1", "a:b", "0:0", "-1:2"):
        with pytest.raises(ValueError):
            parse_ratio(bad)


def test_mix_is_exact_and_a_pure_function_of_the_step():
    mixer = TaskMixer(_pools(), Fraction(3, 4), seed=1)
    tasks = [mixer.at(k).task for k in range(40)]
    for start in range(0, 40, 4):
        assert tasks[start:start + 4].count("policy") == 3
    # every policy sample once per epoch, in a different order in the next epoch
    first = [mixer.at(k).prompt for k in range(40) if tasks[k] == "policy"]
    assert sorted(first[:5]) == sorted(s.prompt for s in _pools()["policy"]) and first[:5] != first[5:10]
    again = TaskMixer(_pools(), Fraction(3, 4), seed=1)
    assert [s.prompt for s in again.batch(3, 4, rank=1, world=2)] == [mixer.at(k).prompt for k in range(20, 24)]
    assert mixer.position(3, 4, 2) == {"prompts_drawn": 24, "policy_drawn": 18, "env_drawn": 6}


def test_mix_needs_the_asked_task():
    with pytest.raises(UserError, match="env"):
        TaskMixer({"policy": _pools()["policy"], "env": []}, Fraction(1, 2), seed=0)

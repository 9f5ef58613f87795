"""Ensemble strategies on constructed member outputs, the stacker file, and CLI checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyreason.cli import main as cli
from tinyreason.hrm.ensemble import average, combine, ensemble_per_example, fit_weights, vote
from tinyreason.hrm.metrics import aggregate
from tinyreason.hrm.stacking import Stacker, fit_stacker

V = 3


def dist_for(tokens: np.ndarray, conf: float | np.ndarray) -> np.ndarray:
    """(N, L, V) probabilities with `conf` on the given token, the rest spread evenly."""
    conf = np.broadcast_to(np.asarray(conf, dtype=np.float64), tokens.shape)[..., None]
    onehot = np.eye(V)[tokens]
    return onehot * conf + (1 - onehot) * (1 - conf) / (V - 1)


def member(tokens, conf, q) -> dict:
    n = len(tokens)
    probs = dist_for(np.asarray(tokens), conf)
    return {"probs": probs, "predictions": probs.argmax(-1), "q_halt_logits": np.asarray(q, dtype=np.float64),
            "q_continue_logits": np.zeros(n), "steps": np.full(n, 2), "stable_step": np.ones(n, dtype=int),
            "example_index": np.arange(n), "time": np.full(n, 0.1)}


def test_average_with_given_and_fitted_weights():
    labels = np.array([[0, 1], [2, 2]])
    good, bad = dist_for(labels, 0.9), dist_for((labels + 1) % V, 0.6)
    assert np.allclose(average([good, bad], np.array([1.0, 0.0])), good)
    assert np.allclose(average([good, bad], np.array([1.0, 1.0])).sum(-1), 1.0)
    w = fit_weights([good, bad], labels)
    assert w[0] > 0.95 and w.sum() == pytest.approx(1.0)


def test_vote_majority_and_tie_by_confidence():
    a, b = np.array([[1, 1]]), np.array([[2, 2]])
    winner, support = vote([a, a, b], [np.array([0.0]), np.array([0.0]), np.array([5.0])])
    assert winner.tolist() == [0] and support[:, 0].tolist() == [True, True, False]
    winner, support = vote([a, b], [np.array([-1.0]), np.array([2.0])])  # 1 vs 1: higher sigmoid(q) wins
    assert winner.tolist() == [1] and support[:, 0].tolist() == [False, True]


def test_vote_strategy_output_follows_the_winning_answer():
    labels = np.array([[1, 1], [2, 0]])
    members = [member([[1, 1], [2, 0]], 0.6, [1, 1]), member([[1, 1], [0, 0]], 0.9, [1, 1]), member([[0, 1], [2, 0]], 0.5, [0, 0])]
    combined = combine("vote", members)
    per = ensemble_per_example(combined, members, labels, labels, labels, "exact")
    assert per["exact"].tolist() == [True, True]
    assert per["steps"].tolist() == [6, 6]  # ACT steps summed over members (compute spent)


def constructed_case(n: int, seed: int):
    """Member A is right where it is confident (q high), B everywhere else; each alone ~half right."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, V, size=(n, 6))
    a_right = rng.random(n) < 0.5
    wrong = (labels + 1) % V
    a_tok = np.where(a_right[:, None], labels, wrong)
    b_tok = np.where(a_right[:, None], wrong, labels)
    a = member(a_tok, 0.7, np.where(a_right, 3.0, -3.0))
    b = member(b_tok, 0.7, np.zeros(n))
    return labels, [a, b]


@pytest.mark.slow  # imports scikit-learn (seconds)
def test_stacking_beats_the_best_member_and_round_trips(tmp_path):
    fit_labels, fit_members = constructed_case(200, seed=0)
    labels, members = constructed_case(100, seed=1)
    stacker = fit_stacker([m["probs"] for m in fit_members], [m["q_halt_logits"] for m in fit_members], fit_labels)
    results = {}
    for name, m in (("a", members[0]), ("b", members[1])):
        per = ensemble_per_example({**m, "probs": m["probs"]}, [m], labels, labels, labels, "exact")
        results[name] = aggregate(per)["exact_accuracy"]
    per = ensemble_per_example(combine("stack", members, stacker=stacker), members, labels, labels, labels, "exact")
    results["stack"] = aggregate(per)["exact_accuracy"]
    avg = ensemble_per_example(combine("average", members), members, labels, labels, labels, "exact")
    results["average"] = aggregate(avg)["exact_accuracy"]
    assert results["stack"] >= max(results["a"], results["b"])
    assert results["stack"] == 1.0 and results["a"] < 0.7 and results["b"] < 0.7
    path = tmp_path / "stacker.json"
    stacker.save(path)
    again = Stacker.load(path)
    assert json.loads(path.read_text())["format"].startswith("tinyreason-hrm-stacker")
    assert np.allclose(again.scores([m["probs"] for m in members], [m["q_halt_logits"] for m in members]),
                       stacker.scores([m["probs"] for m in members], [m["q_halt_logits"] for m in members]))


def test_stacker_load_rejects_other_files(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"coef": [1]}')
    with pytest.raises(Exception, match="not a stacker file"):
        Stacker.load(bad)


def test_ensemble_cli_refuses_mismatched_checkpoints(fixtures, capsys):
    rc = cli(["hrm", "ensemble", "--checkpoints", str(fixtures / "hrm_official/rope_f32"), str(fixtures / "hrm_official/learned_bf16"),
              "--data", str(fixtures / "hrm_datasets/sudoku-noaug")])
    assert rc == 2 and "differ from" in capsys.readouterr().err


def test_ensemble_cli_writes_members_and_comparison(fixtures, tmp_path):
    out = tmp_path / "ens.json"
    ckpt = str(fixtures / "hrm_official/rope_f32/step_1234")
    rc = cli(["hrm", "ensemble", "--checkpoints", ckpt, ckpt, "--strategy", "vote",
              "--data", str(fixtures / "hrm_datasets/sudoku-noaug"), "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert len(report["members"]) == 2 and "ensemble (vote)" in report["comparison"]
    member_acc = report["members"][0]["aggregate_metrics"]["accuracy"]
    assert report["aggregate_metrics"]["accuracy"] == pytest.approx(member_acc)  # identical members: same answers


def test_stacker_load_rejects_a_file_missing_coefficients(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"format": "tinyreason-hrm-stacker/1"}')
    with pytest.raises(Exception, match="has no 'features'"):
        Stacker.load(bad)


@pytest.mark.parametrize("weights", [["0", "0"], ["1", "-1"]])
def test_ensemble_cli_refuses_zero_or_negative_weights(fixtures, capsys, weights):
    ckpt = str(fixtures / "hrm_official/rope_f32/step_1234")
    rc = cli(["hrm", "ensemble", "--checkpoints", ckpt, ckpt, "--weights", *weights,
              "--data", str(fixtures / "hrm_datasets/sudoku-noaug")])
    assert rc == 2 and "non-negative with a positive sum" in capsys.readouterr().err


def test_ensemble_fits_weights_on_every_data_folder(fixtures, tmp_path, capsys):
    # two --data folders are merged for the evaluation; the fit split must be merged the same way
    # (sudoku-noaug train: 12 puzzles; sudoku-aug2 train: 12 puzzles x 3 versions = 36)
    ckpt = str(fixtures / "hrm_official/rope_f32/step_1234")
    rc = cli(["hrm", "ensemble", "--checkpoints", ckpt, ckpt, "--fit-weights", "--fit-limit", "1000",
              "--data", str(fixtures / "hrm_datasets/sudoku-noaug"), str(fixtures / "hrm_datasets/sudoku-aug2"),
              "--out", str(tmp_path / "ens.json")])
    assert rc == 0
    assert "fitted weights on train (48 examples)" in capsys.readouterr().err  # the console writes to stderr
    rc = cli(["hrm", "ensemble", "--checkpoints", ckpt, ckpt, "--fit-weights", "--fit-limit", "12",
              "--data", str(fixtures / "hrm_datasets/sudoku-noaug"), str(fixtures / "hrm_datasets/sudoku-aug2")])
    err = capsys.readouterr().err  # a limit within the first folder fits on it alone, and says so
    assert rc == 0 and "fitted weights on train (12 examples)" in err
    assert "train: warning: the limit 12 keeps the first examples of 1 of the 2 folders only" in err

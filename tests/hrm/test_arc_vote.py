"""ARC de-augmentation and voting on a synthetic task with known augmentations."""

from __future__ import annotations

import numpy as np
import pytest

from tinyreason.hrm.arc_vote import arc_vote
from tinyreason.puzzles.arc import augment_grid, encode_grid

CMAP_A = np.array([0, 3, 1, 2, 5, 4, 7, 6, 9, 8], dtype=np.uint8)
CMAP_B = np.array([0, 9, 8, 7, 6, 5, 4, 3, 2, 1], dtype=np.uint8)
AUGS = [("task1", 0, np.arange(10, dtype=np.uint8)), ("task1_t1_" + "".join(map(str, CMAP_A)), 1, CMAP_A),
        ("task1_t6_" + "".join(map(str, CMAP_B)), 6, CMAP_B)]

IN1, OUT1 = np.array([[1, 2, 0], [0, 3, 4]], dtype=np.uint8), np.array([[4, 3], [2, 1], [0, 0]], dtype=np.uint8)
IN2, OUT2 = np.array([[5, 5], [6, 7]], dtype=np.uint8), np.array([[7]], dtype=np.uint8)
WRONG = np.array([[1, 1], [1, 1]], dtype=np.uint8)


def rows(test_in, test_out, answers, qs, augs=AUGS):
    """One row per augmentation: encoded augmented input/label, and the given (de-augmented) answer re-augmented."""
    names, inputs, labels, preds = [], [], [], []
    for (name, tid, cmap), answer in zip(augs, answers):
        names.append(name)
        inputs.append(encode_grid(augment_grid(test_in, tid, cmap)))
        labels.append(encode_grid(augment_grid(test_out, tid, cmap)))
        preds.append(encode_grid(augment_grid(answer, tid, cmap)))
    return names, inputs, labels, preds, list(qs)


def run(parts):
    names, inputs, labels, preds, qs = ([] for _ in range(5))
    for p in parts:
        for acc, new in zip((names, inputs, labels, preds, qs), p):
            acc.extend(new)
    return arc_vote(names, np.stack(inputs), np.stack(preds), np.stack(labels), np.array(qs, dtype=np.float64))


def test_majority_after_deaugmentation_wins():
    # test input 1: two augmentations right (after undoing them), one wrong -> pass@1
    # test input 2: all three right
    out = run([rows(IN1, OUT1, [OUT1, WRONG, OUT1], [0, 5, 0]), rows(IN2, OUT2, [OUT2] * 3, [0, 0, 0])])
    assert out["num_tasks"] == 1
    assert out["pass@1"] == 1.0 and out["pass@2"] == 1.0
    task = out["per_task"][0]
    assert task["num_test_inputs"] == 2
    assert task["tests"][0]["candidates"] == 2 and task["tests"][0]["correct_rank"] == 1
    assert task["tests"][0]["attempts"][0] == OUT1.tolist()


def test_tie_broken_by_mean_q_and_task_needs_all_test_inputs():
    # test input 1: one vote each for OUT1, WRONG, WRONG.T -> tie on count; WRONG has the highest q
    wrong2 = np.array([[2, 2]], dtype=np.uint8)
    out = run([rows(IN1, OUT1, [OUT1, WRONG, wrong2], [1.0, 3.0, -2.0]), rows(IN2, OUT2, [OUT2] * 3, [0, 0, 0])])
    t0 = out["per_task"][0]["tests"][0]
    assert t0["correct_rank"] == 2  # WRONG (q 3.0) first, OUT1 (q 1.0) second
    assert out["pass@1"] == 0.0  # one of two test inputs fails at k=1 -> task fails
    assert out["pass@1_fractional"] == pytest.approx(0.5)  # official fractional score
    assert out["pass@2"] == 1.0


TRM_AUGS = [(name.replace("_t", "|||t").replace(f"_{''.join(map(str, c))}", f"|||{''.join(map(str, c))}"), t, c) for name, t, c in AUGS]


def test_trm_naming_votes_as_hrm_naming():
    assert TRM_AUGS[1][0] == "task1|||t1|||" + "".join(map(str, CMAP_A))
    hrm = run([rows(IN1, OUT1, [OUT1, WRONG, OUT1], [0, 5, 0]), rows(IN2, OUT2, [OUT2] * 3, [0, 0, 0])])
    trm = run([rows(IN1, OUT1, [OUT1, WRONG, OUT1], [0, 5, 0], TRM_AUGS), rows(IN2, OUT2, [OUT2] * 3, [0, 0, 0], TRM_AUGS)])
    assert trm == hrm and trm["per_task"][0]["task"] == "task1" and trm["pass@1"] == 1.0


def test_test_puzzles_set_tasks_and_answers_and_submission_pads_attempts():
    """As TRM's evaluator: every task of test_puzzles.json counts, a test input without
    predictions fails, and each answered test input gets attempt_1 and attempt_2."""
    names, inputs, labels, preds, qs = rows(IN1, OUT1, [OUT1, OUT1, OUT1], [0, 0, 0])
    test_puzzles = {
        "task1": {"train": [], "test": [{"input": IN1.tolist(), "output": OUT1.tolist()}, {"input": IN2.tolist(), "output": OUT2.tolist()}]},
        "task2": {"train": [], "test": [{"input": IN2.tolist(), "output": OUT2.tolist()}]},
    }
    out = arc_vote(names, np.stack(inputs), np.stack(preds), np.stack(labels), np.array(qs), pass_ks=(1, 2), test_puzzles=test_puzzles)
    assert out["num_tasks"] == 2 and [t["task"] for t in out["per_task"]] == ["task1", "task2"]
    assert out["pass@1_fractional"] == pytest.approx((0.5 + 0.0) / 2) and out["pass@1"] == 0.0
    assert out["per_task"][0]["tests"][1]["candidates"] == 0 and out["per_task"][0]["tests"][1]["correct_rank"] is None
    assert out["submission"] == {"task1": [{"attempt_1": OUT1.tolist(), "attempt_2": OUT1.tolist()}], "task2": []}
    # the file's answer, not the dataset's label, is the reference
    wrong_file = {"task1": {"test": [{"input": IN1.tolist(), "output": WRONG.tolist()}]}}
    assert arc_vote(names, np.stack(inputs), np.stack(preds), np.stack(labels), np.array(qs), test_puzzles=wrong_file)["pass@2"] == 0.0


@pytest.mark.parametrize("root", ["hrm_datasets/arc-aug3", "trm_datasets/arc-trm-aug3"])
def test_both_official_namings_deaugment_to_one_answer_per_task(fixtures, root):
    """Predicting every augmented label must de-augment to a single candidate: pass@1 = 1 in either
    naming; with TRM's test_puzzles.json as the reference too. Shifted colours fail."""
    from tinyreason.puzzles.arc_build import read_test_puzzles
    from tinyreason.puzzles.dataset import example_names, open_split, read_identifiers

    split = open_split(fixtures / root, "test")
    names = example_names(split, read_identifiers(fixtures / root))
    assert any(("|||" if "trm" in root else "_t") in n for n in names)
    labels, inputs = np.asarray(split.labels), np.asarray(split.inputs)
    test_puzzles = read_test_puzzles([fixtures / root])
    assert (test_puzzles is None) == ("hrm" in root)
    out = arc_vote(names, inputs, labels, labels, np.zeros(len(split)), test_puzzles=test_puzzles)
    assert out["pass@1"] == 1.0 and out["pass@1_fractional"] == 1.0
    assert out["num_tasks"] == (3 if "hrm" in root else 4)
    assert all(test["candidates"] == 1 for t in out["per_task"] for test in t["tests"])
    assert all(len(s) == t["num_test_inputs"] for s, t in zip(out["submission"].values(), out["per_task"]))
    wrong = np.where(labels >= 2, 2 + (labels - 1) % 10, labels)  # every colour c -> c+1 mod 10
    assert arc_vote(names, inputs, wrong, labels, np.zeros(len(split)), test_puzzles=test_puzzles)["pass@2"] == 0.0

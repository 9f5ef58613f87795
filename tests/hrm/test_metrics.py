"""Every evaluation metric on hand-built logits, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tinyreason.hrm.losses import IGNORE_LABEL_ID, act_loss, log_stablemax, map_ignore_labels, token_cross_entropy
from tinyreason.hrm.metrics import aggregate, calibration, example_metrics, stable_step

V = 4


def onehot_logits(tokens: list[list[int]], high: float = 5.0) -> torch.Tensor:
    """Logits with `high` on the given token and 0 elsewhere: (N, L, V)."""
    t = torch.tensor(tokens)
    return torch.nn.functional.one_hot(t, V).float() * high


def test_map_ignore_labels_maps_dataset_ignore_id_to_minus_100():
    out = map_ignore_labels(np.array([[0, 2, 3]], dtype=np.int32), 0)
    assert out.tolist() == [[IGNORE_LABEL_ID, 2, 3]] and out.dtype == np.int64


def test_stablemax_cross_entropy_by_hand():
    logits = torch.tensor([[[1.0, -1.0, 0.0]]])  # s = [2, 1/2, 1] -> p = [4/7, 1/7, 2/7]
    labels = torch.tensor([[0]])
    assert torch.allclose(log_stablemax(logits.double())[0, 0].exp(), torch.tensor([4 / 7, 1 / 7, 2 / 7], dtype=torch.float64))
    loss = token_cross_entropy(logits, labels, "stablemax_cross_entropy")
    assert loss.item() == pytest.approx(-math.log(4 / 7))
    soft = token_cross_entropy(logits, labels, "softmax_cross_entropy")
    assert soft.item() == pytest.approx(-math.log(math.e / (math.e + math.exp(-1) + 1)), rel=1e-6)
    assert token_cross_entropy(logits, torch.tensor([[IGNORE_LABEL_ID]]), "stablemax_cross_entropy").item() == 0


def test_example_metrics_and_official_aggregates():
    labels = torch.tensor([[1, 2, 3, IGNORE_LABEL_ID], [1, 1, 1, 1], [IGNORE_LABEL_ID] * 4])
    logits = onehot_logits([[1, 2, 3, 0], [1, 0, 0, 1], [0, 0, 0, 0]])
    q = torch.tensor([2.0, 1.0, 0.0])  # row 0 exact & q>0 (right), row 1 wrong & q>0 (wrong)
    per = example_metrics(logits, labels, q)
    assert per["accuracy"].tolist() == [1.0, 0.5, 0.0]
    assert per["exact"].tolist() == [True, False, False]
    assert per["n_labels"].tolist() == [3, 4, 0]
    assert per["q_halt_right"][:2].tolist() == [True, False]
    # stablemax of one-hot logits 5: p(hit) = 6 / (6 + 3) per token
    assert per["lm_loss"][0] == pytest.approx(-math.log(6 / 9))
    assert per["q_halt_loss"][0] == pytest.approx(math.log1p(math.exp(-2.0)))
    per.update(
        steps=np.array([4, 2, 4]),
        q_halt_logits=q.numpy(),
        q_continue_logits=np.array([-1.0, 0.5, 0.0]),
        solved=np.array([True, True, False]),  # row 1: a different valid answer
        stable_step=np.array([2, 2, 1]),
        time=np.array([0.5, 0.5, 0.0]),
    )
    agg = aggregate(per, halt_max_steps=4)
    assert agg["count"] == agg["total_puzzles"] == 2  # padding row (no labels) excluded
    assert agg["accuracy"] == agg["average_accuracy"] == pytest.approx(0.75)
    assert agg["exact_accuracy"] == 0.5
    assert agg["solve_rate"] == 1.0 and agg["solved_not_exact"] == 1
    assert agg["q_halt_accuracy"] == 0.5
    assert agg["steps"] == agg["average_steps"] == 3.0
    assert agg["steps_fraction_of_max"] == pytest.approx(0.75)
    assert agg["step_efficiency"] == pytest.approx((2 / 4 + 2 / 2) / 2)
    assert agg["lm_loss"] == pytest.approx(per["lm_loss"][:2].mean())
    assert agg["q_halt_mean"] == 1.5 and agg["q_halt_min"] == 1.0 and agg["q_halt_max"] == 2.0
    assert agg["q_continue_mean"] == pytest.approx(-0.25)
    assert agg["q_halt_precision"] == 0.5 and math.isnan(agg["q_halt_npv"])
    assert agg["time_per_puzzle"] == 0.5 and agg["puzzles_per_second"] == 2.0


def test_calibration_bins_and_rates():
    q = np.array([3.0, 3.0, -3.0, -3.0])
    exact = np.array([True, False, False, False])
    cal = calibration(q, exact)
    assert cal["q_halt_positive_rate"] == 0.5
    assert cal["q_halt_precision"] == 0.5
    assert cal["q_halt_npv"] == 1.0
    p_hi, p_lo = 1 / (1 + math.exp(-3)), 1 / (1 + math.exp(3))
    assert cal["q_halt_ece"] == pytest.approx(0.5 * abs(p_hi - 0.5) + 0.5 * abs(p_lo - 0.0))


def test_stable_step_walks_back_while_answer_unchanged():
    labels = np.array([[1, 1], [1, IGNORE_LABEL_ID], [1, 1]])
    # steps 1..4 of predictions for three rows
    sp = np.array([
        [[0, 0], [1, 3], [1, 1]],
        [[1, 1], [1, 0], [0, 0]],
        [[0, 1], [1, 2], [1, 1]],
        [[1, 1], [1, 2], [1, 1]],
    ])
    out = stable_step(sp, labels, steps_used=np.array([4, 4, 3]))
    # row 0 changes at step 4; row 1 equal on labelled token from step 1; row 2 answer of step 3 first seen at 3
    assert out.tolist() == [4, 1, 3]


def test_act_loss_matches_official_reductions():
    labels = torch.tensor([[1, 2, IGNORE_LABEL_ID], [3, 3, 3]])
    logits = onehot_logits([[1, 2, 0], [3, 0, 3]])
    out = {"logits": logits, "q_halt_logits": torch.tensor([1.0, -1.0]), "q_continue_logits": torch.tensor([0.0, 0.0]),
           "target_q_continue": torch.tensor([0.5, 0.5])}
    total, m = act_loss(out, labels, halted=torch.tensor([True, False]), steps=torch.tensor([3, 1]))
    assert m["count"].item() == 1 and m["exact_accuracy"].item() == 1 and m["steps"].item() == 3
    lm = token_cross_entropy(logits, labels, "stablemax_cross_entropy")
    assert m["lm_loss"].item() == pytest.approx((lm[0].sum() / 2 + lm[1].sum() / 3).item())
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    qh = bce(out["q_halt_logits"], torch.tensor([1.0, 0.0]), reduction="sum")
    qc = bce(out["q_continue_logits"], out["target_q_continue"], reduction="sum")
    assert total.item() == pytest.approx(m["lm_loss"].item() + 0.5 * (qh + qc).item())

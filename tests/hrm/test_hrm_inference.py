"""run_act: official fixed-step evaluation and adaptive halting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hrm_test_utils import assert_bf16_predictions, reference

from tinyreason.errors import UserError
from tinyreason.hrm.checkpoint import load_checkpoint
from tinyreason.hrm.inference import predict_arrays, run_act

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def rope():
    return load_checkpoint(FIXTURES / "hrm_official" / "rope_f32"), reference(FIXTURES, "rope_f32")


@pytest.fixture(scope="module")
def learned():
    return load_checkpoint(FIXTURES / "hrm_official" / "learned_bf16"), reference(FIXTURES, "learned_bf16")


def _count_inner_rows(model):
    """Record the batch size of every inner (one ACT step) call."""
    rows: list[int] = []
    handle = model.inner.register_forward_pre_hook(lambda mod, args: rows.append(args[1]["inputs"].shape[0]))
    return rows, handle


def test_fixed_matches_reference_final_step(rope):
    loaded, ref = rope
    out = run_act(loaded.model, ref)
    assert out["logits"].dtype == torch.float32 and out["logits"].shape == (6, 81, 11)
    assert np.abs(out["logits"].numpy() - ref["logits"][-1]).max() <= 1e-4
    assert np.abs(out["q_halt_logits"].numpy() - ref["q_halt_logits"][-1]).max() <= 1e-4
    assert np.abs(out["q_continue_logits"].numpy() - ref["q_continue_logits"][-1]).max() <= 1e-4
    assert out["steps"].tolist() == [4] * 6
    assert torch.equal(out["predictions"], out["logits"].argmax(-1))


def test_fixed_bf16_reference_tolerances(learned):
    loaded, ref = learned
    out = run_act(loaded.model, ref)
    assert_bf16_predictions(out["predictions"].numpy(), ref["logits"][-1])
    assert np.abs(out["logits"].numpy() - ref["logits"][-1]).max() <= 0.25
    assert np.abs(out["q_halt_logits"].numpy() - ref["q_halt_logits"][-1]).max() <= 0.05
    assert np.abs(out["q_continue_logits"].numpy() - ref["q_continue_logits"][-1]).max() <= 0.05


def test_adaptive_equals_fixed_when_rule_never_fires(rope):
    loaded, ref = rope
    assert (ref["q_halt_logits"] < ref["q_continue_logits"]).all()  # q_compare never fires on this fixture
    fixed = run_act(loaded.model, ref, halt="fixed")
    adaptive = run_act(loaded.model, ref, halt="adaptive", adaptive_rule="q_compare")
    for key in fixed:
        assert torch.equal(fixed[key], adaptive[key]), key


def test_adaptive_stops_early_and_computes_only_running_rows(learned):
    loaded, ref = learned
    # q_positive: rows 0, 1, 3 have q_halt > 0 after step 1; row 2 never does -> runs all 3 steps.
    expected_steps = np.where((ref["q_halt_logits"] > 0).any(0), (ref["q_halt_logits"] > 0).argmax(0) + 1, 3)
    assert expected_steps.tolist() == [1, 1, 3, 1]
    rows, handle = _count_inner_rows(loaded.model)
    try:
        out = run_act(loaded.model, ref, halt="adaptive", adaptive_rule="q_positive")
    finally:
        handle.remove()
    assert out["steps"].tolist() == expected_steps.tolist()
    assert rows == [4, 1, 1]  # 6 row-steps instead of 12
    for row, s in enumerate(expected_steps):
        assert_bf16_predictions(out["predictions"][row].numpy(), ref["logits"][s - 1, row])
        assert abs(out["q_halt_logits"][row].item() - ref["q_halt_logits"][s - 1, row]) <= 0.05


def test_adaptive_stops_computing_when_all_rows_halted(rope):
    loaded, ref = rope
    assert (ref["q_halt_logits"][0] > 0).all()
    rows, handle = _count_inner_rows(loaded.model)
    try:
        out = run_act(loaded.model, ref, halt="adaptive", adaptive_rule="q_positive")
    finally:
        handle.remove()
    assert rows == [6] and out["steps"].tolist() == [1] * 6
    np.testing.assert_allclose(out["logits"].numpy(), ref["logits"][0], atol=1e-4)


def test_model_left_in_its_mode_and_batch_checks(rope):
    loaded, ref = rope
    loaded.model.train()
    run_act(loaded.model, {k: ref[k][:2] for k in ("inputs", "puzzle_identifiers")})
    assert loaded.model.training
    loaded.model.eval()
    with pytest.raises(UserError, match="puzzle_identifiers missing"):
        run_act(loaded.model, {"inputs": ref["inputs"]})
    with pytest.raises(UserError, match=r"puzzle_identifiers must lie in \[0, 7\)"):
        run_act(loaded.model, {"inputs": ref["inputs"], "puzzle_identifiers": ref["puzzle_identifiers"] + 7})
    with pytest.raises(UserError, match=r"input tokens must lie in \[0, 11\)"):
        run_act(loaded.model, {"inputs": ref["inputs"] + 11, "puzzle_identifiers": ref["puzzle_identifiers"]})
    with pytest.raises(UserError, match="must be integers"):
        run_act(loaded.model, {"inputs": ref["inputs"].astype(np.float32), "puzzle_identifiers": ref["puzzle_identifiers"]})
    with pytest.raises(UserError, match="halt must be"):
        run_act(loaded.model, ref, halt="sometimes")


def test_predict_arrays_in_chunks_equals_one_batch(rope):
    loaded, ref = rope
    whole = predict_arrays(loaded.model, ref, batch_size=64)
    chunked = predict_arrays(loaded.model, ref, batch_size=4)
    assert set(whole) == {"logits", "q_halt_logits", "q_continue_logits", "steps", "predictions"}
    np.testing.assert_allclose(chunked["logits"], whole["logits"], atol=1e-5)
    assert (chunked["predictions"] == whole["predictions"]).all()


def test_step_predictions_follow_every_act_step(rope):
    loaded, ref = rope
    out = run_act(loaded.model, ref, step_predictions=True)
    assert out["step_predictions"].shape == (4, 6, 81)
    assert (out["step_predictions"].numpy() == ref["logits"].argmax(-1)).mean() >= 0.999
    assert torch.equal(out["step_predictions"][-1], out["predictions"])
    adaptive = run_act(loaded.model, ref, halt="adaptive", step_predictions=True)
    assert torch.equal(adaptive["step_predictions"], out["step_predictions"])  # q_compare never fires here
    assert "step_predictions" not in run_act(loaded.model, ref)

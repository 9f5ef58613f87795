"""Training checkpoints of chess sft/grpo: pruning by step number, torn files, architecture changes,
a resume without a complete checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from tinyreason.errors import UserError
from tinyreason.lm.model import load_model, random_model
from tinyreason.lm.state import latest_checkpoint, load_state, load_weights, resume_training, save_checkpoint
from tinyreason.runlog import RunDir


@pytest.fixture
def tiny(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


def _opt(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


def _save(run, step, model, tok, keep=2):
    opt, sched = _opt(model)
    return save_checkpoint(run, step, model, tok, {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                                   "rng": [{}]}, keep=keep)


def test_a_new_run_never_prunes_its_own_newest_checkpoint(tiny, tmp_path):
    """Issue #26 item 1: names sort step_0000002 before step_0000060; step numbers do not."""
    model, tok = tiny
    for step in (40, 60):
        _save(tmp_path, step, model, tok)
    out = _save(tmp_path, 2, model, tok)
    root = tmp_path / "checkpoints"
    assert out.is_dir() and latest_checkpoint(tmp_path) == out
    assert sorted(p.name for p in root.glob("step_*")) == ["step_0000002"]  # the superseded run's are gone
    for step in (4, 6, 8):
        _save(tmp_path, step, model, tok)
    assert sorted(p.name for p in root.glob("step_*")) == ["step_0000006", "step_0000008"]


def test_a_torn_latest_json_falls_back_to_the_highest_step(tiny, tmp_path):
    model, tok = tiny
    for step in (8, 10):
        _save(tmp_path, step, model, tok, keep=0)
    (tmp_path / "checkpoints" / "latest.json").write_text('{"step": 10, "pa')
    assert latest_checkpoint(tmp_path).name == "step_0000010"
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps(["not", "a", "pointer"]))
    assert latest_checkpoint(tmp_path).name == "step_0000010"


def test_torn_state_and_weights_are_one_line_errors(tiny, tmp_path):
    model, tok = tiny
    ckpt = _save(tmp_path, 2, model, tok)
    state = ckpt / "trainer_state.pt"
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="trainer_state.pt is truncated or corrupt"):
        load_state(ckpt)
    state.write_bytes(b"")
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_state(ckpt)
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="model.safetensors are truncated or corrupt"):
        load_weights(model, ckpt)


def test_resume_after_an_architecture_change_is_a_one_line_error(tiny, tmp_path):
    model, tok = tiny
    ckpt = _save(tmp_path, 2, model, tok)
    wider = random_model(tok, seed=0, n_layer=2, n_embd=64, n_head=2, n_positions=512)
    with pytest.raises(UserError, match="another architecture") as err:
        load_weights(wider, ckpt)
    assert "\n" not in str(err.value)
    deeper = random_model(tok, seed=0, n_layer=3, n_embd=32, n_head=2, n_positions=512)
    with pytest.raises(UserError, match="does not match the model"):
        load_weights(deeper, ckpt)


def test_resume_without_a_complete_checkpoint_drops_the_dead_runs_lines(tiny, tmp_path):
    """Issue #26 item 5: a kill before the first checkpoint; the resumed run starts clean."""
    model, tok = tiny
    run = RunDir(tmp_path)
    for step in range(1, 5):
        run.log({"step": step, "loss": 1.0})
    (tmp_path / "samples.jsonl").write_text('{"step": 2}\n')
    opt, sched = _opt(model)
    assert resume_training(run, model, opt, sched, rank=0, world_size=1) is None
    assert not run.metrics_path.exists() and not (tmp_path / "samples.jsonl").exists()

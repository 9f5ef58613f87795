"""`tinyreason hrm predict|validate` through tinyreason.cli.main: round trips and exit 2 on bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml
from hrm_test_utils import reference

from tinyreason.cli import main


@pytest.fixture
def run_copy(fixtures, tmp_path):
    """A writable copy of the rope_f32 fixture folder."""
    dst = tmp_path / "run"
    shutil.copytree(fixtures / "hrm_official" / "rope_f32", dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


def test_predict_round_trip(fixtures, tmp_path, capsys):
    ref = reference(fixtures, "rope_f32")
    out = tmp_path / "pred.npz"
    rc = main(["hrm", "predict", "--checkpoint", str(fixtures / "hrm_official" / "rope_f32" / "step_1234"),
               "--inputs", str(fixtures / "hrm_official" / "rope_f32" / "reference_io.npz"), "--out", str(out), "--batch-size", "4"])
    assert rc == 0
    with np.load(out) as z:
        got = {k: z[k] for k in z.files}
    assert set(got) == {"logits", "q_halt_logits", "q_continue_logits", "predictions", "steps", "labels"}
    assert got["logits"].dtype == np.float32 and np.abs(got["logits"] - ref["logits"][-1]).max() <= 1e-4
    assert np.abs(got["q_halt_logits"] - ref["q_halt_logits"][-1]).max() <= 1e-4
    assert (got["predictions"] == ref["logits"][-1].argmax(-1)).all() and (got["steps"] == 4).all()
    resolved = yaml.safe_load((tmp_path / "pred.npz.config.yaml").read_text())
    assert resolved["batch_size"] == 4 and resolved["arch"]["hidden_size"] == 64
    assert "accuracy" in capsys.readouterr().err


def test_predict_adaptive_bf16_learned(fixtures, tmp_path):
    src = fixtures / "hrm_official" / "learned_bf16"
    out = tmp_path / "pred.npz"
    rc = main(["hrm", "predict", "--checkpoint", str(src), "--inputs", str(src / "reference_io.npz"), "--out", str(out),
               "--halt", "adaptive", "--adaptive-rule", "q_positive", "--dtype", "bfloat16", "--device", "cpu"])
    assert rc == 0
    with np.load(out) as z:
        assert z["steps"].tolist() == [1, 1, 3, 1]


def _predict(ckpt, inputs, out):
    return main(["hrm", "predict", "--checkpoint", str(ckpt), "--inputs", str(inputs), "--out", str(out)])


def test_predict_bad_inputs_exit_2(run_copy, tmp_path, capsys):
    out = tmp_path / "o.npz"
    np.savez(tmp_path / "noinputs.npz", labels=np.zeros((2, 81), dtype=np.int32))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    np.savez(tmp_path / "badlen.npz", inputs=np.zeros((2, 5), dtype=np.int32), puzzle_identifiers=np.zeros(2, dtype=np.int32))
    inputs = run_copy / "reference_io.npz"
    data = (run_copy / "step_1234").read_bytes()
    (run_copy / "step_2000").write_bytes(data[:1000])  # latest step is truncated
    cases = [
        (run_copy / "step_1234", tmp_path / "noinputs.npz", "has no 'inputs' array"),
        (run_copy / "step_1234", tmp_path / "junk.npz", "not a readable .npz"),
        (run_copy / "step_1234", tmp_path / "missing.npz", "inputs file not found"),
        (run_copy, inputs, "truncated or corrupt"),
    ]
    for ckpt, inp, msg in cases:
        assert _predict(ckpt, inp, out) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err
    (run_copy / "step_2000").unlink()
    # rope with unset seq_len takes any length; a learned-position model refuses a wrong one
    assert _predict(run_copy, tmp_path / "badlen.npz", out) == 0
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_predict_wrong_length_for_learned_positions(fixtures, tmp_path, capsys):
    np.savez(tmp_path / "badlen.npz", inputs=np.zeros((2, 5), dtype=np.int32), puzzle_identifiers=np.zeros(2, dtype=np.int32))
    assert _predict(fixtures / "hrm_official" / "learned_bf16", tmp_path / "badlen.npz", tmp_path / "o.npz") == 2
    assert "inputs have 5 tokens per example but the model's seq_len is 100" in capsys.readouterr().err


def test_predict_missing_all_config_and_pickle_exit_2(run_copy, tmp_path, capsys):
    inputs = run_copy / "reference_io.npz"
    (run_copy / "all_config.yaml").unlink()
    assert _predict(run_copy, inputs, tmp_path / "o.npz") == 2
    assert "no all_config.yaml next to" in capsys.readouterr().err
    torch.save({"step": 1, "note": "not weights"}, tmp_path / "step_1")
    assert _predict(tmp_path / "step_1", inputs, tmp_path / "o.npz") == 2
    assert "not a plain state dict" in capsys.readouterr().err


def test_predict_config_mismatch_exit_2(run_copy, tmp_path, capsys):
    cfg = yaml.safe_load((run_copy / "all_config.yaml").read_text())
    cfg["arch"]["num_puzzle_identifiers"] = 12
    (run_copy / "all_config.yaml").write_text(yaml.safe_dump(cfg))
    assert _predict(run_copy, run_copy / "reference_io.npz", tmp_path / "o.npz") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "7 puzzle embeddings but the config says num_puzzle_identifiers=12" in err[0]


def test_validate_valid_and_invalid(run_copy, capsys):
    assert main(["hrm", "validate", str(run_copy)]) == 0
    captured = capsys.readouterr()
    assert "valid: 264,258 numbers, 448 puzzle embeddings" in captured.out and "H_level.layers.0" in captured.out
    sd = torch.load(run_copy / "step_1234", weights_only=True)
    sd["_orig_mod.model.inner.lm_head.weight"][0, 0] = float("nan")
    sd.pop("_orig_mod.model.inner.q_head.bias")
    torch.save(sd, run_copy / "step_1234")
    assert main(["hrm", "validate", str(run_copy / "step_1234")]) == 2
    captured = capsys.readouterr()
    assert "inner.lm_head.weight has 1 NaN" in captured.out and "missing key inner.q_head.bias" in captured.out
    assert "is invalid: 2 problem(s)" in captured.err
    assert main(["hrm", "validate", str(run_copy / "nope")]) == 2
    assert main(["hrm", "validate", str(run_copy), "--bogus", "1"]) == 2

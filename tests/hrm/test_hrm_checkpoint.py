"""Checkpoint loading (official layouts, prefixes, explicit configs) and every validation error."""

from __future__ import annotations

import argparse
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
import yaml
from hrm_test_utils import official_state_dict, reference, tiny_arch, tiny_config, write_all_config

from tinyreason.errors import UserError
from tinyreason.hrm.checkpoint import find_checkpoints, load_checkpoint, normalize_keys, read_state_dict, resolve_checkpoint
from tinyreason.hrm.inference import run_act
from tinyreason.hrm.model import HRMACT
from tinyreason.hrm.validation import validate_state_dict


def _q_halt(loaded, fixtures, name="rope_f32", rows=2):
    """q_halt of the first `rows` reference examples (enough to tell a wrong load; cheaper than all)."""
    ref = {k: v[:rows] for k, v in reference(fixtures, name).items() if k in ("inputs", "puzzle_identifiers")}
    want = reference(fixtures, name)["q_halt_logits"][-1, :rows]
    return run_act(loaded.model, ref)["q_halt_logits"].numpy(), want


def _same_weights(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("prefix", ["_orig_mod.model.", "model.", "_orig_mod.", ""])
def test_load_file_with_and_without_prefixes(fixtures, tmp_path, prefix):
    src = fixtures / "hrm_official" / "rope_f32"
    raw = torch.load(src / "step_1234", weights_only=True)
    torch.save({prefix + k.removeprefix("_orig_mod.model."): v for k, v in raw.items()}, tmp_path / "step_7")
    shutil.copy(src / "all_config.yaml", tmp_path)
    loaded = load_checkpoint(tmp_path / "step_7")
    assert loaded.step == 7 and loaded.path == tmp_path / "step_7" and loaded.raw_config["arch"]["hidden_size"] == 64
    assert _same_weights(loaded, load_checkpoint(src / "step_1234"))  # same weights: same outputs (test_hrm_inference)


def test_folder_picks_latest_step_and_hub_style_checkpoint_file(fixtures, tmp_path):
    src = fixtures / "hrm_official" / "learned_bf16"
    for name in ("step_5", "step_40", "step_40_all_preds.0"):
        shutil.copy(src / "step_1234", tmp_path / name)
    shutil.copy(src / "all_config.yaml", tmp_path)
    assert [s for s, _ in find_checkpoints(tmp_path)] == [5, 40]
    assert load_checkpoint(tmp_path).step == 40
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    shutil.copy(src / "step_1234", hub_dir / "checkpoint")
    shutil.copy(src / "all_config.yaml", hub_dir)
    loaded = load_checkpoint(hub_dir)
    assert loaded.path.name == "checkpoint" and loaded.step is None
    assert _same_weights(loaded, load_checkpoint(src))


def test_explicit_config_forms(fixtures, tmp_path):
    src = fixtures / "hrm_official" / "rope_f32"
    shutil.copy(src / "step_1234", tmp_path / "step_1")  # no all_config.yaml beside it
    with pytest.raises(UserError, match="no all_config.yaml next to"):
        load_checkpoint(tmp_path / "step_1")
    official = yaml.safe_load((src / "all_config.yaml").read_text())
    flat = tmp_path / "arch.yaml"
    flat.write_text(yaml.safe_dump({**official["arch"], "vocab_size": 11, "num_puzzle_identifiers": 7, "seq_len": 81}))
    baseline = load_checkpoint(src)
    for cfg in (src / "all_config.yaml", flat, official, official["arch"], baseline.config):
        loaded = load_checkpoint(tmp_path / "step_1", config=cfg)
        assert _same_weights(loaded, baseline) and loaded.config.hidden_size == 64
    assert loaded.config == baseline.config
    got, want = _q_halt(load_checkpoint(tmp_path / "step_1", config=flat), fixtures)  # seq_len=81 given explicitly
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_dtype_override_and_device(fixtures):
    loaded = load_checkpoint(fixtures / "hrm_official" / "rope_f32", dtype="bfloat16", device="cpu")
    assert loaded.config.forward_dtype == "bfloat16" and loaded.model.inner.H_init.dtype == torch.bfloat16
    got, want = _q_halt(loaded, fixtures)
    assert np.abs(got - want).max() < 0.1
    with pytest.raises(UserError, match="unsupported dtype"):
        load_checkpoint(fixtures / "hrm_official" / "rope_f32", dtype="float16")


def test_hub_repo_id_offline_is_a_user_error():
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        load_checkpoint("sapientinc/HRM-checkpoint-not-cached")


def test_normalize_keys_rejects_duplicates():
    t = torch.zeros(1)
    assert list(normalize_keys({"_orig_mod.model.inner.x": t})) == ["inner.x"]
    with pytest.raises(UserError, match="twice"):
        normalize_keys({"model.inner.x": t, "inner.x": t})


# --- validation -------------------------------------------------------------------------


@pytest.fixture
def tiny_state():
    torch.manual_seed(0)
    cfg = tiny_config()
    return cfg, {k: v.clone() for k, v in HRMACT(cfg).state_dict().items()}


def test_valid_report_counts_puzzle_embeddings_separately(tiny_state):
    cfg, sd = tiny_state
    report = validate_state_dict(sd, cfg)
    assert report.ok and not report.warnings
    assert report.param_counts["puzzle_embedding"] == 5 * 16
    assert report.param_counts == report.expected_counts
    assert report.summary().startswith("valid:")


def test_missing_and_unexpected_keys(tiny_state):
    cfg, sd = tiny_state
    sd.pop("inner.lm_head.weight")
    sd["inner.H_level.layers.1.mlp.down_proj.weight"] = torch.zeros(16, 256)
    sd["inner.something_else"] = torch.zeros(2)
    errors = validate_state_dict(sd, cfg).errors
    assert any(e.startswith("missing key inner.lm_head.weight") for e in errors)
    assert any("unexpected key inner.H_level.layers.1" in e and "H_layers=1" in e for e in errors)
    assert any(e.startswith("unexpected key inner.something_else") for e in errors)


def test_rope_vs_learned_and_puzzle_emb_hints(tiny_state):
    cfg, sd = tiny_state
    learned = cfg.model_copy(update={"pos_encodings": "learned"})
    assert any("trained with rope" in e for e in validate_state_dict(sd, learned).errors)
    no_puzzle = cfg.model_copy(update={"puzzle_emb_ndim": 0})
    assert any("puzzle_emb_ndim=0" in e for e in validate_state_dict(sd, no_puzzle).errors)


def test_shape_mismatch_explains_puzzle_identifier_count(tiny_state):
    cfg, sd = tiny_state
    report = validate_state_dict(sd, cfg.model_copy(update={"num_puzzle_identifiers": 9}), path="ckpt")
    (err,) = report.errors
    assert "shape mismatch for inner.puzzle_emb.weights" in err
    assert "5 puzzle embeddings but the config says num_puzzle_identifiers=9" in err and "identifiers.json" in err
    with pytest.raises(UserError, match=r"^ckpt: shape mismatch"):
        report.raise_if_invalid()
    vocab = validate_state_dict(sd, cfg.model_copy(update={"vocab_size": 8})).errors
    assert len(vocab) == 2 and all("vocab_size=8" in e for e in vocab)
    hidden = cfg.model_copy(update={"expansion": 40})
    assert any("expansion=40" in e for e in validate_state_dict(sd, hidden).errors)


def test_nonfinite_and_dtype_errors_per_tensor(tiny_state):
    cfg, sd = tiny_state
    sd["inner.q_head.weight"][0, :3] = float("nan")
    sd["inner.lm_head.weight"][1, 0] = float("inf")
    sd["inner.q_head.bias"] = torch.tensor([1, 2], dtype=torch.int64)
    sd["inner.embed_tokens.embedding_weight"] = sd["inner.embed_tokens.embedding_weight"].bfloat16()
    report = validate_state_dict(sd, cfg)
    assert "inner.q_head.weight has 3 NaN and 0 Inf of 32 values" in report.errors
    assert "inner.lm_head.weight has 0 NaN and 1 Inf of 112 values" in report.errors
    assert "inner.q_head.bias has dtype int64; weights must be floating point" in report.errors
    assert any("embed_tokens.embedding_weight stored as bfloat16" in w for w in report.warnings)
    statuses = {t.name: t.status for t in report.tensors}
    assert statuses["inner.q_head.weight"] == "nonfinite" and statuses["inner.q_head.bias"] == "dtype"


def test_config_mismatch_on_load_is_one_line(fixtures, tmp_path):
    src = fixtures / "hrm_official" / "rope_f32"
    shutil.copy(src / "step_1234", tmp_path / "step_1")
    official = yaml.safe_load((src / "all_config.yaml").read_text())
    official["arch"]["hidden_size"] = 128
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump(official))
    with pytest.raises(UserError) as e:
        load_checkpoint(tmp_path)
    assert "\n" not in str(e.value) and "hidden_size=128" in str(e.value) and "more; see" in str(e.value)


# --- bad files --------------------------------------------------------------------------


def test_truncated_corrupt_and_non_state_dict_files(fixtures, tmp_path):
    data = (fixtures / "hrm_official" / "rope_f32" / "step_1234").read_bytes()
    (tmp_path / "truncated").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage").write_bytes(b"not a checkpoint at all")
    (tmp_path / "empty").write_bytes(b"")
    torch.save({"weights": [1, 2, 3]}, tmp_path / "listy")
    torch.save(torch.zeros(3), tmp_path / "tensor")
    torch.save({"model": {"inner.x": torch.zeros(1)}, "step": 3}, tmp_path / "nested")
    torch.save(argparse.Namespace(lr=0.1), tmp_path / "pickle_obj")
    (tmp_path / "raw_pickle").write_bytes(pickle.dumps({"a": 1}, protocol=4))  # not written by torch.save
    cases = {
        "truncated": "truncated or corrupt",
        "garbage": r"corrupt or not a torch file \(Unsupported operand",
        "empty": "truncated or corrupt",
        "listy": "entry 'weights' holds a list, not a tensor",
        "tensor": "not a state dict: it holds a Tensor",
        "pickle_obj": "not a plain state dict: it contains argparse.Namespace",
        "raw_pickle": "corrupt or not a torch file",
    }
    for name, pattern in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch's pickle-protocol warning must not leak to the user
            with pytest.raises(UserError, match=pattern) as e:
                read_state_dict(tmp_path / name)
        assert "\n" not in str(e.value) and len(str(e.value)) < 300
    assert list(read_state_dict(tmp_path / "nested")) == ["inner.x"]  # {model: state_dict, ...} is unwrapped
    with pytest.raises(UserError, match="not found"):
        read_state_dict(tmp_path / "nope")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UserError, match="no checkpoint in"):
        resolve_checkpoint(tmp_path / "empty_dir")


def test_bad_all_config(tmp_path, tiny_state):
    cfg, sd = tiny_state
    torch.save(official_state_dict(HRMACT(cfg)), tmp_path / "step_1")
    (tmp_path / "all_config.yaml").write_text("arch: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_checkpoint(tmp_path)
    write_all_config(tmp_path, tiny_arch(H_cycles="two"))
    with pytest.raises(UserError, match="H_cycles"):
        load_checkpoint(tmp_path)
    write_all_config(tmp_path, tiny_arch())
    assert load_checkpoint(tmp_path).config.num_puzzle_identifiers == 5


def test_learned_config_for_rope_weights_names_the_mismatch(fixtures):
    with pytest.raises(UserError, match="pos_encodings=learned, but the checkpoint has no learned position table"):
        load_checkpoint(fixtures / "hrm_official" / "rope_f32", config=fixtures / "hrm_official" / "learned_bf16" / "all_config.yaml")

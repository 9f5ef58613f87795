"""`hrm train` with a TRM arch: the config union, EMA as TRM keeps and saves it, the loss under
no_ACT_continue, checkpoints with the official TRM keys, shapes, dtypes and config layout, and
the shipped `embedded:trm-sudoku-tiny`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from tinyreason.config import parse_command
from tinyreason.errors import UserError
from tinyreason.hrm.checkpoint import load_checkpoint, normalize_keys
from tinyreason.hrm.config import TRM_NAME, TRMArchConfig
from tinyreason.hrm.ema import EMA
from tinyreason.hrm.eval_loop import run_eval
from tinyreason.hrm.metrics import aggregate
from tinyreason.hrm.train import main as train_main
from tinyreason.hrm.train_config import TrainArch, TrainConfig, TRMTrainArch
from tinyreason.hub import resolve
from tinyreason.puzzles.dataset import PuzzleDatasetMetadata, open_split, write_identifiers, write_split
from tinyreason.runlog import read_metrics

from test_train import tiny_dataset

# Every field of TRM's PretrainConfig (pretrain.py), i.e. what its yaml.dump(config.model_dump()) writes.
TRM_PRETRAIN_FIELDS = {
    "arch", "data_paths", "data_paths_test", "evaluators", "global_batch_size", "epochs", "lr", "lr_min_ratio",
    "lr_warmup_steps", "weight_decay", "beta1", "beta2", "puzzle_emb_lr", "puzzle_emb_weight_decay", "project_name",
    "run_name", "load_checkpoint", "checkpoint_path", "seed", "checkpoint_every_eval", "eval_interval",
    "min_eval_interval", "eval_save_outputs", "ema", "ema_rate", "freeze_weights",
}
TINY_TRM = {"name": TRM_NAME, "H_cycles": 2, "L_cycles": 2, "L_layers": 1, "hidden_size": 32, "num_heads": 2, "expansion": 2,
            "puzzle_emb_ndim": 32, "puzzle_emb_len": 1, "halt_max_steps": 2, "forward_dtype": "float32"}


def write_config(tmp_path, data, arch: dict, **extra) -> str:
    cfg = {"arch": arch, "data_path": str(data), "checkpoint_path": str(tmp_path / "run"), "global_batch_size": 4,
           "epochs": 1000, "lr": 3e-3, "lr_warmup_steps": 5, "weight_decay": 0.0, "puzzle_emb_lr": 0.1, "device": "cpu",
           "log_every": 1, **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_train_config_arch_is_hrm_or_trm_by_name():
    base = ["data_path=d", "checkpoint_path=c"]
    hrm = parse_command(TrainConfig, base)
    assert isinstance(hrm.arch, TrainArch)  # no name: HRM, as every config before TRM
    trm = parse_command(TrainConfig, [*base, f"arch.name={TRM_NAME}", "arch.mlp_t=true", "arch.pos_encodings=none", "ema=true"])
    assert isinstance(trm.arch, TRMTrainArch) and trm.arch.mlp_t and trm.arch.pos_encodings == "none" and trm.ema
    assert (trm.arch.H_cycles, trm.arch.L_cycles, trm.arch.L_layers, trm.arch.puzzle_emb_len) == (3, 6, 2, 16)  # trm.yaml
    with pytest.raises(UserError, match="mlp_t"):  # a TRM key on an HRM arch is an unknown key, not ignored
        parse_command(TrainConfig, [*base, "arch.mlp_t=true"])
    with pytest.raises(UserError, match="pos_encodings"):
        parse_command(TrainConfig, [*base, "arch.pos_encodings=none"])


def test_ema_averages_parameters_only_and_replaces_them_in_the_state_dict():
    model = torch.nn.Linear(3, 2)
    model.register_buffer("table", torch.zeros(4))  # like the puzzle-embedding table: not averaged
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ema = EMA(model, rate=0.9)
    with torch.no_grad():
        model.weight.add_(1.0)
        model.table.add_(5.0)
    ema.update(model)
    averaged = ema.averaged_state_dict(model)
    assert torch.allclose(averaged["weight"], 0.1 * (start["weight"] + 1) + 0.9 * start["weight"])
    assert torch.allclose(averaged["bias"], start["bias"])  # unchanged parameter: its average stays
    assert torch.equal(averaged["table"], model.table)  # live buffer
    fresh = EMA(model, rate=0.9)
    fresh.load_state_dict(ema.state_dict())
    assert torch.equal(fresh.averaged_state_dict(model)["weight"], averaged["weight"])
    with pytest.raises(UserError, match="EMA state"):
        fresh.load_state_dict({"weight": averaged["weight"]})


def random_dataset(tmp_path, vocab: int, seq_len: int, puzzles: int):
    """`puzzles` random examples, each its own puzzle identifier (1..puzzles), in the official layout."""
    rng = np.random.default_rng(0)
    arrays = {"inputs": rng.integers(1, vocab, (puzzles, seq_len)).astype(np.int32),
              "labels": rng.integers(1, vocab, (puzzles, seq_len)).astype(np.int32),
              "puzzle_identifiers": np.arange(1, puzzles + 1, dtype=np.int32),
              "puzzle_indices": np.arange(puzzles + 1, dtype=np.int32), "group_indices": np.arange(puzzles + 1, dtype=np.int32)}
    meta = PuzzleDatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=vocab, seq_len=seq_len,
                                 num_puzzle_identifiers=puzzles + 1, total_groups=puzzles, mean_puzzle_examples=1.0, sets=["all"])
    root = tmp_path / "data"
    for split in ("train", "test"):
        write_split(root, split, arrays, meta)
    write_identifiers(root, ["<blank>"] + [f"p{i}" for i in range(puzzles)])
    return root


@pytest.mark.parametrize("name", ["att_rope_f32", "mlp_t_f32", "att_learned_bf16"])
def test_trm_checkpoint_has_the_official_keys_shapes_dtypes_and_config(fixtures, tmp_path, name):
    """One step with the arch of an official TRM checkpoint, on data of its sizes: same keys, shapes, dtypes."""
    ref_dir = fixtures / "trm_official" / name
    official = yaml.safe_load((ref_dir / "all_config.yaml").read_text())
    ref = torch.load(ref_dir / "step_1234", map_location="cpu", weights_only=True)
    vocab, ids = ref["_orig_mod.model.inner.embed_tokens.embedding_weight"].shape[0], ref["_orig_mod.model.inner.puzzle_emb.weights"].shape[0]
    seq_len = 100 if name == "att_learned_bf16" else 81
    data = random_dataset(tmp_path, vocab, seq_len, ids - 1)
    assert train_main(["--config", write_config(tmp_path, data, official["arch"], global_batch_size=4, ema=True), "max_steps=1"]) == 0
    ours = torch.load(tmp_path / "run" / "step_1", map_location="cpu", weights_only=True)
    assert list(ours) == list(ref)  # the official load_state_dict is strict
    assert {k: (tuple(v.shape), v.dtype) for k, v in ours.items()} == {k: (tuple(v.shape), v.dtype) for k, v in ref.items()}
    written = yaml.safe_load((tmp_path / "run" / "all_config.yaml").read_text())
    assert set(official) <= set(written) <= TRM_PRETRAIN_FIELDS
    assert written["arch"] == {**official["arch"], "expansion": float(official["arch"]["expansion"])}
    assert written["data_paths"] == [str(data)] and written["ema"] is True
    loaded = load_checkpoint(tmp_path / "run")
    assert isinstance(loaded.config, TRMArchConfig) and loaded.step == 1 and loaded.config.seq_len in (None, seq_len)


def test_no_ACT_continue_drops_the_q_continue_loss(tmp_path, fixtures):
    data = tiny_dataset(fixtures, tmp_path)
    for flag in (True, False):
        run = tmp_path / f"run{flag}"
        assert train_main(["--config", write_config(tmp_path, data, {**TINY_TRM, "no_ACT_continue": flag}),
                           f"checkpoint_path={run}", "max_steps=3"]) == 0
        rows = read_metrics(run)
        assert all(("train/q_continue_loss" in r) is (not flag) for r in rows) and len(rows) == 3
        assert (run / "train_state.pt").is_file() and "model" not in torch.load(run / "train_state.pt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("ema", [False, True])
def test_trm_trainer_learns_resumes_and_saves_the_ema_weights(fixtures, tmp_path, ema):
    data = tiny_dataset(fixtures, tmp_path)
    cfg = write_config(tmp_path, data, {**TINY_TRM, "hidden_size": 64, "num_heads": 4, "puzzle_emb_ndim": 64}, ema=ema,
                       ema_rate=0.9, log_every=10, checkpoint_every=40, eval_every=40)
    assert train_main(["--config", cfg, "max_steps=80"]) == 0
    assert train_main(["--config", cfg, "max_steps=150"]) == 0  # resumes at 80
    run = tmp_path / "run"
    rows = read_metrics(run)
    train_rows = [r for r in rows if "train/lm_loss" in r]
    assert [r["step"] for r in train_rows] == list(range(10, 151, 10))
    assert train_rows[-1]["train/lm_loss"] < 0.3 * train_rows[0]["train/lm_loss"]
    saved = normalize_keys(torch.load(run / "step_150", weights_only=True))
    state = torch.load(run / "train_state.pt", weights_only=True)
    if ema:  # step_N: averaged parameters, live buffers; the live weights for resume in train_state.pt
        assert all(torch.equal(saved[k], v) for k, v in state["ema"].items())
        assert not torch.equal(saved["inner.lm_head.weight"], state["model"]["inner.lm_head.weight"])
        assert torch.equal(saved["inner.puzzle_emb.weights"], state["model"]["inner.puzzle_emb.weights"])
    else:
        assert "ema" not in state and "model" not in state
    loaded = load_checkpoint(run)
    agg = aggregate(run_eval(loaded.model, open_split(data, "test"), show_progress=False))
    assert agg["accuracy"] > 0.8
    evals = [r for r in rows if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [40, 80, 120, 150] and evals[-1]["eval/accuracy"] == pytest.approx(agg["accuracy"])


def test_embedded_trm_evaluates_by_name_beside_the_hrm_data(tmp_path):
    from tinyreason.cli import main as cli

    out = tmp_path / "emb.json"
    assert cli(["hrm", "eval", "--checkpoint", "embedded:trm-sudoku-tiny", "--data", "embedded:hrm-sudoku-tiny/data",
                "--limit", "32", "--out", str(out), "--per-puzzle", "false"]) == 0
    result = json.loads(out.read_text())
    assert result["checkpoint"]["arch"]["name"] == TRM_NAME
    # Easy puzzles (77 givens): the shipped TRM solves nearly all (model card: every one of the 200).
    assert result["aggregate_metrics"]["solve_rate"] >= 0.9
    hard = open_split(resolve("embedded:trm-sudoku-tiny/data-hard"), "test")
    assert len(hard) == 200 and set((np.asarray(hard.inputs) > 1).sum(1).tolist()) == {35}  # 35 givens each

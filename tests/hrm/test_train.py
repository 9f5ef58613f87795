"""The small HRM trainer: schedule, sign-SGD, sampling, and overfitting a handful of puzzles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from tinyreason.config import parse_command
from tinyreason.errors import UserError
from tinyreason.hrm.checkpoint import load_checkpoint
from tinyreason.hrm.eval_loop import run_eval
from tinyreason.hrm.metrics import aggregate
from tinyreason.hrm.sign_sgd import SparseEmbeddingSignSGD
from tinyreason.hrm.train import lr_at, main as train_main
from tinyreason.hrm.train_config import TrainConfig, official_config
from tinyreason.hrm.train_data import batch_arrays, epoch_rows, train_batches
from tinyreason.puzzles.dataset import PuzzleDatasetMetadata, open_split, write_identifiers, write_split
from tinyreason.puzzles.merge import open_splits
from tinyreason.runlog import read_metrics


def test_lr_schedule_is_the_official_warmup_cosine():
    assert lr_at(0, 1.0, 10, 110, 0.1) == 0.0
    assert lr_at(5, 1.0, 10, 110, 0.1) == 0.5
    assert lr_at(10, 1.0, 10, 110, 0.1) == pytest.approx(1.0)
    assert lr_at(60, 1.0, 10, 110, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(110, 1.0, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_at(50, 2.0, 10, 110, 1.0) == 2.0  # lr_min_ratio 1: constant after warmup


def test_sparse_sign_sgd_updates_only_the_batch_rows():
    class Emb(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = torch.ones(4, 2)
            self.local_weights = torch.zeros(3, 2, requires_grad=True)
            self.local_ids = torch.tensor([1, 3, 1], dtype=torch.int32)

    emb = Emb()
    emb.local_weights.grad = torch.tensor([[1.0, -2.0], [-0.5, 0.0], [1.0, 5.0]])  # id 1 twice: sums to [2, 3]
    opt = SparseEmbeddingSignSGD(emb, lr=0.1, weight_decay=0.5)
    opt.step()
    decayed = 1 - 0.1 * 0.5
    assert torch.allclose(emb.weights[0], torch.ones(2)) and torch.allclose(emb.weights[2], torch.ones(2))
    assert torch.allclose(emb.weights[1], torch.tensor([decayed - 0.1, decayed - 0.1]))
    assert torch.allclose(emb.weights[3], torch.tensor([decayed + 0.1, decayed]))
    opt.zero_grad()
    assert emb.local_weights.grad is None


def test_epoch_rows_one_puzzle_per_group_full_batches_only(fixtures):
    data = open_split(fixtures / "hrm_datasets/sudoku-aug2", "train")
    batches = epoch_rows(data, 5, seed=0, epoch=0)
    rows = np.concatenate(batches)
    assert all(len(b) == 5 for b in batches) and len(batches) == data.metadata.total_groups // 5
    puzzles = data.example_puzzles(rows)
    groups = np.searchsorted(data.group_indices, puzzles, side="right") - 1
    assert len(set(groups.tolist())) == len(groups)  # never two puzzles of one group in an epoch
    assert [b.tolist() for b in epoch_rows(data, 5, 0, 0)] == [b.tolist() for b in batches]  # resumable
    assert [b.tolist() for b in epoch_rows(data, 5, 0, 1)] != [b.tolist() for b in batches]


def test_epoch_rows_of_several_folders_take_them_one_after_the_other(fixtures):
    # folder by folder as TRM's train loader iterates its data_paths, no batch spanning two
    noaug, aug2 = fixtures / "hrm_datasets/sudoku-noaug", fixtures / "hrm_datasets/sudoku-aug2"
    merged = open_splits([noaug, aug2], "train")
    first = len(open_split(noaug, "train"))  # 12 rows; aug2's 36 follow them
    batches = epoch_rows(merged, 5, seed=0, epoch=0)
    per_folder = [b for b in batches if b.max() < first], [b for b in batches if b.min() >= first]
    assert len(per_folder[0]) == len(per_folder[1]) == 2 == 12 // 5  # each folder's 12 groups; its last 2 rows dropped
    assert batches == per_folder[0] + per_folder[1]  # folder 0 first, and no batch mixes the two
    aug = open_split(aug2, "train")
    for b in per_folder[1]:
        arrays = batch_arrays(merged, b)
        assert np.array_equal(arrays["puzzle_identifiers"], aug.puzzle_identifiers[aug.example_puzzles(b - first)])  # ids as stored, not offset
        assert np.array_equal(arrays["inputs"], np.asarray(aug.inputs[b - first]))
    # a resume at (epoch 1, batch 3), past the folder boundary, yields what an unbroken run yields there
    unbroken = train_batches(merged, 5, seed=0)
    seen = [(e, i, a["inputs"].tolist()) for (e, i, a), _ in zip(unbroken, range(12))]
    resumed = train_batches(merged, 5, seed=0, start_epoch=1, skip=3)
    assert [(e, i, a["inputs"].tolist()) for (e, i, a), _ in zip(resumed, range(5))] == seen[7:]
    with pytest.raises(UserError, match="sudoku-noaug/train: 12 groups cannot fill one batch of 13 on their own"):
        epoch_rows(merged, 13, seed=0, epoch=0)  # 24 groups merged, but each folder batches alone


def test_official_config_names_every_data_folder():
    two = ["data_path=[a, b]", "checkpoint_path=c"]
    hrm = official_config(parse_command(TrainConfig, two))
    assert hrm["data_path"] == "a" and hrm["data_paths"] == ["a", "b"]  # HRM's trainer reads data_path only
    assert "data_paths" not in official_config(parse_command(TrainConfig, ["data_path=a", "checkpoint_path=c"]))
    trm = official_config(parse_command(TrainConfig, [*two, "arch.name=recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"]))
    assert trm["data_paths"] == ["a", "b"] and "data_path" not in trm


def tiny_dataset(fixtures, tmp_path, n: int = 4):
    """n hard sudoku of the fixture, each with its own puzzle identifier (so its embedding can learn it)."""
    src = open_split(fixtures / "hrm_datasets/sudoku-noaug", "train")
    meta = src.metadata.model_dump()
    arrays = {"inputs": np.asarray(src.inputs[:n]), "labels": np.asarray(src.labels[:n]),
              "puzzle_identifiers": np.arange(1, n + 1, dtype=np.int32), "puzzle_indices": np.arange(n + 1, dtype=np.int32),
              "group_indices": np.arange(n + 1, dtype=np.int32)}
    root = tmp_path / "data"
    for split in ("train", "test"):
        write_split(root, split, arrays, PuzzleDatasetMetadata(**{**meta, "total_groups": n, "num_puzzle_identifiers": n + 1}))
    write_identifiers(root, ["<blank>"] + [f"p{i}" for i in range(n)])
    return root


@pytest.mark.slow
def test_trainer_overfits_a_handful_of_puzzles_and_resumes(fixtures, tmp_path):
    data = tiny_dataset(fixtures, tmp_path)
    run = tmp_path / "run"
    cfg = {"arch": {"H_cycles": 1, "L_cycles": 2, "H_layers": 1, "L_layers": 1, "hidden_size": 64, "num_heads": 4,
                    "expansion": 2, "puzzle_emb_ndim": 64, "halt_max_steps": 2, "forward_dtype": "float32"},
           "data_path": str(data), "checkpoint_path": str(run), "global_batch_size": 4, "epochs": 1000,
           "lr": 3e-3, "lr_warmup_steps": 5, "weight_decay": 0.0, "puzzle_emb_lr": 0.1, "device": "cpu", "log_every": 10,
           "checkpoint_every": 40}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert train_main(["--config", str(tmp_path / "cfg.yaml"), "max_steps=80"]) == 0
    assert train_main(["--config", str(tmp_path / "cfg.yaml"), "max_steps=150"]) == 0  # resumes at 80
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == sorted(steps) and steps[-1] == 150 and len(steps) == len(set(steps))
    first, last = read_metrics(run)[0], read_metrics(run)[-1]
    assert last["train/lm_loss"] < 0.25 * first["train/lm_loss"]
    raw = torch.load(run / "step_150", weights_only=True)
    assert all(k.startswith("_orig_mod.model.inner.") for k in raw)  # what the official evaluate.py loads
    assert yaml.safe_load((run / "all_config.yaml").read_text())["arch"]["name"].endswith("HierarchicalReasoningModel_ACTV1")
    loaded = load_checkpoint(run)
    assert loaded.step == 150
    agg = aggregate(run_eval(loaded.model, open_split(data, "test"), show_progress=False))
    assert agg["accuracy"] > 0.9  # hard sudoku (~25 givens) memorised token by token
    assert (run / "training_curves.png").is_file()


def test_trainer_takes_several_data_folders(fixtures, tmp_path):
    a, b = tiny_dataset(fixtures, tmp_path / "a", n=2), tiny_dataset(fixtures, tmp_path / "b", n=2)
    run = tmp_path / "run"
    cfg = {"arch": {"H_cycles": 1, "L_cycles": 1, "H_layers": 1, "L_layers": 1, "hidden_size": 32, "num_heads": 2,
                    "expansion": 2, "puzzle_emb_ndim": 32, "halt_max_steps": 2, "forward_dtype": "float32"},
           "data_path": [str(a), str(b)], "checkpoint_path": str(run), "global_batch_size": 2, "epochs": 1000,
           "device": "cpu", "log_every": 1, "eval_every": 2, "eval_limit": 4}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert train_main(["--config", str(tmp_path / "cfg.yaml"), "max_steps=2"]) == 0
    loaded = load_checkpoint(run)
    assert loaded.config.num_puzzle_identifiers == 2 * 3  # summed over the folders, as TRM's merged metadata
    assert yaml.safe_load((run / "all_config.yaml").read_text())["data_paths"] == [str(a), str(b)]
    assert read_metrics(run)[-1]["step"] == 2 and "eval/accuracy" in read_metrics(run)[-1]


def test_trainer_runs_the_estimated_steps_past_the_configured_epochs(fixtures, tmp_path):
    """The official step estimate (epochs x groups x examples / batch) counts the incomplete last
    batch each epoch drops: 4 epochs of 3 puzzles at batch 2 estimate 6 steps, one real batch per
    epoch. The official loop would stop after 4; ours trains the 6 (into epochs 4 and 5)."""
    data = tiny_dataset(fixtures, tmp_path, n=3)
    run = tmp_path / "run"
    cfg = {"arch": {"H_cycles": 1, "L_cycles": 1, "H_layers": 1, "L_layers": 1, "hidden_size": 32, "num_heads": 2,
                    "expansion": 2, "puzzle_emb_ndim": 32, "halt_max_steps": 2, "forward_dtype": "float32"},
           "data_path": str(data), "checkpoint_path": str(run), "global_batch_size": 2, "epochs": 4,
           "device": "cpu", "log_every": 1}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert train_main(["--config", str(tmp_path / "cfg.yaml")]) == 0
    logged = [(r["step"], r["epoch"]) for r in read_metrics(run) if "epoch" in r]
    assert logged == [(s, s - 1) for s in range(1, 7)]
    assert load_checkpoint(run).step == 6


@pytest.mark.slow
def test_trainer_reports_to_tensorboard_across_a_resume(fixtures, tmp_path):
    from tracker_files import metrics_series, same_series, tensorboard_scalars

    data = tiny_dataset(fixtures, tmp_path, n=2)
    run = tmp_path / "run"
    cfg = {"arch": {"H_cycles": 1, "L_cycles": 1, "H_layers": 1, "L_layers": 1, "hidden_size": 32, "num_heads": 2,
                    "expansion": 2, "puzzle_emb_ndim": 32, "halt_max_steps": 2, "forward_dtype": "float32"},
           "data_path": str(data), "checkpoint_path": str(run), "global_batch_size": 2, "epochs": 1000, "device": "cpu",
           "log_every": 2, "eval_every": 3, "eval_limit": 2, "checkpoint_every": 4, "report_to": "tensorboard"}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert train_main(["--config", str(tmp_path / "cfg.yaml"), "max_steps=6"]) == 0
    assert train_main(["--config", str(tmp_path / "cfg.yaml"), "max_steps=8"]) == 0  # resumes at 6
    logged = tensorboard_scalars(run)
    assert [s for s, _ in logged["train/lm_loss"]] == [2, 4, 6, 8] and [s for s, _ in logged["eval/accuracy"]] == [3, 6, 8]
    assert same_series(logged, metrics_series(run))

"""`report_to` through the trainers: `chess sft` to TensorBoard, `chess grpo` to W&B (offline), each
holding what metrics.jsonl holds."""

import pytest
from tracker_files import metrics_series, offline_wandb, same_series, tensorboard_scalars, wandb_series

from tinyreason.chess import grpo as chess_grpo, sft as chess_sft

pytestmark = pytest.mark.slow


def test_sft_reports_to_tensorboard(rook_data, tmp_path):
    args = [f"train_data=[{rook_data}]", "train_split=null", f"eval_data=[{rook_data}]", "eval_split=null",
            "eval_limit=2", "char_tokenizer=true", "arch.n_layer=1", "arch.n_embd=16", "arch.n_head=2", "seq_len=64",
            "batch_size=2", "max_steps=3", "eval_every=2", "save_every=0", f"run_dir={tmp_path / 'run'}", "device=cpu",
            "report_to=tensorboard"]
    assert chess_sft.main(args) == 0
    logged = tensorboard_scalars(tmp_path / "run")
    assert {"loss", "eval_loss", "lr", "grad_norm"} <= logged.keys() and [s for s, _ in logged["loss"]] == [1, 2, 3]
    assert same_series(logged, metrics_series(tmp_path / "run"))


def test_grpo_reports_to_wandb_offline(tiny_model_dir, rook_data, tmp_path, monkeypatch):
    offline_wandb(monkeypatch, tmp_path / "wandb-home")
    args = {"model": tiny_model_dir, "train_data": f"[{rook_data}]", "train_split": "null", "eval_data": f"[{rook_data}]",
            "eval_split": "null", "eval_limit": 2, "eval_every": 2, "eval_max_new_tokens": 8, "group_size": 2,
            "prompts_per_step": 2, "micro_batch_size": 4, "sampling.max_new_tokens": 8, "max_steps": 2, "save_every": 0,
            "run_dir": tmp_path / "run", "device": "cpu", "task_ratio": "1:1", "report_to": "wandb"}
    assert chess_grpo.main([f"{k}={v}" for k, v in args.items()]) == 0
    logged = wandb_series(tmp_path / "run")
    assert {"reward_mean", "reward/policy/mean", "reward/env/mean", "kl", "eval/policy_legal_rate"} <= logged.keys()
    assert same_series(logged, metrics_series(tmp_path / "run"))

"""`tinyreason hrm train --config FILE`: a small HRM trainer with the official loss and layout.

Follows sapientinc/HRM `pretrain.py`: ACT in training mode (Q-learning halting with
exploration; the carry persists across steps, so only halted rows take new examples), the
`ACTLossHead` loss (`hrm.losses.act_loss`) scaled by 1/global_batch_size, gradients summed
over torchrun ranks, sign-SGD for the sparse puzzle embedding, linear warmup then cosine
decay to lr * lr_min_ratio over the estimated total steps. Checkpoints are
`<checkpoint_path>/step_N`, plain state dicts keyed `_orig_mod.model.inner.…` (what the
official `evaluate.py` loads into its compiled ACTLossHead), beside an `all_config.yaml` in
the official layout. Resume state (optimizer, step, data position) is `train_state.pt`,
loaded with weights_only=True; random streams are re-derived from (seed, rank, step). Departures: AdamW instead of AdamATan2 (not on PyPI for
CPU), and a resumed run restarts the ACT carry (in-flight rows begin again).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import yaml
from pydantic import Field

from tinyreason import dist
from tinyreason.config import StrictModel, parse_command
from tinyreason.device import pick_device
from tinyreason.fileio import atomic_torch_save, atomic_write, atomic_write_text
from tinyreason.hrm.checkpoint import read_state_dict
from tinyreason.hrm.config import OFFICIAL_NAME, HRMLossConfig, make_config
from tinyreason.hrm.eval_loop import run_eval
from tinyreason.hrm.losses import act_loss
from tinyreason.hrm.metrics import aggregate
from tinyreason.hrm.model import HRMACT
from tinyreason.hrm.sign_sgd import SparseEmbeddingSignSGD
from tinyreason.hrm.train_data import train_batches
from tinyreason.puzzles.dataset import open_split
from tinyreason.runlog import RunDir, console, make_progress, read_metrics

STATE_FILE = "train_state.pt"


class TrainArch(StrictModel):
    """The official `arch` section (defaults of the official config/arch/hrm_v1.yaml)."""

    name: str = OFFICIAL_NAME
    loss: HRMLossConfig = Field(default_factory=HRMLossConfig)
    H_cycles: int = Field(2, ge=1)
    L_cycles: int = Field(2, ge=1)
    H_layers: int = Field(4, ge=1)
    L_layers: int = Field(4, ge=1)
    hidden_size: int = Field(512, ge=1)
    expansion: float = Field(4.0, gt=0)
    num_heads: int = Field(8, ge=1)
    pos_encodings: Literal["rope", "learned"] = "rope"
    puzzle_emb_ndim: int = Field(512, ge=0)
    halt_max_steps: int = Field(16, ge=1)
    halt_exploration_prob: float = Field(0.1, ge=0, le=1)
    forward_dtype: Literal["bfloat16", "float32"] = "bfloat16"


class TrainConfig(StrictModel):
    """Train an HRM (official hyper-parameter names; defaults of the official cfg_pretrain.yaml)."""

    arch: TrainArch = Field(default_factory=TrainArch)
    data_path: str = Field(..., description="dataset folder in the official layout (train split; test for evals)")
    checkpoint_path: str = Field(..., description="run folder: step_N, all_config.yaml, metrics.jsonl")
    global_batch_size: int = Field(768, ge=1)
    epochs: int = Field(100000, ge=1)
    lr: float = 1e-4
    lr_min_ratio: float = 1.0
    lr_warmup_steps: int = Field(2000, ge=0)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
    seed: int = 0
    project_name: str | None = None
    run_name: str | None = None
    max_steps: int | None = Field(None, ge=1, description="stop here (also the end of the cosine schedule)")
    checkpoint_every: int = Field(500, ge=1, description="steps between step_N checkpoints (and at the end)")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations on the test split")
    eval_limit: int | None = Field(256, ge=1)
    log_every: int = Field(10, ge=1)
    device: str = "auto"
    resume: bool = Field(True, description="continue from train_state.pt in checkpoint_path when present")


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """Official `cosine_schedule_with_warmup_lr_lambda` (half cosine to base_lr * min_ratio)."""
    if step < warmup:
        return base_lr * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))))


def official_config(cfg: TrainConfig) -> dict:
    """`all_config.yaml` as the official trainer dumps its PretrainConfig."""
    return {
        "arch": cfg.arch.model_dump(mode="json"), "data_path": cfg.data_path, "global_batch_size": cfg.global_batch_size,
        "epochs": cfg.epochs, "lr": cfg.lr, "lr_min_ratio": cfg.lr_min_ratio, "lr_warmup_steps": cfg.lr_warmup_steps,
        "weight_decay": cfg.weight_decay, "beta1": cfg.beta1, "beta2": cfg.beta2, "puzzle_emb_lr": cfg.puzzle_emb_lr,
        "puzzle_emb_weight_decay": cfg.puzzle_emb_weight_decay, "project_name": cfg.project_name,
        "run_name": cfg.run_name, "checkpoint_path": cfg.checkpoint_path, "seed": cfg.seed,
        "checkpoint_every_eval": True, "eval_interval": None, "eval_save_outputs": [],
    }


def save_checkpoint(model: HRMACT, run: Path, step: int) -> Path:
    """`step_N`: the official trainer's key layout (`_orig_mod.model.` + our `inner.…` names)."""
    state = {f"_orig_mod.model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return atomic_torch_save(state, run / f"step_{step}")


def reduce_metrics(metrics: dict[str, torch.Tensor], global_batch_size: int) -> dict[str, float]:
    """Sum over ranks, then the official normalisation: losses / global batch, the rest / count."""
    keys = sorted(metrics)
    values = torch.stack([metrics[k].detach().float().cpu() for k in keys])
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(values)
    raw = dict(zip(keys, values.tolist()))
    count = raw.pop("count")
    # A step where no row halted has no accuracy / steps to report (not 0): only its losses.
    return {f"train/{k}": v / (global_batch_size if k.endswith("loss") else count) for k, v in raw.items() if k.endswith("loss") or count > 0}


def main(argv: list[str]) -> int:
    cfg = parse_command(TrainConfig, argv, prog="tinyreason hrm train")
    device = pick_device(cfg.device)
    info = dist.init(device.type)
    try:
        return train(cfg, info, device)
    finally:
        dist.cleanup()


def train(cfg: TrainConfig, info: dist.DistInfo, device: torch.device) -> int:
    run = Path(cfg.checkpoint_path)
    rundir = RunDir(run, is_main=info.is_main)
    data = open_split(cfg.data_path, "train")
    meta = data.metadata
    arch = make_config({
        **cfg.arch.model_dump(), "batch_size": cfg.global_batch_size // info.world_size, "vocab_size": meta.vocab_size,
        "seq_len": meta.seq_len, "num_puzzle_identifiers": meta.num_puzzle_identifiers,
    })
    total = int(cfg.epochs * meta.total_groups * meta.mean_puzzle_examples / cfg.global_batch_size)
    total = min(total, cfg.max_steps) if cfg.max_steps else total
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = HRMACT(arch).to(device)
    adamw = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2))
    sparse = SparseEmbeddingSignSGD(model.puzzle_emb, weight_decay=cfg.puzzle_emb_weight_decay) if arch.puzzle_emb_ndim > 0 else None
    step, epoch, skip = 0, 0, 0
    if cfg.resume and (run / STATE_FILE).is_file():
        state = torch.load(run / STATE_FILE, map_location="cpu", weights_only=True)
        step, epoch, skip = int(state["step"]), int(state["epoch"]), int(state["next_batch"])
        model.load_state_dict(read_state_dict(run / f"step_{step}"))
        adamw.load_state_dict(state["adamw"])
        rundir.truncate_after(step)
        console.print(f"resumed from {run / f'step_{step}'} (epoch {epoch}, batch {skip})")
    torch.manual_seed(cfg.seed + info.rank + step)  # exploration noise differs per rank, and after resume
    if info.is_main:
        rundir.write_config(cfg)
        atomic_write_text(run / "all_config.yaml", yaml.safe_dump(official_config(cfg)))
    test = open_split(cfg.data_path, "test") if cfg.eval_every else None
    model.train()
    carry = None
    batches = train_batches(data, cfg.global_batch_size, cfg.seed, info.rank, info.world_size, epoch, skip)
    with make_progress() as bar:
        task = bar.add_task("hrm train", total=total, completed=step, info="", visible=info.is_main)
        while step < total:
            epoch, index, arrays = next(batches)
            step += 1
            batch = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
            if carry is None:
                carry = model.initial_carry(batch)
            carry, outputs = model(carry, batch)
            loss, metrics = act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, arch.loss.loss_type)
            (loss / cfg.global_batch_size).backward()
            if info.world_size > 1:
                for p in model.parameters():
                    if p.grad is not None:
                        torch.distributed.all_reduce(p.grad)
            factor = lr_at(step, 1.0, cfg.lr_warmup_steps, total, cfg.lr_min_ratio)
            for group in adamw.param_groups:
                group["lr"] = cfg.lr * factor
            adamw.step()
            adamw.zero_grad(set_to_none=True)
            if sparse is not None:
                sparse.lr = cfg.puzzle_emb_lr * factor
                sparse.step()
                sparse.zero_grad()
            record = reduce_metrics(metrics, cfg.global_batch_size)
            if step % cfg.log_every == 0 or step == total:
                rundir.log({"step": step, "epoch": epoch, "lr": cfg.lr * factor, **record})
                bar.update(task, completed=step, info=f"lm {record['train/lm_loss']:.3f} acc {record.get('train/accuracy', float('nan')):.3f}")
            if cfg.eval_every and (step % cfg.eval_every == 0 or step == total):
                per = run_eval(model, test, loss_type=arch.loss.loss_type, limit=cfg.eval_limit, show_progress=False)
                agg = aggregate(per, arch.halt_max_steps)
                keys = ("accuracy", "exact_accuracy", "solve_rate", "q_halt_accuracy", "steps", "lm_loss")
                rundir.log({"step": step, **{f"eval/{k}": agg[k] for k in keys}})
                model.train()
            if step % cfg.checkpoint_every == 0 or step == total:
                if info.is_main:
                    save_checkpoint(model, run, step)
                    atomic_torch_save({"step": step, "epoch": epoch, "next_batch": index + 1, "adamw": adamw.state_dict()}, run / STATE_FILE)
                dist.barrier()
    if info.is_main:
        plot_curves(run)
        console.print(f"done: {step} steps; checkpoints in {run}")
    return 0


def plot_curves(run: Path) -> None:
    """training_curves.png: train loss/accuracy and eval accuracy over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run)
    if not rows:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, ax in (("train/lm_loss", ax1), ("train/q_halt_loss", ax1), ("train/accuracy", ax2), ("train/exact_accuracy", ax2),
                    ("eval/accuracy", ax2), ("eval/exact_accuracy", ax2), ("eval/solve_rate", ax2)):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            ax.plot(*np.array(pts).T, label=key, marker="." if key.startswith("eval") else None)
    for ax, title in ((ax1, "loss"), (ax2, "accuracy")):
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(run / "training_curves.png", lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)

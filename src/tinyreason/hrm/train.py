"""`tinyreason hrm train --config FILE`: a small trainer for the HRM family (HRM, TRM), official loss and layout.

Follows sapientinc/HRM `pretrain.py` (and TRM's, the same loop): ACT in training mode (Q-learning halting with
exploration; the carry persists across steps, so only halted rows take new examples), the
`ACTLossHead` loss (`hrm.losses.act_loss`) scaled by 1/global_batch_size, gradients summed
over torchrun ranks, sign-SGD for the sparse puzzle embedding, linear warmup then cosine
decay to lr * lr_min_ratio over the estimated total steps (the official formula, epochs x
groups x mean examples per puzzle / batch). Departure: that estimate counts the examples the
batching drops (cut puzzles, incomplete last batches), so real epochs hold fewer batches; the
official loop ends with its last epoch, short of the estimate and of the schedule's end, while
ours runs on into the next epoch until the estimated step. Checkpoints are
`<checkpoint_path>/step_N`, plain state dicts keyed `_orig_mod.model.inner.…` (what the
official `evaluate.py` loads into its compiled ACTLossHead), beside an `all_config.yaml` in
the official layout. Resume state (optimizer, step, data position) is `train_state.pt`,
loaded with weights_only=True; random streams are re-derived from (seed, rank, step).
`data_path` may list several folders: merged as TRM's `data_paths` (`puzzles.merge`); the
folders take turns in the train batches (`hrm.train_data`, with its departure). Departures: AdamW instead of AdamATan2 (not on PyPI for
CPU), and a resumed run restarts the ACT carry (in-flight rows begin again).

A TRM `arch` (`arch.name` recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1) trains
as TRM's `pretrain.py` does: the same deep supervision (each ACT step is one supervised
step on the detached carry), the same `ACTLossHead` loss, which has no Q-continue term
under `no_ACT_continue` (the model then returns no continue target); `all_config.yaml` in
TRM's layout (`data_paths`, `ema`, `evaluators`, ...). `ema: true` keeps TRM's EMA of the
parameters (`hrm.ema`); evaluations use the averaged model and `step_N` holds the averaged
weights, as TRM saves them, while `train_state.pt` keeps the live weights and the average
for resume. Departure: TRM's loop keeps updating the EMA on the batches of its last epoch
that come after total_steps (no optimizer step); ours stops at the last step.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from tinyreason import dist
from tinyreason.config import parse_command
from tinyreason.contention import StepWatchdog
from tinyreason.device import pick_device
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_torch_save, atomic_write, atomic_write_text, read_torch
from tinyreason.hrm.checkpoint import STEP_FILE, read_state_dict
from tinyreason.hrm.config import make_config
from tinyreason.hrm.ema import EMA
from tinyreason.hrm.eval_loop import run_eval
from tinyreason.hrm.losses import act_loss
from tinyreason.hrm.metrics import aggregate
from tinyreason.hrm.model import HRMACT
from tinyreason.hrm.sign_sgd import SparseEmbeddingSignSGD
from tinyreason.hrm.train_config import TrainConfig, data_paths, official_config
from tinyreason.hrm.train_data import train_batches
from tinyreason.puzzles.merge import limit_warning, open_splits
from tinyreason.runguard import drop_run_logs, start_run
from tinyreason.runlog import RunDir, console, make_progress, read_metrics

STATE_FILE = "train_state.pt"


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """Official `cosine_schedule_with_warmup_lr_lambda` (half cosine to base_lr * min_ratio)."""
    if step < warmup:
        return base_lr * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))))


def save_checkpoint(model: HRMACT, run: Path, step: int, ema: EMA | None = None) -> Path:
    """`step_N`: the official trainer's key layout (`_orig_mod.model.` + our `inner.…` names); with EMA its weights."""
    state = ema.averaged_state_dict(model) if ema is not None else model.state_dict()
    state = {f"_orig_mod.model.{k}": v.detach().cpu().clone() for k, v in state.items()}
    return atomic_torch_save(state, run / f"step_{step}")


def averaged_model(model: HRMACT, ema: EMA) -> HRMACT:
    """A copy of the model holding the EMA weights (what TRM evaluates and saves with `ema: true`)."""
    copy = HRMACT(model.config).to(next(model.parameters()).device)
    copy.load_state_dict(ema.averaged_state_dict(model))
    return copy


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
        with start_run(cfg.checkpoint_path, cfg.resume, cfg.overwrite):
            if cfg.resume and info.is_main and not (Path(cfg.checkpoint_path) / STATE_FILE).is_file():
                resume_without_state(Path(cfg.checkpoint_path))
            return train(cfg, info, device)
    finally:
        dist.cleanup()


def resume_without_state(run: Path) -> None:
    """A resume with no train_state.pt starts clean: the dead run's metrics go (its steps would
    repeat). Official or foreign step_N files there are not overwritten silently: refused."""
    if any(STEP_FILE.match(p.name) for p in run.glob("step_*")):
        raise UserError(f"{run} holds step_N checkpoints but no {STATE_FILE} to resume from: "
                        f"--overwrite to start over, or train into another folder")
    drop_run_logs(run)


def train(cfg: TrainConfig, info: dist.DistInfo, device: torch.device) -> int:
    run = Path(cfg.checkpoint_path)
    rundir = RunDir(run, is_main=info.is_main)
    data = open_splits(data_paths(cfg), "train")  # several folders: merged as TRM's data_paths
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
    state = None
    if cfg.resume and (run / STATE_FILE).is_file():
        state = read_torch(run / STATE_FILE, "training state")
        try:  # a foreign state, or a run with another architecture: one line, not a traceback
            step, epoch, skip = int(state["step"]), int(state["epoch"]), int(state["next_batch"])
            # With EMA, step_N holds the average: the live weights are in the train state.
            model.load_state_dict(state["model"] if "model" in state else read_state_dict(run / f"step_{step}"))
            adamw.load_state_dict(state["adamw"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            why = " ".join(str(e).split())[:200] or type(e).__name__
            raise UserError(f"cannot resume from {run / STATE_FILE} ({why}): another architecture? "
                            f"resume with the run's settings, or --overwrite") from None
        rundir.truncate_after(step)
        console.print(f"resumed from {run / f'step_{step}'} (epoch {epoch}, batch {skip})")
    ema = EMA(model, cfg.ema_rate) if cfg.ema else None  # starts from the (loaded) weights, as TRM registers it
    if ema is not None and state is not None and "ema" in state:
        ema.load_state_dict(state["ema"])
    torch.manual_seed(cfg.seed + info.rank + step)  # exploration noise differs per rank, and after resume
    if info.is_main:
        rundir.write_config(cfg)
        atomic_write_text(run / "all_config.yaml", yaml.safe_dump(official_config(cfg)))
        rundir.report_to(cfg.report_to, cfg, cfg.project_name, cfg.run_name)
    test = open_splits(data_paths(cfg), "test") if cfg.eval_every else None
    if info.is_main and test is not None and (note := limit_warning(test, cfg.eval_limit)):
        console.print(f"evaluations (eval_limit): {note}")
    model.train()
    carry = None
    batches = train_batches(data, cfg.global_batch_size, cfg.seed, info.rank, info.world_size, epoch, skip)
    with make_progress() as bar, StepWatchdog(cfg.cpu_watchdog and device.type == "cpu",
                                              console.print if info.is_main else None) as watchdog:
        task = bar.add_task("hrm train", total=total, completed=step, info="", visible=info.is_main)
        while step < total:
            t0 = time.perf_counter()
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
            if ema is not None:
                ema.update(model)
            record = reduce_metrics(metrics, cfg.global_batch_size)
            if event := watchdog.observe(time.perf_counter() - t0):
                rundir.log({"step": step, **event})
            if step % cfg.log_every == 0 or step == total:
                rundir.log({"step": step, "epoch": epoch, "lr": cfg.lr * factor, **record})
                bar.update(task, completed=step, info=f"lm {record['train/lm_loss']:.3f} acc {record.get('train/accuracy', float('nan')):.3f}")
            if cfg.eval_every and (step % cfg.eval_every == 0 or step == total):
                evaluated = averaged_model(model, ema) if ema is not None else model  # TRM evaluates the EMA copy
                per = run_eval(evaluated, test, loss_type=arch.loss.loss_type, limit=cfg.eval_limit, show_progress=False)
                agg = aggregate(per, arch.halt_max_steps)
                keys = ("accuracy", "exact_accuracy", "solve_rate", "q_halt_accuracy", "steps", "lm_loss")
                rundir.log({"step": step, **{f"eval/{k}": agg[k] for k in keys}})
                model.train()
            if step % cfg.checkpoint_every == 0 or step == total:
                if info.is_main:
                    save_checkpoint(model, run, step, ema)
                    resume = {"step": step, "epoch": epoch, "next_batch": index + 1, "adamw": adamw.state_dict()}
                    if ema is not None:
                        resume.update(model=model.state_dict(), ema=ema.state_dict())
                    atomic_torch_save(resume, run / STATE_FILE)
                dist.barrier()
    if info.is_main:
        plot_curves(run)
        console.print(f"done: {step} steps; checkpoints in {run}")
    rundir.close()
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
        if ax.lines:  # a very short run may have logged no accuracy yet (no row halted)
            ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(run / "training_curves.png", lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)

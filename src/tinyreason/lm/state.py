"""Training checkpoints: model folder (save_pretrained) + training state, written atomically.

Layout: `RUN/checkpoints/step_0000010/` holds the model and tokenizer as Hugging Face
files (loadable by `load_model` or plain transformers) and `trainer_state.pt` (optimizer,
scheduler, RNG states of every rank, step, data position). The state holds only tensors
and plain Python types, so it loads with `torch.load(weights_only=True)`.
`RUN/checkpoints/latest.json` names the newest complete checkpoint.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_json, read_torch
from tinyreason.lm.model import save_model
from tinyreason.runguard import drop_run_logs
from tinyreason.runguard import prune_steps, step_number

STATE_FILE = "trainer_state.pt"


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states as tensors and plain types."""
    version, py_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(run_dir: str | Path, step: int, model, tokenizer, state: dict[str, Any], keep: int = 2) -> Path:
    """Write `step_{step}` (model + state) atomically, point latest.json at it, prune old ones
    (by step number: the one just written is never removed)."""
    root = Path(run_dir) / "checkpoints"
    out = root / f"step_{step:07d}"
    save_model(model, tokenizer, out, extra=lambda tmp: torch.save({**state, "step": step}, tmp / STATE_FILE))
    atomic_write_json(root / "latest.json", {"step": step, "path": out.name})
    if keep > 0:
        prune_steps(root, keep, out)
    return out


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint latest.json names; else (missing or unreadable pointer) the complete
    `step_N` with the highest step number; None without one."""
    root = Path(run_dir) / "checkpoints"
    latest = root / "latest.json"
    if latest.is_file():
        try:
            path = root / json.loads(latest.read_text(encoding="utf-8"))["path"]
            if (path / STATE_FILE).is_file():
                return path
        except (ValueError, KeyError, TypeError):  # a torn or foreign latest.json: the folders decide
            pass
    done = [p for p in root.glob("step_*") if step_number(p) is not None and (p / STATE_FILE).is_file()]
    return max(done, key=step_number) if done else None


def load_state(ckpt_dir: str | Path) -> dict[str, Any]:
    path = Path(ckpt_dir) / STATE_FILE
    if not path.is_file():
        raise UserError(f"{ckpt_dir} has no {STATE_FILE} (not a training checkpoint)")
    state = read_torch(path, "training state")
    if not isinstance(state, dict) or not {"step", "rng", "optimizer", "scheduler"} <= set(state):
        raise UserError(f"training state {path} is not a trainer state (missing step/rng/optimizer/scheduler)")
    return state


def load_weights(model, ckpt_dir: str | Path) -> None:
    """Copy a checkpoint's safetensors weights into `model` (same architecture)."""
    from safetensors.torch import load_file

    files = sorted(Path(ckpt_dir).glob("*.safetensors"))
    if not files:
        raise UserError(f"{ckpt_dir} has no .safetensors weights")
    from safetensors import SafetensorError

    sd: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            sd.update(load_file(f))
        except (SafetensorError, OSError) as e:
            raise UserError(f"checkpoint weights {f} are truncated or corrupt ({str(e).splitlines()[0][:200]})") from None
    own = model.state_dict()
    changed = [k for k, v in sd.items() if k in own and own[k].shape != v.shape]
    if changed:
        k = changed[0]
        raise UserError(f"checkpoint {ckpt_dir} has another architecture than this run ({k}: {tuple(sd[k].shape)} "
                        f"in the checkpoint, {tuple(own[k].shape)} here): resume with its settings, or --overwrite")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to wte, not stored
    if missing or unexpected:
        raise UserError(f"checkpoint {ckpt_dir} does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop lines of a JSONL log with step > `step` (after a resume)."""
    if not path.exists():
        return
    from tinyreason.fileio import atomic_write_text

    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", -1) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            pass
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def resume_training(run, model, optimizer, scheduler, rank: int, world_size: int) -> dict[str, Any] | None:
    """Restore model, optimizer, scheduler and this rank's RNG from the run's latest checkpoint and
    cut the run's metrics after its step. Returns the state (plus "path"), or None without one."""
    from tinyreason.runlog import console

    ckpt = latest_checkpoint(run.path)
    if ckpt is None:
        if run.is_main:
            drop_run_logs(run.path)
        if rank == 0:
            console.print(f"--resume: no complete checkpoint in {run.path}/checkpoints, starting fresh")
        return None
    state = load_state(ckpt)
    if len(state["rng"]) != world_size:
        raise UserError(f"checkpoint {ckpt} was written by {len(state['rng'])} ranks, this run has {world_size}")
    load_weights(model, ckpt)
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (ValueError, KeyError, RuntimeError) as e:  # other parameter groups/shapes: another model or optimizer
        raise UserError(f"checkpoint {ckpt}: its optimizer state does not fit this run ({str(e).splitlines()[0][:200]})") from None
    set_rng_state(state["rng"][rank])
    run.truncate_after(state["step"])
    if rank == 0:
        console.print(f"resumed from {ckpt} (step {state['step']})")
    return {**state, "path": ckpt}


def save_training(run, step: int, model, tokenizer, optimizer, scheduler, extra: dict[str, Any], keep: int) -> Path | None:
    """Checkpoint from every rank's view: RNG states gathered, rank 0 writes, all wait.
    Returns the checkpoint folder on rank 0 (None elsewhere)."""
    from tinyreason import dist

    rngs = dist.all_gather_objects(rng_state())
    out = None
    if run.is_main:
        out = save_checkpoint(run.path, step, model, tokenizer, {
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rngs, **extra}, keep=keep)
    dist.barrier()
    return out

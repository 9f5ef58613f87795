"""Load HRM-family checkpoints (official sapientinc/HRM and TRM formats: files, run folders, Hub repos).

Both official trainers save `torch.save(model.state_dict())` of the compiled loss head as
`<run>/step_<N>` next to `all_config.yaml`; published checkpoints on the Hub name the file
`checkpoint`. `all_config.yaml`'s `arch.name` says which family (HRM or TRM). Keys carry `_orig_mod.` (torch.compile) and `model.` (loss head) prefixes,
which we strip. Files load with `torch.load(weights_only=True)` (or safetensors), never
by unpickling arbitrary objects. Every failure is a one-line UserError.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tinyreason import hub
from tinyreason.device import pick_device, pick_dtype
from tinyreason.errors import UserError
from tinyreason.hrm.config import ArchConfig, HRMArchConfig, TRMArchConfig, from_official, load_arch_config, read_yaml
from tinyreason.hrm.model import HRMACT
from tinyreason.hrm.validation import ValidationReport, validate_state_dict

__all__ = [
    "HUB_PATTERNS", "LoadedCheckpoint", "find_checkpoints", "load_checkpoint", "normalize_keys",
    "read_state_dict", "resolve_checkpoint", "resolve_config", "validate_state_dict", "ValidationReport",
]

HUB_PATTERNS = ["checkpoint", "all_config.yaml", "step_*", "*.yaml", "*.safetensors", "*.json"]
STEP_FILE = re.compile(r"^step_(\d+)(?:\.(?:pt|pth|bin|safetensors))?$")
_PREFIXES = ("_orig_mod.", "model.", "module.")
_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict")


@dataclass
class LoadedCheckpoint:
    model: HRMACT  # in eval mode, on the requested device (an HRM or a TRM inside the ACT wrapper)
    config: ArchConfig
    path: Path  # the weights file
    step: int | None  # from `step_N`, else None
    raw_config: dict[str, Any] = field(default_factory=dict)  # all_config.yaml (or the explicit config) as read
    report: ValidationReport | None = None


def find_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """`step_N` weight files of a run folder, sorted by N (official `step_N_all_preds.*` are skipped)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder not found: {run_dir}")
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if p.is_file() and (m := STEP_FILE.match(p.name))]
    return sorted(found)


def resolve_checkpoint(ref: str | Path) -> Path:
    """A weights file from a file path, a run folder (latest `step_N`, else `checkpoint`) or a Hub repo id."""
    path = hub.resolve(ref, allow_patterns=HUB_PATTERNS)
    if path.is_file():
        return path
    steps = find_checkpoints(path)
    if steps:
        return steps[-1][1]
    for name in ("checkpoint", "checkpoint.safetensors", "checkpoint.pt"):
        if (path / name).is_file():
            return path / name
    raise UserError(f"no checkpoint in {path} (expected step_N files or a file named 'checkpoint')")


def normalize_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip `_orig_mod.` / `model.` (and DDP `module.`) prefixes: official keys -> `inner.…`."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        if key in out:
            raise UserError(f"state dict has key '{key}' twice (with and without a prefix)")
        out[key] = value
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file into a prefix-stripped state dict of tensors (CPU)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types for bad headers
            raise UserError(f"checkpoint {path} is truncated or not a safetensors file ({_first_line(e)})") from None
    else:
        obj = _torch_load(path)
    return normalize_keys(_plain_state_dict(obj, path))


def _first_line(e: BaseException) -> str:
    """The first sentence of an exception message (torch's zip errors run on for lines)."""
    text = str(e).strip().splitlines()
    return text[0].split(". ")[0][:200] if text else type(e).__name__


def _unpickle_reason(e: BaseException) -> str:
    """The informative line of torch's long weights-only error (e.g. 'Unsupported operand 110')."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("Unsupported"):
            return ln[:200]
    return _first_line(e)


def _torch_load(path: Path) -> Any:
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of non-torch files
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if m:  # a well-formed pickle holding something other than tensors and containers
            raise UserError(f"checkpoint {path} is not a plain state dict: it contains {m.group(1)}, refused by torch.load(weights_only=True)") from None
        raise UserError(f"checkpoint {path} is corrupt or not a torch file ({_unpickle_reason(e)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError) as e:
        raise UserError(f"checkpoint {path} is truncated or corrupt ({_first_line(e)})") from None


def _plain_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Accept a flat {name: tensor} mapping, or one nested under model/state_dict (our trainers' format)."""
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict):
        raise UserError(f"checkpoint {path} is not a state dict: it holds a {type(obj).__name__}")
    if not obj:
        raise UserError(f"checkpoint {path} is an empty state dict")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise UserError(f"checkpoint {path} is not a plain state dict: entry {key!r} holds a {type(value).__name__}, not a tensor")
    return obj


def resolve_config(
    weights: Path, state_dict: dict[str, torch.Tensor], config: ArchConfig | dict | str | Path | None = None
) -> tuple[ArchConfig, dict[str, Any]]:
    """The architecture config for a weights file: explicit, else `all_config.yaml` beside it.

    Dataset-derived sizes missing from the config are read off the weights (see
    `tinyreason.hrm.config.infer_dataset_fields`).
    """
    if isinstance(config, (HRMArchConfig, TRMArchConfig)):
        return config, config.model_dump(mode="json")
    if isinstance(config, dict):
        return from_official(config, state_dict, source="explicit config"), config
    if config is not None:
        return load_arch_config(config, state_dict), read_yaml(config)
    official = weights.parent / "all_config.yaml"
    if not official.is_file():
        raise UserError(
            f"no all_config.yaml next to {weights}: the official trainer writes it into the checkpoint folder; "
            f"copy it there or pass an architecture config (--arch-config FILE)"
        )
    return load_arch_config(official, state_dict), read_yaml(official)


def step_of(path: Path) -> int | None:
    m = STEP_FILE.match(path.name)
    return int(m.group(1)) if m else None


def load_checkpoint(
    ref: str | Path,
    config: ArchConfig | dict | str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
) -> LoadedCheckpoint:
    """Load an HRM or TRM checkpoint into an HRMACT model (ACT wrapper of the family) in eval mode.

    ref: a weights file, a run folder (latest step_N) or a Hub repo id ("owner/name[@rev]").
    config: explicit architecture (HRMArchConfig/TRMArchConfig, mapping, or YAML path: official
    all_config.yaml or a flat arch file; its `name` picks the family); default all_config.yaml
    next to the weights.
    dtype: forward dtype override ("float32"/"bfloat16"); default the config's forward_dtype.
    Raises UserError when the weights do not match the config (see `validate_state_dict`).
    """
    weights = resolve_checkpoint(ref)
    state_dict = read_state_dict(weights)
    cfg, raw = resolve_config(weights, state_dict, config)
    if dtype is not None:
        name = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
        pick_dtype(name)  # refuses fp16 and unknown names
        cfg = cfg.model_copy(update={"forward_dtype": {"fp32": "float32", "bf16": "bfloat16"}.get(name, name)})
    report = validate_state_dict(state_dict, cfg, path=str(weights))
    report.raise_if_invalid()
    model = HRMACT(cfg)
    wanted = model.state_dict().keys()
    model.load_state_dict({k: v for k, v in state_dict.items() if k in wanted}, strict=True)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model.to(dev).eval()
    return LoadedCheckpoint(model=model, config=cfg, path=weights, step=step_of(weights), raw_config=raw, report=report)

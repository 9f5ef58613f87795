"""Check an HRM or TRM state dict against an architecture config, with precise, actionable messages.

Everything a load could trip on is reported at once: missing and unexpected keys, shape
mismatches (with the likely config field to blame), NaN/Inf per tensor, dtypes, and the
parameter count split into the puzzle-embedding table and the rest.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch

from tinyreason.errors import UserError
from tinyreason.hrm.config import OFFICIAL_NAME, TRM_NAME, ArchConfig, TRMArchConfig

PUZZLE_KEY = "inner.puzzle_emb.weights"
_IGNORABLE = re.compile(r"^inner\.rotary_emb\.(cos|sin)_cached$")  # non-persistent RoPE cache saved by some forks
_LAYER = re.compile(r"^inner\.(H|L)_level\.layers\.(\d+)\.")


def expected_shapes(cfg: ArchConfig) -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes the config implies (official names, prefixes stripped)."""
    h, v = cfg.hidden_size, cfg.vocab_size
    shapes: dict[str, tuple[int, ...]] = {
        "inner.H_init": (h,),
        "inner.L_init": (h,),
        "inner.embed_tokens.embedding_weight": (v, h),
        "inner.lm_head.weight": (v, h),
        "inner.q_head.weight": (2, h),
        "inner.q_head.bias": (2,),
    }
    if cfg.puzzle_emb_ndim > 0:
        shapes[PUZZLE_KEY] = (cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim)
    if cfg.pos_encodings == "learned":
        shapes["inner.embed_pos.embedding_weight"] = ((cfg.seq_len or 0) + cfg.puzzle_positions, h)
    w = cfg.swiglu_width
    trm = isinstance(cfg, TRMArchConfig)
    for level, n in ((("L", cfg.L_layers),) if trm else (("H", cfg.H_layers), ("L", cfg.L_layers))):
        for i in range(n):
            p = f"inner.{level}_level.layers.{i}."
            if trm and cfg.mlp_t:  # TRM's sequence-axis SwiGLU in place of attention
                s, wt = (cfg.seq_len or 0) + cfg.puzzle_positions, cfg.mlp_t_width
                shapes[p + "mlp_t.gate_up_proj.weight"] = (2 * wt, s)
                shapes[p + "mlp_t.down_proj.weight"] = (s, wt)
            else:
                shapes[p + "self_attn.qkv_proj.weight"] = (3 * h, h)
                shapes[p + "self_attn.o_proj.weight"] = (h, h)
            shapes[p + "mlp.gate_up_proj.weight"] = (2 * w, h)
            shapes[p + "mlp.down_proj.weight"] = (h, w)
    return shapes


def expected_param_counts(cfg: ArchConfig) -> dict[str, int]:
    shapes = expected_shapes(cfg)
    puzzle = _numel(shapes.get(PUZZLE_KEY, (0,)))
    total = sum(_numel(s) for s in shapes.values())
    return {"puzzle_embedding": puzzle, "other": total - puzzle, "total": total}


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass
class TensorInfo:
    name: str
    shape: list[int]
    dtype: str
    numel: int
    nan: int = 0
    inf: int = 0
    status: str = "ok"  # ok | missing | unexpected | shape | nonfinite | dtype


@dataclass
class ValidationReport:
    """Outcome of `validate_state_dict`; `ok` when there are no errors (warnings allowed)."""

    path: str | None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tensors: list[TensorInfo] = field(default_factory=list)
    param_counts: dict[str, int] = field(default_factory=dict)  # what the file holds
    expected_counts: dict[str, int] = field(default_factory=dict)  # what the config implies

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        c = self.param_counts
        share = c.get("puzzle_embedding", 0) / max(c.get("total", 0), 1)
        head = "valid" if self.ok else f"INVALID ({len(self.errors)} problem{'s' * (len(self.errors) != 1)})"
        return f"{head}: {c.get('total', 0):,} numbers, {c.get('puzzle_embedding', 0):,} puzzle embeddings ({share:.1%}), {c.get('other', 0):,} other"

    def raise_if_invalid(self) -> None:
        if self.errors:
            more = f" (+{len(self.errors) - 1} more; see `tinyreason hrm validate`)" if len(self.errors) > 1 else ""
            where = f"{self.path}: " if self.path else ""
            raise UserError(f"{where}{self.errors[0]}{more}")

    def to_dict(self) -> dict:
        return {"ok": self.ok, **asdict(self)}


def _shape_hint(key: str, want: tuple[int, ...], got: tuple[int, ...], cfg: ArchConfig) -> str:
    """Name the config field that most likely disagrees with the weights."""
    if key == PUZZLE_KEY and len(got) == 2:
        if got[0] != want[0]:
            return (
                f"the checkpoint has {got[0]} puzzle embeddings but the config says num_puzzle_identifiers={want[0]}: "
                f"puzzle ids are dataset-specific, so use the dataset the checkpoint was trained on "
                f"(its identifiers.json has {got[0]} entries) or set num_puzzle_identifiers={got[0]}"
            )
        return f"puzzle_emb_ndim={want[1]} in the config, {got[1]} in the checkpoint"
    if key.endswith(("embed_tokens.embedding_weight", "lm_head.weight")) and len(got) == 2 and got[0] != want[0]:
        return f"vocab_size={cfg.vocab_size} in the config, {got[0]} in the checkpoint (a different dataset/tokenisation)"
    if key.endswith("embed_pos.embedding_weight") and len(got) == 2 and got[0] != want[0]:
        return f"seq_len={cfg.seq_len} (+{cfg.puzzle_positions} puzzle positions) in the config, {got[0] - cfg.puzzle_positions} in the checkpoint"
    if ".mlp_t." in key:
        return f"seq_len={cfg.seq_len} + puzzle_emb_len={cfg.puzzle_positions} and expansion={cfg.expansion:g} in the config give {want}"
    if len(got) >= 1 and got[-1] != want[-1] and not key.endswith("down_proj.weight"):
        return f"hidden_size={cfg.hidden_size} in the config, {got[-1]} in the checkpoint"
    if "mlp." in key:
        return f"SwiGLU width {cfg.swiglu_width} from expansion={cfg.expansion:g} in the config does not match"
    return "config and checkpoint disagree"


def validate_state_dict(state_dict: dict[str, torch.Tensor], cfg: ArchConfig, path: str | None = None) -> ValidationReport:
    """Compare a prefix-stripped state dict with what `cfg` implies; never raises on bad weights."""
    report = ValidationReport(path=path)
    want = expected_shapes(cfg)
    report.expected_counts = expected_param_counts(cfg)
    forward_dtype = getattr(torch, cfg.forward_dtype)
    family = family_mismatch(state_dict, cfg)
    if family:
        report.errors.append(family)
    for name, t in state_dict.items():
        info = TensorInfo(name, list(t.shape), str(t.dtype).removeprefix("torch."), t.numel())
        report.tensors.append(info)
        if _IGNORABLE.match(name):
            info.status = "ignored"
            report.warnings.append(f"{name}: RoPE cache saved in the file; ignored (recomputed)")
            continue
        if name not in want:
            info.status = "unexpected"
            report.errors.append(f"unexpected key {name}{_unexpected_hint(name, cfg)}")
            continue
        if tuple(t.shape) != want[name]:
            info.status = "shape"
            report.errors.append(f"shape mismatch for {name}: checkpoint {tuple(t.shape)}, config {want[name]} ({_shape_hint(name, want[name], tuple(t.shape), cfg)})")
        if not t.is_floating_point():
            info.status = "dtype"
            report.errors.append(f"{name} has dtype {info.dtype}; weights must be floating point")
            continue
        if name.endswith(("H_init", "L_init")) and t.dtype not in (torch.float32, forward_dtype):
            report.warnings.append(f"{name} stored as {info.dtype}, model runs in {cfg.forward_dtype}")
        elif not name.endswith(("H_init", "L_init")) and t.dtype != torch.float32:
            report.warnings.append(f"{name} stored as {info.dtype}; loaded into float32 (precision already reduced)")
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            info.nan, info.inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            info.status = "nonfinite"
            report.errors.append(f"{name} has {info.nan} NaN and {info.inf} Inf of {info.numel} values")
    for name in want:
        if name not in state_dict:
            report.tensors.append(TensorInfo(name, list(want[name]), "-", 0, status="missing"))
            report.errors.append(f"missing key {name}{_missing_hint(name, cfg)}")
    puzzle = state_dict[PUZZLE_KEY].numel() if PUZZLE_KEY in state_dict else 0
    total = sum(t.numel() for k, t in state_dict.items() if not _IGNORABLE.match(k))
    report.param_counts = {"puzzle_embedding": puzzle, "other": total - puzzle, "total": total}
    return report


def family_mismatch(state_dict: dict[str, torch.Tensor], cfg: ArchConfig) -> str | None:
    """The one-line reason when weights and config belong to different families (HRM has an
    H_level network, TRM has only L_level), else None."""
    has_h = any(k.startswith("inner.H_level.") for k in state_dict)
    has_l = any(k.startswith("inner.L_level.") for k in state_dict)
    if isinstance(cfg, TRMArchConfig) and has_h:
        return (
            f"the checkpoint is an HRM (it has an H_level network) but the config is a TRM (arch.name {cfg.name}); "
            f"use the HRM run's all_config.yaml (arch.name {OFFICIAL_NAME})"
        )
    if not isinstance(cfg, TRMArchConfig) and has_l and not has_h:
        return (
            f"the checkpoint is a TRM (one L_level network, no H_level) but the config is an HRM (arch.name {cfg.name}); "
            f"use the TRM run's all_config.yaml (arch.name {TRM_NAME})"
        )
    return None


def _missing_hint(name: str, cfg: ArchConfig) -> str:
    if name == PUZZLE_KEY:
        return f" (config puzzle_emb_ndim={cfg.puzzle_emb_ndim}; the checkpoint has no puzzle embedding: set puzzle_emb_ndim=0)"
    if name.endswith("embed_pos.embedding_weight"):
        trained = "rope or none" if isinstance(cfg, TRMArchConfig) else "rope"
        return f" (config pos_encodings=learned; the checkpoint has no position table, so it was trained with {trained})"
    if ".self_attn." in name and isinstance(cfg, TRMArchConfig):
        return " (config mlp_t=false; the checkpoint's blocks have no attention: trained with mlp_t=true?)"
    if ".mlp_t." in name:
        return " (config mlp_t=true; the checkpoint's blocks have no sequence-axis MLP: trained with attention, mlp_t=false?)"
    return _layer_hint(name, cfg, "fewer")


def _unexpected_hint(name: str, cfg: ArchConfig) -> str:
    if name == PUZZLE_KEY:
        return " (the checkpoint has a puzzle embedding but the config says puzzle_emb_ndim=0)"
    if name.endswith("embed_pos.embedding_weight"):
        return f" (the checkpoint has a learned position table but the config says pos_encodings={cfg.pos_encodings})"
    if not name.startswith("inner."):
        return f" (not an {cfg.family} weight; is this an HRM or TRM checkpoint?)"
    if ".mlp_t." in name:
        return " (the checkpoint is a TRM with mlp_t: a sequence-axis MLP in place of attention, but the config says " + (
            "mlp_t=false)" if isinstance(cfg, TRMArchConfig) else f"{OFFICIAL_NAME}; its all_config.yaml has arch.name {TRM_NAME})")
    if ".self_attn." in name and isinstance(cfg, TRMArchConfig) and cfg.mlp_t:
        return " (the checkpoint has attention but the config says mlp_t=true)"
    return _layer_hint(name, cfg, "more")


def _layer_hint(name: str, cfg: ArchConfig, fewer_or_more: str) -> str:
    m = _LAYER.match(name)
    if m is None:
        return ""
    if m.group(1) == "H" and isinstance(cfg, TRMArchConfig):
        return " (TRM has no H_level network)"
    n = cfg.H_layers if m.group(1) == "H" else cfg.L_layers
    return f" (config {m.group(1)}_layers={n}; the checkpoint has {fewer_or_more} {m.group(1)} layers)"

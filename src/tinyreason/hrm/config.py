"""HRM ACT v1 architecture config, compatible with the `arch` section of the official `all_config.yaml`.

The official trainer builds the model config from two sources: the `arch` section of its
config (the keys below) and the dataset metadata (`vocab_size`, `seq_len`,
`num_puzzle_identifiers`; `batch_size` = global batch size / world size). `all_config.yaml`
holds only the first, so `from_official` fills the dataset-derived fields from the state
dict shapes when they are not given (see `infer_dataset_fields`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from tinyreason.config import StrictModel, format_validation_error, read_yaml
from tinyreason.errors import UserError

OFFICIAL_NAME = "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1"


class HRMLossConfig(StrictModel):
    """`arch.loss` of the official config: the loss head and its loss type."""

    name: str = "losses@ACTLossHead"
    loss_type: Literal["stablemax_cross_entropy", "softmax_cross_entropy"] = "stablemax_cross_entropy"


class HRMArchConfig(StrictModel):
    """HRM ACT v1 architecture (official field names and defaults) plus dataset-derived sizes."""

    name: str = OFFICIAL_NAME
    loss: HRMLossConfig = Field(default_factory=HRMLossConfig)
    # Dataset-derived (not in all_config.yaml; from dataset.json or the checkpoint shapes).
    batch_size: int = Field(1, ge=1, description="per-rank batch size (sizes the sparse puzzle-embedding training buffer)")
    seq_len: int | None = Field(None, ge=1, description="tokens per example; None = taken from the inputs (RoPE only)")
    vocab_size: int = Field(..., ge=1)
    num_puzzle_identifiers: int = Field(1, ge=1)
    puzzle_emb_ndim: int = Field(0, ge=0)
    # Reasoning structure
    H_cycles: int = Field(..., ge=1)
    L_cycles: int = Field(..., ge=1)
    H_layers: int = Field(..., ge=1)
    L_layers: int = Field(..., ge=1)
    # Transformer
    hidden_size: int = Field(..., ge=1)
    expansion: float = Field(..., gt=0)
    num_heads: int = Field(..., ge=1)
    pos_encodings: Literal["rope", "learned"] = "rope"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    causal: bool = False  # the official trainer passes causal=False; HRM attention is never causal
    # Adaptive computation time (Q-learning halting)
    halt_max_steps: int = Field(..., ge=1)
    halt_exploration_prob: float = Field(0.1, ge=0, le=1)
    forward_dtype: Literal["bfloat16", "float32"] = "bfloat16"  # official default

    @property
    def puzzle_emb_len(self) -> int:
        """Positions taken by the puzzle embedding: ceil(puzzle_emb_ndim / hidden_size)."""
        return -(self.puzzle_emb_ndim // -self.hidden_size)

    @property
    def swiglu_width(self) -> int:
        """SwiGLU inner width: round(expansion * hidden * 2/3) rounded up to a multiple of 256."""
        width = round(self.expansion * self.hidden_size * 2 / 3)
        return -(width // -256) * 256

    def check(self) -> None:
        """Structural checks pydantic cannot express; raises UserError."""
        if self.hidden_size % self.num_heads:
            raise UserError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.causal:
            raise UserError("causal=true is not supported: HRM ACT v1 attention is non-causal")
        if self.pos_encodings == "learned" and self.seq_len is None:
            raise UserError("pos_encodings=learned needs seq_len (the learned position table has seq_len + puzzle_emb_len rows)")
        if not self.name.endswith("@HierarchicalReasoningModel_ACTV1"):
            raise UserError(f"unsupported architecture '{self.name}' (only {OFFICIAL_NAME})")


def make_config(data: dict[str, Any]) -> HRMArchConfig:
    """Validate a plain mapping into HRMArchConfig; errors become one-line UserErrors."""
    try:
        cfg = HRMArchConfig.model_validate(data)
    except ValidationError as e:
        raise UserError(format_validation_error(e).replace("config error:", "arch config error:", 1)) from None
    cfg.check()
    return cfg


def infer_dataset_fields(state_dict: dict[str, Any], arch: dict[str, Any]) -> dict[str, Any]:
    """Dataset-derived sizes read off tensor shapes (keys already without prefixes).

    vocab_size <- embed_tokens rows; num_puzzle_identifiers <- puzzle_emb.weights rows;
    seq_len <- embed_pos rows - puzzle_emb_len (learned positions only; RoPE has no table,
    so seq_len stays unset and the inputs decide).
    """
    out: dict[str, Any] = {}
    tok = state_dict.get("inner.embed_tokens.embedding_weight")
    if tok is not None and tok.ndim == 2:
        out["vocab_size"] = int(tok.shape[0])
    pe = state_dict.get("inner.puzzle_emb.weights")
    if pe is not None and pe.ndim == 2:
        out["num_puzzle_identifiers"] = int(pe.shape[0])
    pos = state_dict.get("inner.embed_pos.embedding_weight")
    hidden, ndim = arch.get("hidden_size"), arch.get("puzzle_emb_ndim", 0)
    if pos is not None and pos.ndim == 2 and isinstance(hidden, int) and isinstance(ndim, int) and hidden > 0:
        out["seq_len"] = int(pos.shape[0]) - (-(ndim // -hidden))
    return out


def from_official(raw: dict[str, Any], state_dict: dict[str, Any] | None = None, source: str = "config") -> HRMArchConfig:
    """HRMArchConfig from an official `all_config.yaml` mapping (or a flat arch mapping).

    Fields given explicitly win; missing dataset-derived fields come from the state dict;
    `batch_size` from `global_batch_size` (single rank).
    """
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping, got {type(raw).__name__}")
    arch = dict(raw["arch"]) if isinstance(raw.get("arch"), dict) else dict(raw)
    if "arch" in raw and not isinstance(raw["arch"], dict):
        raise UserError(f"{source}: 'arch' must be a mapping")
    if "global_batch_size" in raw and "batch_size" not in arch:
        arch["batch_size"] = raw["global_batch_size"]
    if state_dict is not None:
        for key, value in infer_dataset_fields(state_dict, arch).items():
            arch.setdefault(key, value)
        if arch.get("pos_encodings") == "learned" and "seq_len" not in arch and "inner.embed_pos.embedding_weight" not in state_dict:
            raise UserError(
                f"{source}: pos_encodings=learned, but the checkpoint has no learned position table "
                f"(inner.embed_pos.embedding_weight): it was trained with rope, so this config does not belong to it"
            )
    if "vocab_size" not in arch:
        raise UserError(f"{source}: vocab_size unknown (not in the config and no embed_tokens weight to read it from)")
    try:
        return make_config(arch)
    except UserError as e:
        raise UserError(f"{source}: {e}") from None


def load_arch_config(path: str | Path, state_dict: dict[str, Any] | None = None) -> HRMArchConfig:
    """HRMArchConfig from a YAML file: official all_config.yaml (`arch` section) or a flat arch config."""
    return from_official(read_yaml(path), state_dict, source=str(path))

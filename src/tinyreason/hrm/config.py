"""Architecture configs of the HRM family, compatible with the `arch` section of the official `all_config.yaml`.

Two families share the same checkpoint layout and most fields: HRM ACT v1 (sapientinc/HRM,
`arch.name` OFFICIAL_NAME) and TRM (SamsungSAILMontreal/TinyRecursiveModels, `arch.name`
TRM_NAME); `from_official` picks the config class from `arch.name` (HRM when there is none).

The official trainers build the model config from two sources: the `arch` section of their
config (the keys below) and the dataset metadata (`vocab_size`, `seq_len`,
`num_puzzle_identifiers`; `batch_size` = global batch size / world size). `all_config.yaml`
holds only the first, so `from_official` fills the dataset-derived fields from the state
dict shapes when they are not given (see `infer_dataset_fields`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError

from tinyreason.config import StrictModel, format_validation_error, read_yaml
from tinyreason.errors import UserError

OFFICIAL_NAME = "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1"
TRM_NAME = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
HRM_CLASS, TRM_CLASS = OFFICIAL_NAME.split("@")[1], TRM_NAME.split("@")[1]


def swiglu_width(expansion: float, width: int) -> int:
    """SwiGLU inner width: round(expansion * width * 2/3) rounded up to a multiple of 256 (official)."""
    inner = round(expansion * width * 2 / 3)
    return -(inner // -256) * 256


class HRMLossConfig(StrictModel):
    """`arch.loss` of the official config: the loss head and its loss type."""

    name: str = "losses@ACTLossHead"
    loss_type: Literal["stablemax_cross_entropy", "softmax_cross_entropy"] = "stablemax_cross_entropy"


class ACTArchFields(StrictModel):
    """Fields HRM and TRM share (official names and defaults) plus dataset-derived sizes."""

    name: str
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
    H_layers: int = Field(..., ge=0)
    L_layers: int = Field(..., ge=1)
    # Transformer
    hidden_size: int = Field(..., ge=1)
    expansion: float = Field(..., gt=0)
    num_heads: int = Field(..., ge=1)
    pos_encodings: Literal["rope", "learned"] = "rope"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    causal: bool = False  # the official trainers pass causal=False; attention is never causal
    # Adaptive computation time (Q-learning halting)
    halt_max_steps: int = Field(..., ge=1)
    halt_exploration_prob: float = Field(0.1, ge=0, le=1)
    forward_dtype: Literal["bfloat16", "float32"] = "bfloat16"  # official default

    @property
    def swiglu_width(self) -> int:
        """Inner width of the hidden-axis SwiGLU (see `swiglu_width`)."""
        return swiglu_width(self.expansion, self.hidden_size)

    def _check_common(self) -> None:
        if self.causal:
            raise UserError(f"causal=true is not supported: {self.family} attention is non-causal")
        if self.pos_encodings == "learned" and self.seq_len is None:
            raise UserError("pos_encodings=learned needs seq_len (the learned position table has seq_len + puzzle_emb_len rows)")


class HRMArchConfig(ACTArchFields):
    """HRM ACT v1 architecture (official field names and defaults) plus dataset-derived sizes."""

    name: str = OFFICIAL_NAME
    H_layers: int = Field(..., ge=1)

    family: ClassVar[str] = "HRM"
    uses_q_continue: ClassVar[bool] = True  # halts on q_halt > q_continue, trains q_continue on a bootstrapped target

    @property
    def puzzle_emb_len(self) -> int:
        """Positions taken by the puzzle embedding: ceil(puzzle_emb_ndim / hidden_size)."""
        return -(self.puzzle_emb_ndim // -self.hidden_size)

    @property
    def puzzle_positions(self) -> int:
        """Prefix positions before the tokens (the name both families share)."""
        return self.puzzle_emb_len

    def check(self) -> None:
        """Structural checks pydantic cannot express; raises UserError."""
        if self.hidden_size % self.num_heads:
            raise UserError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        self._check_common()
        if not self.name.endswith("@" + HRM_CLASS):
            raise UserError(f"unsupported architecture '{self.name}' (supported: {OFFICIAL_NAME}, {TRM_NAME})")


class TRMArchConfig(ACTArchFields):
    """TRM (`TinyRecursiveReasoningModel_ACTV1`) architecture: official field names and defaults.

    One L_level network of L_layers blocks updates both z_L and z_H; H_layers is ignored (the
    official config keeps the field). `puzzle_emb_len` is the official field: prefix positions
    for the puzzle embedding, 0 = ceil(puzzle_emb_ndim / hidden_size). `mlp_t` replaces
    attention by a SwiGLU across the sequence axis; `no_ACT_continue` halts on q_halt > 0
    and drops the Q-continue target. pos_encodings other than rope/learned mean none.
    """

    name: str = TRM_NAME
    H_layers: int = Field(0, ge=0, description="ignored by TRM (one L_level network)")
    pos_encodings: Literal["rope", "learned", "none"] = "rope"
    mlp_t: bool = False
    puzzle_emb_len: int = Field(16, ge=0, description="puzzle-embedding prefix positions; 0 = ceil(puzzle_emb_ndim / hidden_size)")
    no_ACT_continue: bool = True

    family: ClassVar[str] = "TRM"

    @property
    def uses_q_continue(self) -> bool:
        return not self.no_ACT_continue

    @property
    def puzzle_positions(self) -> int:
        """Prefix positions before the tokens: puzzle_emb_len, or ceil(puzzle_emb_ndim / hidden) when 0."""
        return self.puzzle_emb_len or -(self.puzzle_emb_ndim // -self.hidden_size)

    @property
    def mlp_t_width(self) -> int:
        """Inner width of the sequence-axis SwiGLU (mlp_t): from seq_len + puzzle_positions."""
        return swiglu_width(self.expansion, (self.seq_len or 0) + self.puzzle_positions)

    def check(self) -> None:
        """Structural checks pydantic cannot express (each a crash in the official code); raises UserError."""
        if not self.mlp_t and self.hidden_size % self.num_heads:
            raise UserError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        self._check_common()
        if self.mlp_t and self.seq_len is None:
            raise UserError("mlp_t=true needs seq_len (the sequence-axis MLP is seq_len + puzzle_emb_len wide)")
        if self.puzzle_emb_ndim == 0 and self.puzzle_emb_len > 0:
            raise UserError(f"puzzle_emb_len={self.puzzle_emb_len} without a puzzle embedding (puzzle_emb_ndim=0): set puzzle_emb_len: 0")
        if self.puzzle_positions * self.hidden_size < self.puzzle_emb_ndim:
            raise UserError(
                f"puzzle_emb_len={self.puzzle_emb_len} positions of {self.hidden_size} cannot hold puzzle_emb_ndim={self.puzzle_emb_ndim}"
            )
        if not self.name.endswith("@" + TRM_CLASS):
            raise UserError(f"unsupported architecture '{self.name}' (supported: {OFFICIAL_NAME}, {TRM_NAME})")


ArchConfig = HRMArchConfig | TRMArchConfig


def is_trm(name: Any) -> bool:
    """Whether an `arch.name` names the TRM family (class TinyRecursiveReasoningModel_ACTV1)."""
    return isinstance(name, str) and name.endswith("@" + TRM_CLASS)


def make_config(data: dict[str, Any]) -> ArchConfig:
    """Validate a plain mapping into TRMArchConfig (a TRM `name`) or HRMArchConfig; errors become one-line UserErrors."""
    name = data.get("name", OFFICIAL_NAME)
    if not isinstance(name, str) or not name.endswith(("@" + HRM_CLASS, "@" + TRM_CLASS)):
        raise UserError(f"unsupported architecture '{name}' (supported: {OFFICIAL_NAME}, {TRM_NAME})")
    cls = TRMArchConfig if is_trm(name) else HRMArchConfig
    try:
        cfg = cls.model_validate(data)
    except ValidationError as e:
        raise UserError(format_validation_error(e).replace("config error:", "arch config error:", 1)) from None
    cfg.check()
    return cfg


def infer_dataset_fields(state_dict: dict[str, Any], arch: dict[str, Any]) -> dict[str, Any]:
    """Dataset-derived sizes read off tensor shapes (keys already without prefixes).

    vocab_size <- embed_tokens rows; num_puzzle_identifiers <- puzzle_emb.weights rows;
    seq_len <- embed_pos rows - puzzle positions (learned positions), or the width of TRM's
    sequence-axis MLP - puzzle positions (mlp_t); RoPE has no table, so seq_len stays unset
    and the inputs decide.
    """
    out: dict[str, Any] = {}
    tok = state_dict.get("inner.embed_tokens.embedding_weight")
    if tok is not None and tok.ndim == 2:
        out["vocab_size"] = int(tok.shape[0])
    pe = state_dict.get("inner.puzzle_emb.weights")
    if pe is not None and pe.ndim == 2:
        out["num_puzzle_identifiers"] = int(pe.shape[0])
    pos = state_dict.get("inner.embed_pos.embedding_weight")
    mlp_t = state_dict.get("inner.L_level.layers.0.mlp_t.down_proj.weight")  # (seq_len + P, width)
    hidden, ndim = arch.get("hidden_size"), arch.get("puzzle_emb_ndim", 0)
    if isinstance(hidden, int) and isinstance(ndim, int) and hidden > 0:
        prefix = -(ndim // -hidden)
        if is_trm(arch.get("name")) and isinstance(arch.get("puzzle_emb_len", 16), int):
            prefix = arch.get("puzzle_emb_len", 16) or prefix
        if pos is not None and pos.ndim == 2:
            out["seq_len"] = int(pos.shape[0]) - prefix
        elif mlp_t is not None and mlp_t.ndim == 2:
            out["seq_len"] = int(mlp_t.shape[0]) - prefix
    return out


def from_official(raw: dict[str, Any], state_dict: dict[str, Any] | None = None, source: str = "config") -> ArchConfig:
    """HRMArchConfig or TRMArchConfig (by `arch.name`) from an official `all_config.yaml` mapping (or a flat arch mapping).

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


def load_arch_config(path: str | Path, state_dict: dict[str, Any] | None = None) -> ArchConfig:
    """HRMArchConfig or TRMArchConfig from a YAML file: official all_config.yaml (`arch` section) or a flat arch config."""
    return from_official(read_yaml(path), state_dict, source=str(path))

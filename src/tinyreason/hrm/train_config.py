"""The config of `tinyreason hrm train` and the official `all_config.yaml` it writes.

`arch` is HRM's section or TRM's, told apart by `arch.name` (HRM when there is none, so
every HRM config written before TRM keeps working). Field names and defaults are the
official ones: sapientinc/HRM `config/cfg_pretrain.yaml` + `config/arch/hrm_v1.yaml`, and
TRM's `config/cfg_pretrain.yaml` + `config/arch/trm.yaml`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from tinyreason.config import StrictModel
from tinyreason.hrm.config import OFFICIAL_NAME, TRM_NAME, HRMLossConfig, is_trm
from tinyreason.telemetry import REPORT_TO_HELP, ReportTo


class TrainArch(StrictModel):
    """HRM's `arch` section (defaults of the official config/arch/hrm_v1.yaml)."""

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


class TRMTrainArch(StrictModel):
    """TRM's `arch` section (defaults of TRM's config/arch/trm.yaml, where puzzle_emb_ndim = hidden_size)."""

    name: str = TRM_NAME
    loss: HRMLossConfig = Field(default_factory=HRMLossConfig)
    H_cycles: int = Field(3, ge=1)
    L_cycles: int = Field(6, ge=1)
    H_layers: int = Field(0, ge=0, description="ignored by TRM (one L_level network)")
    L_layers: int = Field(2, ge=1)
    hidden_size: int = Field(512, ge=1)
    expansion: float = Field(4.0, gt=0)
    num_heads: int = Field(8, ge=1)
    pos_encodings: Literal["rope", "learned", "none"] = "rope"
    puzzle_emb_ndim: int = Field(512, ge=0)
    puzzle_emb_len: int = Field(16, ge=0, description="puzzle-embedding prefix positions; 0 = ceil(puzzle_emb_ndim / hidden_size)")
    mlp_t: bool = Field(False, description="a SwiGLU across the sequence axis instead of attention (use pos_encodings none)")
    no_ACT_continue: bool = Field(True, description="halt on q_halt > 0; no Q-continue target or loss")
    halt_max_steps: int = Field(16, ge=1)
    halt_exploration_prob: float = Field(0.1, ge=0, le=1)
    forward_dtype: Literal["bfloat16", "float32"] = "bfloat16"


def _arch_family(value: Any) -> str:
    """Which arch class a config's `arch` is: TRM when its name says so, else HRM (also when unnamed)."""
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return "trm" if is_trm(name) else "hrm"


AnyTrainArch = Annotated[Annotated[TrainArch, Tag("hrm")] | Annotated[TRMTrainArch, Tag("trm")], Discriminator(_arch_family)]


class TrainConfig(StrictModel):
    """Train an HRM or a TRM (by arch.name; official hyper-parameter names, defaults of the official cfg_pretrain.yaml)."""

    arch: AnyTrainArch = Field(default_factory=TrainArch)
    data_path: str | Annotated[list[str], Field(min_length=1)] = Field(..., description="dataset folder in the official layout (train split; test for "
                                                         "evals), or several, merged as TRM's data_paths")
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
    ema: bool = Field(False, description="keep an exponential moving average of the weights (TRM); step_N then holds it")
    ema_rate: float = Field(0.999, gt=0, lt=1)
    project_name: str | None = None
    run_name: str | None = None
    max_steps: int | None = Field(None, ge=1, description="stop here (also the end of the cosine schedule)")
    checkpoint_every: int = Field(500, ge=1, description="steps between step_N checkpoints (and at the end)")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations on the test split")
    eval_limit: int | None = Field(256, ge=1)
    log_every: int = Field(10, ge=1)
    device: str = "auto"
    cpu_watchdog: bool = Field(True, description="on CPU, fewer torch threads while other processes hold cores "
                                                "(tinyreason.contention)")
    resume: bool = Field(True, description="continue from train_state.pt in checkpoint_path when present")
    overwrite: bool = Field(False, description="empty a checkpoint_path that holds a run, then start fresh")
    report_to: ReportTo = Field("none", description=REPORT_TO_HELP + "; W&B takes project_name, run_name")


def official_config(cfg: TrainConfig) -> dict:
    """`all_config.yaml` as the official trainer of the arch's family dumps its PretrainConfig.

    HRM's has `data_path`; TRM's has the list `data_paths` and its extra fields (`ema`,
    `evaluators`, ...; every field of its PretrainConfig). `ema` is noted in HRM's layout
    only when on (HRM's trainer has no EMA; its loader ignores unknown keys). HRM's trainer
    takes one folder: trained on several, HRM's layout names the first as `data_path` and
    all of them as `data_paths`.
    """
    out = {
        "arch": cfg.arch.model_dump(mode="json"), "data_path": data_paths(cfg)[0], "global_batch_size": cfg.global_batch_size,
        "epochs": cfg.epochs, "lr": cfg.lr, "lr_min_ratio": cfg.lr_min_ratio, "lr_warmup_steps": cfg.lr_warmup_steps,
        "weight_decay": cfg.weight_decay, "beta1": cfg.beta1, "beta2": cfg.beta2, "puzzle_emb_lr": cfg.puzzle_emb_lr,
        "puzzle_emb_weight_decay": cfg.puzzle_emb_weight_decay, "project_name": cfg.project_name,
        "run_name": cfg.run_name, "checkpoint_path": cfg.checkpoint_path, "seed": cfg.seed,
        "checkpoint_every_eval": True, "eval_interval": None, "eval_save_outputs": [],
    }
    if isinstance(cfg.arch, TRMTrainArch):
        del out["data_path"]
        out.update({"data_paths": data_paths(cfg), "data_paths_test": [], "evaluators": [], "load_checkpoint": None,
                    "min_eval_interval": 0, "ema": cfg.ema, "ema_rate": cfg.ema_rate, "freeze_weights": False})
    else:
        if len(data_paths(cfg)) > 1:
            out["data_paths"] = data_paths(cfg)
        if cfg.ema:
            out.update({"ema": True, "ema_rate": cfg.ema_rate})
    return out


def data_paths(cfg: TrainConfig) -> list[str]:
    """The dataset folders, one or several."""
    return [cfg.data_path] if isinstance(cfg.data_path, str) else list(cfg.data_path)

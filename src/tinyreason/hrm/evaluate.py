"""`tinyreason hrm eval`: evaluate an HRM or TRM checkpoint on a dataset, with puzzle verification.

    tinyreason hrm eval --checkpoint RUN_OR_FILE --data DATASET --out results.json
        [--split test|train] [--limit N] [--halt fixed|adaptive] [--batch-size B]
        [--device auto|cpu|cuda] [--dtype float32|bfloat16]
    torchrun --nproc-per-node 2 -m tinyreason.cli hrm eval ...   (dataset sharded over ranks)

Writes {"aggregate_metrics", "per_puzzle_metrics", "arc" (ARC only), "checkpoint",
"dataset", "config", "run"} and prints a table. Metric definitions: `tinyreason.hrm.metrics`
(TRM's `pretrain.evaluate` uses the same loss head and reductions as HRM's evaluator).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from rich.table import Table

from tinyreason import dist, hub
from tinyreason.config import StrictModel, parse_command
from tinyreason.device import pick_device
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_json
from tinyreason.hrm.arc_vote import arc_vote
from tinyreason.hrm.checkpoint import LoadedCheckpoint, load_checkpoint
from tinyreason.hrm.eval_loop import detect_kind, run_eval
from tinyreason.hrm.metrics import aggregate
from tinyreason.hrm.model import count_parameters
from tinyreason.puzzles.arc import parse_aug_name
from tinyreason.puzzles.arc_build import read_test_puzzles
from tinyreason.puzzles.dataset import SplitData
from tinyreason.puzzles.merge import MergedSplit, limit_warning, open_splits, read_example_names, split_parts
from tinyreason.runguard import refuse_same
from tinyreason.runlog import console

TABLE_METRICS = (
    ("solve_rate", "solve rate (verifier)"), ("exact_accuracy", "exact accuracy"), ("accuracy", "token accuracy"),
    ("average_steps", "ACT steps"), ("step_efficiency", "step efficiency"), ("q_halt_accuracy", "q-halt accuracy"),
    ("q_halt_precision", "P(exact | q_halt>0)"), ("lm_loss", "lm loss"), ("time_per_puzzle", "s / puzzle"),
    ("puzzles_per_second", "puzzles / s"),
)


class EvalOptions(StrictModel):
    """Options shared by eval, ensemble and compare (data, batching, halting, device)."""

    data: str | list[str] = Field(..., description="dataset folder (official layout) or embedded:<name>/data; several are merged as TRM's data_paths")
    out: str | None = Field(None, description="results JSON path (none: table only)")
    split: Literal["test", "train"] = "test"
    limit: int | None = Field(None, ge=1, description="first N examples only")
    halt: Literal["fixed", "adaptive"] = "fixed"
    adaptive_rule: Literal["auto", "q_compare", "q_positive"] = Field("auto", description="adaptive halting rule; auto = the one the model trained with (HRM q_compare, TRM no_ACT_continue q_positive)")
    batch_size: int = Field(64, ge=1, description="examples per batch and rank")
    device: str = "auto"
    dtype: Literal["float32", "bfloat16"] | None = Field(None, description="forward dtype (default: the checkpoint's)")
    kind: Literal["auto", "sudoku", "maze", "arc", "exact"] = "auto"
    arch_config: str | None = Field(None, description="architecture YAML when there is no all_config.yaml")
    per_puzzle: bool = Field(True, description="include per_puzzle_metrics in the JSON")
    pass_ks: list[int] = Field(default_factory=lambda: [1, 2], description="ARC pass@k")

    @field_validator("data")
    @classmethod
    def _one_dataset_as_text(cls, v: str | list[str]) -> str | list[str]:
        """`--data A` stays the text "A" (as before several were allowed); `--data A B` is a list."""
        if isinstance(v, list) and not v:
            raise ValueError("give at least one dataset folder")
        return v[0] if isinstance(v, list) and len(v) == 1 else v


class EvalConfig(EvalOptions):
    """Evaluate an HRM or TRM checkpoint on a dataset in the official layout."""

    checkpoint: str = Field(..., description="step_N file, run folder (latest step), Hub id or embedded:<name>")


def load_for_eval(ref: str, cfg: EvalOptions) -> LoadedCheckpoint:
    device = pick_device(cfg.device)
    return load_checkpoint(ref, config=cfg.arch_config, device=device, dtype=cfg.dtype)


def resolve_datasets(ref: str | list[str]) -> list[Path]:
    """Dataset folders in the official layout: local, `embedded:<name>/data` or Hub dataset repos."""
    return [hub.resolve(r, allow_patterns=["*.json", "*.npy"], repo_type="dataset") for r in ([ref] if isinstance(ref, str) else ref)]


def resolve_dataset(ref: str | list[str]) -> Path:
    """The dataset folder (the first one where several are merged: it names the run)."""
    return resolve_datasets(ref)[0]


def open_data(cfg: EvalOptions) -> tuple[Path, SplitData | MergedSplit]:
    """The first dataset folder and the split: of that folder, or of all `cfg.data` folders merged
    (with a warning when `cfg.limit` leaves whole folders out)."""
    paths = resolve_datasets(cfg.data)
    data = open_splits(paths, cfg.split)
    if note := limit_warning(data, cfg.limit):
        console.print(f"{cfg.split}: {note}")
    return paths[0], data


def check_compatible(loaded: LoadedCheckpoint, data: SplitData) -> None:
    """Vocabulary, sequence length and puzzle-id count of model and dataset must agree."""
    c, m = loaded.config, data.metadata
    if c.vocab_size != m.vocab_size:
        raise UserError(f"{loaded.path}: vocab_size {c.vocab_size} but the dataset has {m.vocab_size}")
    if c.seq_len is not None and c.seq_len != m.seq_len:
        raise UserError(f"{loaded.path}: seq_len {c.seq_len} but the dataset has {m.seq_len}")
    if c.puzzle_emb_ndim > 0 and c.num_puzzle_identifiers < m.num_puzzle_identifiers:
        raise UserError(
            f"{loaded.path}: {c.num_puzzle_identifiers} puzzle embeddings but the dataset has "
            f"{m.num_puzzle_identifiers} puzzle identifiers (built with other puzzles?)"
        )


def evaluate_loaded(loaded: LoadedCheckpoint, data: SplitData, cfg: EvalOptions, keep: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Per-example arrays of one checkpoint on one split (gathered over ranks)."""
    check_compatible(loaded, data)
    kind = detect_kind(data.metadata) if cfg.kind == "auto" else cfg.kind
    if kind == "arc" and "predictions" not in keep:
        keep = keep + ("predictions",)
    return run_eval(
        loaded.model, data, loss_type=loaded.config.loss.loss_type, kind=kind, batch_size=cfg.batch_size,
        halt=cfg.halt, adaptive_rule=cfg.adaptive_rule, limit=cfg.limit, keep=keep,
    )


def per_puzzle_rows(per: dict[str, np.ndarray], names: list[str]) -> list[dict]:
    rows = []
    for i in range(len(per["example_index"])):
        idx = int(per["example_index"][i])
        rows.append({
            "puzzle_id": idx,
            "puzzle": names[idx],
            "solved": bool(per["solved"][i]),
            "exact": bool(per["exact"][i]),
            "num_steps": int(per["steps"][i]),
            "stable_step": int(per["stable_step"][i]),
            "accuracy": float(per["accuracy"][i]),
            "q_halt_logit": float(per["q_halt_logits"][i]),
            "q_continue_logit": float(per["q_continue_logits"][i]),
            "lm_loss": float(per["lm_loss"][i]),
            "time": float(per["time"][i]),
        })
    return rows


def arc_section(per: dict[str, np.ndarray], data: SplitData | MergedSplit, names: list[str], pass_ks: list[int], split: str = "test") -> dict:
    """ARC voting. On the test split of a TRM dataset its test_puzzles.json gives the tasks and
    answers, as TRM's evaluator (only the tasks evaluated, when --limit cut the split)."""
    rows = per["example_index"].astype(np.int64)
    test_puzzles = read_test_puzzles([p.path.parent for p in split_parts(data)]) if split == "test" else None
    if test_puzzles is not None and len(rows) < len(data):
        seen = {parse_aug_name(names[i])[0] for i in rows}
        test_puzzles = {task: puzzle for task, puzzle in test_puzzles.items() if task in seen}
    return arc_vote(
        [names[i] for i in rows], np.asarray(data.inputs[rows]), per["predictions"], np.asarray(data.labels[rows]),
        per["q_halt_logits"], pass_ks=pass_ks, test_puzzles=test_puzzles,
    )


def build_report(per: dict[str, np.ndarray], loaded: LoadedCheckpoint, data_path: Path, data: SplitData, cfg: EvalOptions) -> dict:
    """The results JSON of one checkpoint (see module docstring)."""
    kind = detect_kind(data.metadata) if cfg.kind == "auto" else cfg.kind
    names = read_example_names(data)
    agg = aggregate(per, loaded.config.halt_max_steps)
    report: dict = {"aggregate_metrics": agg, "step": loaded.step}  # top-level step: `hrm analyze --eval-results` reads it
    if kind == "arc":
        report["arc"] = arc_section(per, data, names, cfg.pass_ks, cfg.split)
        agg.update({k: v for k, v in report["arc"].items() if k.startswith("pass@")})
    if cfg.per_puzzle:
        report["per_puzzle_metrics"] = per_puzzle_rows(per, names)
    report["checkpoint"] = {
        "path": str(loaded.path), "step": loaded.step, "arch": loaded.config.model_dump(mode="json"),
        "parameters": count_parameters(loaded.model),
    }
    report["dataset"] = {
        "path": str(data_path) if len(split_parts(data)) == 1 else [str(p.path.parent) for p in split_parts(data)],
        "split": cfg.split, "kind": kind, "examples": len(data),
        "metadata": data.metadata.model_dump(mode="json"),
    }
    report["config"] = cfg.model_dump(mode="json")
    return report


def metrics_table(results: dict[str, dict], title: str) -> Table:
    """Metrics as rows, one column per evaluated model (name -> aggregate_metrics)."""
    table = Table(title=title)
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right", overflow="fold")
    extra = [(k, k) for k in ("pass@1", "pass@2") if any(k in a for a in results.values())]
    for key, label in (("total_puzzles", "puzzles"), *TABLE_METRICS, *extra):
        table.add_row(label, *[_fmt(agg.get(key)) for agg in results.values()])
    return table


def show_and_save(table: dict[str, dict], title: str, out: str | None, report: dict) -> None:
    """Print the metrics table (name -> aggregate metrics) and write `report` to `out` (if given)."""
    console.print(metrics_table(table, title))
    if out:
        atomic_write_json(out, report)
        console.print(f"results: {out}")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def main(argv: list[str]) -> int:
    cfg = parse_command(EvalConfig, argv, prog="tinyreason hrm eval")
    refuse_same(cfg.out, "--out", {"--checkpoint": cfg.checkpoint, "--arch-config": cfg.arch_config})
    info = dist.init(pick_device(cfg.device).type)
    try:
        loaded = load_for_eval(cfg.checkpoint, cfg)
        refuse_same(cfg.out, "--out", {"the checkpoint file": loaded.path, "its all_config.yaml": loaded.path.parent / "all_config.yaml"})
        data_path, data = open_data(cfg)
        t0 = time.perf_counter()
        per = evaluate_loaded(loaded, data, cfg)
        wall = time.perf_counter() - t0
        if not info.is_main:
            return 0
        report = build_report(per, loaded, data_path, data, cfg)
        report["run"] = {
            "world_size": info.world_size, "device": str(loaded.model.inner.H_init.device),
            "dtype": loaded.config.forward_dtype, "wall_time": wall, "torch": torch.__version__,
        }
        name = f"{loaded.path.parent.name}/{loaded.path.name}"
        show_and_save({name: report["aggregate_metrics"]}, f"{loaded.config.family} eval on {data_path.name}/{cfg.split}", cfg.out, report)
        return 0
    finally:
        dist.cleanup()

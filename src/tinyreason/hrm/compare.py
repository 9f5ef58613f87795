"""`tinyreason hrm compare`: the comparison table (and a PNG bar chart) for N checkpoints.

    tinyreason hrm compare --checkpoints A B ... --data DATASET [--out compare.json] [--png compare.png]

A run folder given as a checkpoint stands for all its `step_N` files (compare is how one
picks a step). Every checkpoint is evaluated exactly as `tinyreason hrm eval` does; the
JSON holds each one's aggregate metrics in input order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from tinyreason import dist, hub
from tinyreason.config import parse_command
from tinyreason.device import pick_device
from tinyreason.fileio import atomic_write
from tinyreason.hrm.checkpoint import HUB_PATTERNS, find_checkpoints
from tinyreason.hrm.ensemble import member_names
from tinyreason.hrm.evaluate import EvalOptions, evaluate_loaded, load_for_eval, open_data, resolve_dataset, show_and_save
from tinyreason.hrm.metrics import aggregate
from tinyreason.runlog import console

CHART_METRICS = (("solve_rate", "solve rate"), ("exact_accuracy", "exact"), ("accuracy", "token acc"), ("q_halt_accuracy", "q-halt acc"))


class CompareConfig(EvalOptions):
    """Compare HRM and/or TRM checkpoints on one dataset: a table, JSON and a PNG bar chart."""

    checkpoints: list[str] = Field(..., min_length=1, description="checkpoint files or run folders (all step_N)")
    png: str | None = Field(None, description="bar chart path (default: next to --out)")


def expand(refs: list[str]) -> list[str | Path]:
    """Run folders become their step_N files (in step order); files and Hub ids stay."""
    out: list[str | Path] = []
    for ref in refs:
        path = hub.resolve(ref, allow_patterns=HUB_PATTERNS)
        steps = find_checkpoints(path) if Path(path).is_dir() else []
        out.extend(p for _, p in steps) if steps else out.append(path)
    return out


def bar_chart(table: dict[str, dict], path: str | Path, title: str) -> None:
    """Grouped bars of the accuracy-type metrics per checkpoint, ACT steps on a second panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    parents = {n.rsplit("/", 1)[0] for n in names if "/" in n}
    labels = [n.rsplit("/", 1)[-1] for n in names] if len(parents) == 1 and all("/" in n for n in names) else names
    if labels is not names:
        title = f"{title}: {parents.pop()}"
    x = np.arange(len(names))
    width = 0.8 / len(CHART_METRICS)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(max(7, 1.6 * len(names) + 4), 4), gridspec_kw={"width_ratios": [3, 1]})
    for j, (key, label) in enumerate(CHART_METRICS):
        vals = [table[n].get(key, np.nan) for n in names]
        ax.bar(x + (j - (len(CHART_METRICS) - 1) / 2) * width, vals, width, label=label)
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.18)  # room for the legend above the bars
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8, ncol=len(CHART_METRICS), loc="upper center")
    ax.set_title(title, fontsize=10)
    ax2.bar(x, [table[n].get("average_steps", np.nan) for n in names], color="grey")
    ax2.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax2.set_title("ACT steps", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def compare(cfg: CompareConfig, is_main: bool = True) -> dict[str, dict]:
    """name -> aggregate metrics for every checkpoint (evaluated one after the other)."""
    data_path, data = open_data(cfg)
    loaded = [load_for_eval(str(ref), cfg) for ref in expand(cfg.checkpoints)]
    table = {}
    for name, lc in zip(member_names(loaded), loaded):
        per = evaluate_loaded(lc, data, cfg)
        table[name] = aggregate(per, lc.config.halt_max_steps)
        table[name]["path"], table[name]["step"] = str(lc.path), lc.step
    return table


def main(argv: list[str]) -> int:
    cfg = parse_command(CompareConfig, argv, prog="tinyreason hrm compare")
    info = dist.init(pick_device(cfg.device).type)
    try:
        table = compare(cfg)
        if not info.is_main:
            return 0
        data_name = resolve_dataset(cfg.data).name
        title = f"HRM-family checkpoints on {data_name}/{cfg.split}"
        show_and_save(table, title, cfg.out, {"comparison": table, "dataset": str(resolve_dataset(cfg.data)), "config": cfg.model_dump(mode="json")})
        png = cfg.png or (str(Path(cfg.out).with_suffix(".png")) if cfg.out else None)
        if png:
            bar_chart(table, png, title)
            console.print(f"chart: {png}")
        return 0
    finally:
        dist.cleanup()

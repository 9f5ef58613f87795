"""PNGs of training curves from metrics.jsonl (matplotlib Agg, no display needed).

`plot_curves`: one panel per key, as logged (SFT). `plot_grpo_curves`: GRPO's rewards per
task and per reward function, so a step mixing policy and environment prompts (whose
rewards differ in scale) does not read as one zig-zagging line; training series smoothed
(a debiased EMA, the raw series faint behind it), greedy evals as points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tinyreason.fileio import atomic_write
from tinyreason.runlog import read_metrics


def plot_curves(run_dir: str | Path, keys: list[str], out_name: str = "curves.png", title: str = "") -> Path | None:
    """One panel per key present in the run's metrics (x = step); returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    present = [k for k in keys if any(r.get(k) is not None for r in records)]
    if not present:
        return None
    cols = min(3, len(present))
    rows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        pts = [(r["step"], r[key]) for r in records if r.get(key) is not None and "step" in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 50 else None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(run_dir) / out_name
    atomic_write(out, lambda p: fig.savefig(p, dpi=80, format="png"))
    plt.close(fig)
    return out


@dataclass
class Panel:
    """One subplot: `lines` of (label, steps, values); `smooth` False for sparse points (evals)."""

    title: str
    lines: list[tuple[str, list[int], list[float]]] = field(default_factory=list)
    smooth: bool = True


def points(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the records holding a number under `key`."""
    pts = [(r["step"], float(r[key])) for r in records
           if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and isinstance(r.get("step"), int)]
    return [p[0] for p in pts], [p[1] for p in pts]


def ema(values: list[float], span: float) -> list[float]:
    """Exponential moving average with weight 2/(span+1) on the newest value, debiased at the
    start (divided by the weight seen so far, as TensorBoard smooths) so it starts at the data."""
    alpha, mean, weight, out = 2.0 / (span + 1.0), 0.0, 0.0, []
    for v in values:
        mean, weight = (1 - alpha) * mean + alpha * v, (1 - alpha) * weight + alpha
        out.append(mean / weight)
    return out


def smoothing_span(n: int) -> float:
    """EMA span for a series of n points: a tenth of the run, between 1 (none) and 50."""
    return float(min(50, max(1, n // 10)))


def _names(records: list[dict], prefix: str) -> list[str]:
    """The rest of each key starting with `prefix`, in order of first appearance."""
    seen: dict[str, None] = {}
    for r in records:
        for k in r:
            if k.startswith(prefix):
                seen.setdefault(k[len(prefix):], None)
    return list(seen)


def grpo_panels(records: list[dict], task_names: Sequence[str] | None = None) -> list[Panel]:
    """The GRPO curves as data: per-task mean reward (one line per task), each task's reward
    functions, KL, entropy, completion length, then each task's greedy eval rates
    (`eval/<task>_<rate>`). `task_names`: the run's tasks in order; default those with a
    `reward/<task>/mean` series, in order of first appearance."""
    if task_names is None:
        task_names = list(dict.fromkeys(n[: -len("/mean")] for n in _names(records, "reward/")
                                        if n.count("/") == 1 and n.endswith("/mean")))
    tasks = [t for t in task_names if points(records, f"reward/{t}/mean")[0]]
    panels = [Panel("reward by task (mean)", [(t, *points(records, f"reward/{t}/mean")) for t in tasks])
              if tasks else Panel("reward (mean)", [("all", *points(records, "reward_mean"))])]
    for t in tasks:
        fns = [n for n in _names(records, f"reward/{t}/") if "/" not in n and n not in ("mean", "std")]
        panels.append(Panel(f"{t} reward functions (mean)", [(n, *points(records, f"reward/{t}/{n}")) for n in fns]))
    for key, title in (("kl", "KL to the reference"), ("entropy", "entropy"), ("completion_len_mean", "completion length (mean)")):
        panels.append(Panel(title, [(key, *points(records, key))]))
    for t in task_names:
        rates = [n for n in _names(records, f"eval/{t}_") if "/" not in n]
        panels.append(Panel(f"eval {t} (greedy)", [(n, *points(records, f"eval/{t}_{n}")) for n in rates], smooth=False))
    for panel in panels:
        panel.lines = [line for line in panel.lines if line[1]]
    return [p for p in panels if p.lines]


def plot_grpo_curves(run_dir: str | Path, out_name: str = "curves.png", title: str = "",
                     task_names: Sequence[str] | None = None) -> Path | None:
    """`grpo_panels` of the run's metrics as a PNG (3 panels a row); returns its path (None: nothing logged)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = grpo_panels(read_metrics(run_dir), task_names)
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for i, (label, steps, values) in enumerate(panel.lines):
            color = f"C{i}"
            if not panel.smooth:
                ax.plot(steps, values, marker="o", markersize=3, color=color, label=label)
                continue
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
            ax.plot(steps, ema(values, smoothing_span(len(values))), color=color, label=label)
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle((title + "  " if title else "") + "(lines: EMA over ~1/10 of the run; faint: per step)", fontsize=10)
    fig.tight_layout()
    out = Path(run_dir) / out_name
    atomic_write(out, lambda p: fig.savefig(p, dpi=80, format="png"))
    plt.close(fig)
    return out

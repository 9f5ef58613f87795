"""PNG of training curves from metrics.jsonl (matplotlib Agg, no display needed)."""

from __future__ import annotations

import math
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

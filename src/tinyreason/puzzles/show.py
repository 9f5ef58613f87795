"""`tinyreason hrm show DATASET`: puzzles (and predictions) as text grids or a PNG.

Predictions come from an .npz with `predictions` (N, seq_len), as `tinyreason hrm predict`
writes. Row k belongs to dataset example k, unless the file has `example_indices`; when it
also has `inputs`, they must match the dataset's, so predictions are never shown against
the wrong puzzle.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import numpy as np

from pydantic import Field

from tinyreason.config import StrictModel, parse_command
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write
from tinyreason.puzzles.arc import decode_grid
from tinyreason.puzzles.dataset import example_names, open_split, read_identifiers
from tinyreason.puzzles.verify import decode, guess_kind, verify_tokens

# the usual ARC palette (black, blue, red, green, yellow, grey, magenta, orange, cyan, maroon)
ARC_COLOURS = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25"]


class ShowConfig(StrictModel):
    """Render dataset examples as text grids (and optionally a PNG), with predictions if given."""

    dataset: Path
    split: str = "test"
    index: int = 0
    count: int = Field(1, description="examples from --index on")
    kind: Literal["sudoku", "maze", "arc"] | None = Field(None, description="default: from dataset.json")
    predictions: Path | None = Field(None, description=".npz with `predictions` (N, seq_len)")
    png: Path | None = None


def main(argv: list[str]) -> int:
    cfg = parse_command(ShowConfig, argv, positional=("dataset",), prog="tinyreason hrm show")
    data = open_split(cfg.dataset, cfg.split)
    kind = cfg.kind or guess_kind(data.metadata.vocab_size, data.metadata.seq_len)
    rows = list(range(cfg.index, min(cfg.index + cfg.count, len(data))))
    if cfg.index < 0 or not rows:
        raise UserError(f"--index {cfg.index} is outside 0..{len(data) - 1} of {data.path}")
    preds = _load_predictions(cfg.predictions, data, rows) if cfg.predictions else {}
    names = example_names(data, read_identifiers(cfg.dataset))
    panels = []
    for i in rows:
        grids = {"input": data.inputs[i], "label": data.labels[i]}
        title = f"{cfg.split}[{i}]  puzzle {names[i]}"
        if i in preds:
            grids["prediction"] = preds[i]
            ok = verify_tokens(kind, data.inputs[i], preds[i], data.labels[i])
            title += f"  prediction {'correct' if ok else 'WRONG'}"
        print(title)
        print(side_by_side({k: render(kind, v) for k, v in grids.items()}))
        print()
        panels.append((title, grids))
    if cfg.png:
        write_png(kind, panels, cfg.png)
        print(f"wrote {cfg.png}")
    return 0


def _load_predictions(path: Path, data, rows: list[int]) -> dict[int, np.ndarray]:
    if not path.is_file():
        raise UserError(f"{path}: predictions file not found")
    try:
        npz = np.load(path)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: not an .npz file ({e})") from None
    if "predictions" not in npz:
        raise UserError(f"{path}: no 'predictions' array (has {', '.join(npz.files)})")
    pred = npz["predictions"]
    if pred.ndim != 2 or pred.shape[1] != data.metadata.seq_len:
        raise UserError(f"{path}: predictions shape {pred.shape}, expected (N, {data.metadata.seq_len})")
    index = npz["example_indices"] if "example_indices" in npz else np.arange(len(pred))
    out = {}
    for k, i in enumerate(index):
        i = int(i)
        if i in rows:
            if "inputs" in npz and not np.array_equal(npz["inputs"][k], data.inputs[i]):
                raise UserError(f"{path} row {k}: its inputs differ from example {i} of {data.path}; wrong dataset or split?")
            out[i] = pred[k]
    return out


def render(kind: str, tokens: np.ndarray) -> list[str]:
    """Text lines of one token sequence."""
    if kind == "sudoku":
        g = decode(kind, tokens)
        lines = []
        for r in range(9):
            if r in (3, 6):
                lines.append("------+-------+------")
            cells = ["." if v == 0 else ("?" if v < 0 else str(v)) for v in g[r]]
            lines.append(" | ".join(" ".join(cells[c : c + 3]) for c in (0, 3, 6)))
        return lines
    if kind == "maze":
        return ["".join(row) for row in decode(kind, tokens)]
    g = decode_grid(tokens)
    if g.size == 0:
        return ["(no grid: no colour at the top-left)"]
    return ["".join(str(v) for v in row) for row in g]


def side_by_side(blocks: dict[str, list[str]], gap: int = 4) -> str:
    width = {k: max(len(k), *(len(x) for x in v)) for k, v in blocks.items()}
    height = max(len(v) for v in blocks.values())
    lines = [(" " * gap).join(k.ljust(width[k]) for k in blocks)]
    for r in range(height):
        lines.append((" " * gap).join((v[r] if r < len(v) else "").ljust(width[k]) for k, v in blocks.items()).rstrip())
    return "\n".join(lines)


def write_png(kind: str, panels: list[tuple[str, dict[str, np.ndarray]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    n_cols = max(len(g) for _, g in panels)
    fig, axes = plt.subplots(len(panels), n_cols, figsize=(3.2 * n_cols, 3.4 * len(panels)), squeeze=False)
    for r, (title, grids) in enumerate(panels):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(grids):
                ax.axis("off")
                continue
            name, tokens = list(grids.items())[c]
            ax.set_title(f"{title}\n{name}" if c == 0 else name, fontsize=8)
            if kind == "arc":
                g = decode_grid(tokens)
                ax.imshow(g if g.size else np.zeros((1, 1)), cmap=ListedColormap(ARC_COLOURS), vmin=0, vmax=9)
            elif kind == "maze":
                g = np.asarray(tokens).reshape(decode(kind, tokens).shape)
                cmap = ListedColormap(["#ff00ff", "#222222", "#ffffff", "#2ecc40", "#ff4136", "#0074d9"])
                ax.imshow(g, cmap=cmap, vmin=0, vmax=5)
            else:
                g = decode(kind, tokens)
                ax.imshow(np.zeros((9, 9)), cmap="Greys", vmin=0, vmax=1)
                for (i, j), v in np.ndenumerate(g):
                    if v:
                        ax.text(j, i, "?" if v < 0 else str(v), ha="center", va="center", fontsize=9)
                for k in (2.5, 5.5):
                    ax.axhline(k, color="k", lw=1.5)
                    ax.axvline(k, color="k", lw=1.5)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

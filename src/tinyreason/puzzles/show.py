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
from tinyreason.fileio import atomic_write, read_npz
from tinyreason.puzzles import sudoku
from tinyreason.puzzles.arc import decode_grid, locate_grid
from tinyreason.puzzles.dataset import SplitData, example_names, open_split, read_identifiers
from tinyreason.puzzles.verify import check_kind, decode, guess_kind, verify_tokens
from tinyreason.runguard import refuse_same

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
    refuse_same(cfg.png, "--png", {"--predictions": cfg.predictions})
    data = open_split(cfg.dataset, cfg.split)
    seq_len = data.metadata.seq_len
    kind = check_kind(cfg.kind, seq_len) if cfg.kind else guess_kind(data.metadata.vocab_size, seq_len)
    rows = list(range(cfg.index, min(cfg.index + cfg.count, len(data))))
    if cfg.index < 0 or cfg.count < 1 or not rows:
        raise UserError(f"--index {cfg.index} --count {cfg.count} selects no example of {data.path} (0..{len(data) - 1})")
    preds = _load_predictions(cfg.predictions, data, rows) if cfg.predictions else {}
    names = example_names(data, read_identifiers(cfg.dataset))
    panels = []
    for i in rows:
        grids = {"input": data.inputs[i], "label": data.labels[i]}
        title, ok = f"{cfg.split}[{i}]  puzzle {names[i]}", None
        if i in preds:
            grids["prediction"] = preds[i]
            ok = verify_tokens(kind, data.inputs[i], preds[i], data.labels[i])
            title += f"  prediction {'correct' if ok else 'WRONG'}"
        print(title)
        print(side_by_side({k: render(kind, v, k == "prediction") for k, v in grids.items()}))
        print()
        panels.append((title, grids, ok))
    if cfg.png:
        write_png(kind, panels, cfg.png)
        print(f"wrote {cfg.png}")
    return 0


def _load_predictions(path: Path, data: SplitData, rows: list[int]) -> dict[int, np.ndarray]:
    """Predictions of the selected dataset rows; refuses a file made for another dataset or split."""
    npz = read_npz(path, required=("predictions",))
    pred = npz["predictions"]
    if pred.ndim != 2 or pred.shape[1] != data.metadata.seq_len:
        raise UserError(f"{path}: predictions shape {pred.shape}, expected (N, {data.metadata.seq_len})")
    index = npz["example_indices"] if "example_indices" in npz else np.arange(len(pred))
    if len(index) != len(pred):
        raise UserError(f"{path}: {len(index)} example_indices for {len(pred)} predictions")
    out = {}
    for k, i in enumerate(index.tolist()):
        if i in rows:
            if "inputs" in npz and not np.array_equal(npz["inputs"][k], data.inputs[i]):
                raise UserError(f"{path} row {k}: its inputs differ from example {i} of {data.path}; wrong dataset or split?")
            out[i] = pred[k]
    return out


def render(kind: str, tokens: np.ndarray, prediction: bool = False) -> list[str]:
    """Text lines of one token sequence. ARC inputs and labels are located wherever they were
    translated to; a prediction is cropped at the top-left, as the evaluation does."""
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
    g = decode_grid(tokens) if prediction else locate_grid(tokens)
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


MAZE_COLOURS = ["#ff00ff", "#222222", "#ffffff", "#ff4136", "#2ecc40", "#0074d9"]  # PAD, wall, free, S, G, path


def write_png(kind: str, panels: list[tuple[str, dict[str, np.ndarray], bool | None]], path: Path) -> None:
    """One row per example (title green when the prediction verifies, red when not), one panel per grid.

    Sudoku: givens black, filled digits blue, cells breaking a rule red. Maze: wall dark,
    S red, G green, path blue. ARC: the standard palette on the decoded grid, with cell lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = max(len(grids) for _, grids, _ in panels)
    fig = plt.figure(figsize=(3.2 * n_cols, 3.7 * len(panels)), layout="constrained")
    if kind == "maze":
        fig.suptitle("wall dark · S red · G green · path blue", fontsize=9)
    for sub, (title, grids, ok) in zip(fig.subfigures(len(panels), 1, squeeze=False)[:, 0], panels):
        sub.suptitle(title, fontsize=10, color={True: "#1a7f37", False: "#cf222e", None: "black"}[ok])
        axes = sub.subplots(1, n_cols, squeeze=False)[0]
        for c, ax in enumerate(axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(grids):
                ax.axis("off")
                continue
            name, tokens = list(grids.items())[c]
            _draw(ax, kind, name, tokens, grids["input"])
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)


def _draw(ax, kind: str, name: str, tokens: np.ndarray, input_tokens: np.ndarray) -> None:
    from matplotlib.colors import ListedColormap

    if kind == "arc":
        g = decode_grid(tokens) if name == "prediction" else locate_grid(tokens)
        ax.set_title(f"{name} {g.shape[0]}x{g.shape[1]}", fontsize=9)
        if g.size == 0:
            ax.text(0.5, 0.5, "no grid", ha="center", va="center", transform=ax.transAxes)
            return
        ax.imshow(g, cmap=ListedColormap(ARC_COLOURS), vmin=0, vmax=9)
        _cell_lines(ax, g.shape, "#555555", 0.5)
        return
    ax.set_title(name, fontsize=9)
    if kind == "maze":
        g = np.asarray(tokens, dtype=np.int64).reshape(decode(kind, tokens).shape)
        ax.imshow(np.where((g >= 0) & (g <= 5), g, 0), cmap=ListedColormap(MAZE_COLOURS), vmin=0, vmax=5)
        return
    g, givens = decode(kind, tokens), decode(kind, input_tokens)
    bad = sudoku.conflicts(givens, g) if name != "input" else np.zeros((9, 9), bool)
    ax.imshow(np.where(bad, 1.0, 0.0), cmap=ListedColormap(["#ffffff", "#ffd6d6"]), vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(g):
        if v:
            given = givens[i, j] > 0
            colour = "#cf222e" if bad[i, j] else ("black" if given else "#0969da")
            ax.text(j, i, "?" if v < 0 else str(v), ha="center", va="center", fontsize=10, color=colour, fontweight="bold" if given else "normal")
    _cell_lines(ax, (9, 9), "#bbbbbb", 0.5)
    for k in (2.5, 5.5):
        ax.axhline(k, color="k", lw=1.5)
        ax.axvline(k, color="k", lw=1.5)


def _cell_lines(ax, shape: tuple[int, int], colour: str, width: float) -> None:
    for r in range(1, shape[0]):
        ax.axhline(r - 0.5, color=colour, lw=width)
    for c in range(1, shape[1]):
        ax.axvline(c - 0.5, color=colour, lw=width)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

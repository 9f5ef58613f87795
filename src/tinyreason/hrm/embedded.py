"""HRM checkpoints shipped inside the package: `embedded:<name>[/<file>]` references.

`src/tinyreason/embedded/hrm-<name>/` holds a run folder (`step_N` files, `all_config.yaml`,
model card) and, under `data/`, the small dataset its figures were measured on.
`embedded:hrm-sudoku-tiny` is the folder (latest step), `embedded:hrm-sudoku-tiny/step_600`
one file, `embedded:hrm-sudoku-tiny/data` its dataset. Anything else passes through.
"""

from __future__ import annotations

from pathlib import Path

from tinyreason.errors import UserError

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "embedded"
PREFIX = "embedded:"


def resolve_embedded(ref: str | Path) -> str | Path:
    """Local path for an `embedded:` reference; other references are returned unchanged."""
    text = str(ref)
    if not text.startswith(PREFIX):
        return ref
    rel = text[len(PREFIX) :].strip("/")
    name = rel.split("/", 1)[0]
    if not name or not (EMBEDDED_DIR / name).is_dir():
        have = sorted(p.name for p in EMBEDDED_DIR.glob("hrm-*") if p.is_dir()) if EMBEDDED_DIR.is_dir() else []
        raise UserError(f"no embedded HRM '{name}' (available: {', '.join(have) or 'none'})")
    path = EMBEDDED_DIR / rel
    if not path.exists():
        raise UserError(f"embedded HRM '{name}' has no '{rel.split('/', 1)[-1]}'")
    return path

"""One folder per run: resolved `config.yaml`, `metrics.jsonl`, and console progress.

Metrics are appended one JSON object per line and flushed, so a killed run keeps every
line it logged. On resume, lines past the checkpointed step are dropped (`truncate_after`)
so the file reads as one uninterrupted run. `report_to` also sends each record's numbers to
TensorBoard or W&B (`tinyreason.telemetry`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tinyreason.config import dump_config
from tinyreason.fileio import _json_default, atomic_write_text
from tinyreason.telemetry import ReportTo, open_writer, scalars

T = TypeVar("T")
console = Console(stderr=True, soft_wrap=True)  # no hard wrap at 80 columns in logs


class RunDir:
    """A run folder. `is_main` is False on non-zero torchrun ranks: they write nothing."""

    def __init__(self, path: str | Path, is_main: bool = True):
        self.path = Path(path)
        self.is_main = is_main
        self.writer = None  # TensorBoard / W&B (report_to)
        self.resumed_at: int | None = None  # the checkpoint step this process continues from
        if is_main:
            self.path.mkdir(parents=True, exist_ok=True)

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_config(self, cfg: BaseModel) -> None:
        if self.is_main:
            atomic_write_text(self.path / "config.yaml", dump_config(cfg))

    def report_to(self, kind: ReportTo, cfg: BaseModel, project: str | None = None, name: str | None = None) -> None:
        """From now on also send each record's numbers to TensorBoard or W&B (`tinyreason.telemetry`)."""
        if self.is_main:
            self.close()
            self.writer = open_writer(kind, self.path, cfg.model_dump(mode="json"), project, name, self.resumed_at)

    def close(self) -> None:
        """Flush and close the TensorBoard / W&B writer, if any (metrics.jsonl needs no closing)."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()

    def log(self, record: dict[str, Any]) -> None:
        """Append one metrics record (a `time` field is added). NaN/Inf become null."""
        if not self.is_main:
            return
        record = {"time": round(time.time(), 3), **record}
        line = json.dumps(_finite(record), default=_json_default)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
        if self.writer is not None and isinstance(record.get("step"), int):
            self.writer.log(record["step"], scalars(record))

    def truncate_after(self, step: int, key: str = "step") -> None:
        """Drop metric lines with `key` > step (lines logged after the checkpoint we resume from)."""
        self.resumed_at = step
        if not self.is_main or not self.metrics_path.exists():
            return
        kept = [
            line
            for line in self.metrics_path.read_text(encoding="utf-8").splitlines()
            if line.strip() and _line_ok(line) and json.loads(line).get(key, -1) <= step
        ]
        atomic_write_text(self.metrics_path, "".join(line + "\n" for line in kept))


def _line_ok(line: str) -> bool:
    try:
        json.loads(line)
        return True
    except json.JSONDecodeError:  # a line cut by a kill mid-write
        return False


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All complete records of a metrics.jsonl (a torn last line is skipped)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and _line_ok(line)]


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def progress(
    items: Iterable[T], description: str, total: int | None = None, disable: bool = False
) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr (disabled on non-main ranks or when asked)."""
    if disable:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def make_progress() -> Progress:
    """A rich Progress for loops that update by hand (e.g. training steps with a postfix)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
    )

"""Readers of what `report_to` writes, for tests: TensorBoard event files and offline W&B run files."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from tinyreason.runlog import read_metrics
from tinyreason.telemetry import scalars


def offline_wandb(monkeypatch, home: Path) -> None:
    """W&B as report_to starts it (offline), with its settings, cache and logs under `home`, not $HOME."""
    for var, sub in [("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")]:
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")


def tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of `<run>/tensorboard`, read with TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def metrics_series(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The same view of metrics.jsonl: each record's numbers (`telemetry.scalars`) by name, at its step."""
    series: dict[str, list[tuple[int, float]]] = {}
    for record in read_metrics(run_dir):
        if isinstance(record.get("step"), int):
            for name, value in scalars(record).items():
                series.setdefault(name, []).append((record["step"], value))
    return series


def same_series(a: dict[str, list[tuple[int, float]]], b: dict[str, list[tuple[int, float]]]) -> bool:
    """Equal names, steps and values (TensorBoard keeps float32)."""
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(sa == sb and math.isclose(va, vb, rel_tol=1e-6, abs_tol=1e-30)
                                       for (sa, va), (sb, vb) in zip(a[k], b[k])) for k in a)


def wandb_records(run_file: Path) -> list:
    """The `Record` protobufs of an offline W&B run file: W&B's LevelDB-style log (7-byte file
    header, 32 KiB blocks of chunks with a 7-byte header: CRC, length, kind)."""
    from wandb.proto import wandb_internal_pb2

    data, block, pos, chunk, records = run_file.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B", "not a W&B run file"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if pos + 7 + length > len(data):  # W&B is still writing this one
            break
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL, or the LAST of FIRST/MIDDLE.../LAST
            records.append(wandb_internal_pb2.Record.FromString(chunk))
            chunk = b""
    return records


def wandb_history(run_file: Path, timeout: float = 30.0) -> list[dict]:
    """The history rows (`_step` and the logged keys) once the run's `exit` record is written:
    `finish()` returns before W&B's service process has written the file."""
    deadline = time.monotonic() + timeout
    while not any(r.WhichOneof("record_type") == "exit" for r in wandb_records(run_file)):
        assert time.monotonic() < deadline, f"{run_file} has no exit record after {timeout} s"
        time.sleep(0.05)
    rows = []
    for record in wandb_records(run_file):
        if record.WhichOneof("record_type") == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            rows.append({k: v for k, v in row.items() if k == "_step" or not k.startswith("_")})  # not _runtime...
    return rows


def wandb_series(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """name -> [(step, value)] of the one offline W&B run under `<run>/wandb`."""
    (run_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    series: dict[str, list[tuple[int, float]]] = {}
    for row in wandb_history(run_file):
        for name, value in row.items():
            if name != "_step":
                series.setdefault(name, []).append((row["_step"], float(value)))
    return series

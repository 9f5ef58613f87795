"""Read evaluation results of several checkpoints into {step: metric value}.

Accepted (one or more files, mixed):
- JSON mapping step -> number, e.g. {"1000": 0.41, "step_2000": 0.55};
- JSON mapping step -> metrics mapping, e.g. {"1000": {"exact_accuracy": 0.41}};
- an evaluation results JSON (`tinyreason hrm eval` style) with `aggregate_metrics` and a
  `step` or `checkpoint` (path ending in step_N) field, or a list of those;
- a `tinyreason hrm compare` JSON: {"comparison": {name: {metrics…, "step", "path"}}};
- JSONL (e.g. a run's metrics.jsonl): records with `step` and the metric, also under a
  prefixed key such as `eval/exact_accuracy` or `test/exact_accuracy`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from tinyreason.errors import UserError
from tinyreason.fileio import read_json
from tinyreason.runlog import read_metrics

_STEP = re.compile(r"(?:^|[/_])step_?(\d+)$|^(\d+)$")


def _step_from(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _STEP.search(value.strip().rstrip("/"))
        if m:
            return int(m.group(1) or m.group(2))
    return None


def _metric_from(record: Any, metric: str) -> float | None:
    """The metric in a flat or nested mapping (aggregate_metrics, per-set dicts, prefixed keys)."""
    if isinstance(record, bool):
        return None
    if isinstance(record, (int, float)):
        return float(record)
    if not isinstance(record, dict):
        return None
    if "aggregate_metrics" in record:
        return _metric_from(record["aggregate_metrics"], metric)
    for key, value in record.items():
        if (key == metric or key.endswith("/" + metric)) and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    for value in record.values():  # per-set nesting, e.g. {"all": {"exact_accuracy": ...}}
        if isinstance(value, dict):
            found = _metric_from(value, metric)
            if found is not None:
                return found
    return None


def _from_result(record: dict, metric: str) -> tuple[int, float] | None:
    step = _step_from(record.get("step"))
    if step is None:
        step = _step_from(str(record.get("checkpoint", "")))
    value = _metric_from(record, metric)
    if step is None or value is None:
        return None
    return step, value


def read_eval_results(paths: list[str | Path], metric: str) -> dict[int, float]:
    """{checkpoint step: metric} from the files; later files override earlier ones."""
    out: dict[int, float] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(f"evaluation results file not found: {path}")
        if path.suffix == ".jsonl":
            records: Any = read_metrics(path)  # complete lines only, as a run's metrics.jsonl
        else:
            records = read_json(path)
        found = _parse(records, metric)
        if not found:
            raise UserError(f"{path}: no '{metric}' result with a checkpoint step found (see `tinyreason hrm analyze --help`)")
        out.update({s: v for s, v in found.items() if math.isfinite(v)})
    return out


def _parse(records: Any, metric: str) -> dict[int, float]:
    found: dict[int, float] = {}
    if isinstance(records, list):
        for rec in records:
            if isinstance(rec, dict) and (hit := _from_result(rec, metric)):
                found[hit[0]] = hit[1]
        return found
    if not isinstance(records, dict):
        return found
    if isinstance(records.get("comparison"), dict):  # compare output: name -> aggregate metrics with step / path
        rows = [{**v, "checkpoint": v.get("path") or name} for name, v in records["comparison"].items() if isinstance(v, dict)]
        return _parse(rows, metric)
    if "aggregate_metrics" in records or "step" in records:
        hit = _from_result(records, metric)
        return dict([hit]) if hit else found
    for key, value in records.items():
        step, val = _step_from(key), _metric_from(value, metric)
        if step is not None and val is not None:
            found[step] = val
    return found

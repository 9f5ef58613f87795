"""`tinyreason hrm validate CHECKPOINT`: check HRM or TRM weights against their config and print a report.

Prints a table per tensor group (shapes, dtypes, NaN/Inf, status), every problem found,
and the parameter count split into puzzle embeddings and the rest. Exit 2 when invalid.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from pydantic import Field
from rich.console import Console
from rich.table import Table

from tinyreason.config import StrictModel, parse_command
from tinyreason.errors import UserError
from tinyreason.hrm.checkpoint import read_state_dict, resolve_checkpoint, resolve_config, validate_state_dict
from tinyreason.hrm.validation import ValidationReport


class ValidateConfig(StrictModel):
    """Validate an HRM or TRM checkpoint (official format) against its architecture config."""

    checkpoint: str = Field(..., description="weights file, run folder (latest step_N) or Hub repo id")
    arch_config: str | None = Field(None, description="architecture YAML (default: all_config.yaml next to the checkpoint)")


def tensor_group(name: str) -> str:
    """Coarse group of a parameter name: puzzle_emb, embed_tokens, H_level.layers.0, …"""
    parts = name.removeprefix("inner.").split(".")
    if parts[0] in ("H_level", "L_level") and len(parts) > 2:
        return ".".join(parts[:3])
    return parts[0]


def report_table(report: ValidationReport, family: str = "HRM") -> Table:
    groups: dict[str, list] = defaultdict(list)
    for t in report.tensors:
        groups[tensor_group(t.name)].append(t)
    table = Table(title=f"{family} checkpoint {report.path or ''}")
    for col in ("group", "tensors", "numbers", "dtype", "shapes", "NaN/Inf", "status"):
        table.add_column(col, justify="right" if col in ("tensors", "numbers") else "left")
    for group, items in groups.items():
        statuses = sorted({t.status for t in items})
        bad = [s for s in statuses if s not in ("ok", "ignored")]
        shapes = ", ".join("x".join(map(str, t.shape)) for t in items[:2]) + (" …" if len(items) > 2 else "")
        table.add_row(
            group,
            str(len(items)),
            f"{sum(t.numel for t in items):,}",
            ",".join(sorted({t.dtype for t in items})),
            shapes,
            f"{sum(t.nan for t in items)}/{sum(t.inf for t in items)}",
            f"[red]{','.join(bad)}[/]" if bad else "[green]ok[/]",
        )
    return table


def print_report(report: ValidationReport, console: Console | None = None, family: str = "HRM") -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    console.print(report_table(report, family))
    for e in report.errors:
        console.print(f"[red]error[/]: {e}", highlight=False)
    for w in report.warnings:
        console.print(f"[yellow]warning[/]: {w}", highlight=False)
    exp = report.expected_counts
    console.print(f"config implies {exp.get('total', 0):,} numbers ({exp.get('puzzle_embedding', 0):,} puzzle embeddings, {exp.get('other', 0):,} other)")
    console.print(report.summary(), highlight=False)


def main(argv: list[str]) -> int:
    cfg = parse_command(ValidateConfig, argv, positional=("checkpoint",), prog="tinyreason hrm validate")
    weights = resolve_checkpoint(cfg.checkpoint)
    state_dict = read_state_dict(weights)
    arch, _ = resolve_config(weights, state_dict, cfg.arch_config)
    report = validate_state_dict(state_dict, arch, path=str(weights))
    print_report(report, family=arch.family)
    if not report.ok:
        raise UserError(f"{weights} is invalid: {len(report.errors)} problem(s), first: {report.errors[0]}")
    return 0

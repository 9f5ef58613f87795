"""`tinyreason hrm analyze RUN_DIR --out REPORT_DIR`: how the checkpoints of a training run evolve.

For every `step_N` checkpoint: validation status, L2 norm per tensor group, and the
relative weight change ||W_t - W_prev|| / ||W_prev|| to the previous valid checkpoint.
Convergence rule (stated in the report): the run has converged when the relative change
of all weights except the puzzle embeddings stays below `change_threshold` for the last
`window` checkpoint intervals (puzzle embeddings are excluded: each row only moves when
its puzzle is sampled, so their change tracks data order, not convergence). The
recommended checkpoint is the best by an evaluation metric when results are given, else
the latest converged one (else the latest valid one). Writes analysis.json, analysis.md,
norms.png and change.png.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from pydantic import Field

from tinyreason import hub
from tinyreason.config import StrictModel, dump_config, parse_command, read_yaml
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write, atomic_write_json, atomic_write_text
from tinyreason.hrm.checkpoint import HUB_PATTERNS, find_checkpoints, read_state_dict, validate_state_dict
from tinyreason.hrm.config import from_official, is_trm
from tinyreason.hrm.evalresults import read_eval_results
from tinyreason.runlog import console, progress

PUZZLE_GROUP = "puzzle_emb"


class AnalyzeConfig(StrictModel):
    """Analyse all step_N checkpoints of an HRM or TRM run (official layout)."""

    run_dir: str = Field(..., description="folder with step_N checkpoints and all_config.yaml (or embedded:<name>, or a Hub repo id)")
    out: str = Field(..., description="report folder (analysis.json, analysis.md, PNG plots)")
    arch_config: str | None = Field(None, description="architecture YAML (default: all_config.yaml in RUN_DIR)")
    eval_results: list[str] = Field(default_factory=list, description="JSON/JSONL evaluation results (step -> metric)")
    metric: str = Field("exact_accuracy", description="metric used to pick the best checkpoint")
    higher_is_better: bool = True
    change_threshold: float = Field(0.01, gt=0, description="relative change below which an interval counts as converged")
    window: int = Field(2, ge=1, description="consecutive converged intervals needed")


def group_of(name: str) -> str:
    """Top-level tensor group: puzzle_emb, embed_tokens, embed_pos, lm_head, q_head, H_level, L_level, H_init, L_init."""
    return name.removeprefix("inner.").split(".")[0]


def group_norms(state: dict[str, torch.Tensor]) -> dict[str, float]:
    sq: dict[str, float] = {}
    for name, t in state.items():
        g = group_of(name)
        sq[g] = sq.get(g, 0.0) + float(t.double().square().sum())
    return {g: math.sqrt(v) for g, v in sq.items()}


def relative_changes(prev: dict[str, torch.Tensor], cur: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per group and overall ("model" = all but puzzle embeddings) ||cur - prev|| / ||prev||."""
    diff: dict[str, float] = {}
    base: dict[str, float] = {}
    for name, t in cur.items():
        p = prev.get(name)
        if p is None or p.shape != t.shape:
            continue
        g = group_of(name)
        d = float((t.double() - p.double()).square().sum())
        b = float(p.double().square().sum())
        for key in (g, "model") if g != PUZZLE_GROUP else (g,):
            diff[key] = diff.get(key, 0.0) + d
            base[key] = base.get(key, 0.0) + b
    return {k: math.sqrt(diff[k]) / math.sqrt(base[k]) if base[k] > 0 else (0.0 if diff[k] == 0 else math.inf) for k in diff}


def analyze_run(cfg: AnalyzeConfig) -> dict:
    """Everything the report shows, as a JSON-ready dict."""
    run_dir = hub.resolve(cfg.run_dir, allow_patterns=HUB_PATTERNS)  # a folder, `embedded:<name>` or a Hub repo
    ckpts = find_checkpoints(run_dir)
    if not ckpts:
        raise UserError(f"no step_N checkpoints in {cfg.run_dir}")
    config_path = Path(cfg.arch_config) if cfg.arch_config else run_dir / "all_config.yaml"
    if not cfg.arch_config and not config_path.is_file():
        raise UserError(f"no all_config.yaml in {cfg.run_dir}: the official trainer writes it there; copy it or pass --arch-config FILE")
    raw = read_yaml(config_path)  # once for the run; each checkpoint adds its dataset-derived sizes
    rows: list[dict] = []
    prev: dict[str, torch.Tensor] | None = None
    family = "TRM" if is_trm((raw.get("arch") if isinstance(raw.get("arch"), dict) else raw).get("name")) else "HRM"
    for step, path in progress(ckpts, "analyze checkpoints"):
        row: dict = {"step": step, "path": str(path), "valid": False, "errors": [], "norms": {}, "change": {}}
        try:
            state = read_state_dict(path)
            arch = from_official(raw, state, source=str(config_path))
            report = validate_state_dict(state, arch, path=str(path))
            row.update(valid=report.ok, errors=report.errors, warnings=report.warnings, params=report.param_counts)
        except UserError as e:
            row["errors"] = [str(e)]
            rows.append(row)
            continue
        state = {k: v.float() for k, v in state.items()}
        row["norms"] = group_norms(state)
        if prev is not None:
            row["change"] = relative_changes(prev, state)
        if report.ok:
            prev = state
        rows.append(row)
    return {"run_dir": str(cfg.run_dir), "family": family, "checkpoints": rows, **_verdict(rows, cfg)}


def _verdict(rows: list[dict], cfg: AnalyzeConfig) -> dict:
    rule = (
        f"converged when the relative weight change (all weights except puzzle embeddings) between consecutive "
        f"valid checkpoints is below {cfg.change_threshold:g} for the last {cfg.window} interval(s)"
    )
    valid = [r for r in rows if r["valid"]]
    changes = [(r["step"], r["change"].get("model")) for r in valid if r["change"].get("model") is not None]
    for r in valid:
        ch = r["change"].get("model")
        r["converged"] = ch is not None and ch < cfg.change_threshold
    if not valid:
        verdict, since = "no valid checkpoints", None
    elif rows[-1]["valid"] is False and any("NaN" in e or "Inf" in e for e in rows[-1]["errors"]):
        verdict, since = "diverged (latest checkpoint has NaN/Inf)", None
    elif len(changes) < cfg.window:
        verdict, since = f"undetermined (need {cfg.window + 1} valid checkpoints, have {len(valid)})", None
    elif all(c < cfg.change_threshold for _, c in changes[-cfg.window :]):
        since = changes[-1][0]
        for s, c in reversed(changes):
            if c >= cfg.change_threshold:
                break
            since = s
        verdict = "converged"
    else:
        verdict, since = "not converged", None
    out = {"rule": rule, "verdict": verdict, "converged_since": since}
    out.update(_recommend(valid, cfg))
    return out


def _recommend(valid: list[dict], cfg: AnalyzeConfig) -> dict:
    if not valid:
        return {"recommended": None, "recommended_reason": "no valid checkpoint"}
    if cfg.eval_results:
        results = read_eval_results(cfg.eval_results, cfg.metric)
        for r in valid:
            if r["step"] in results:
                r[cfg.metric] = results[r["step"]]
        scored = [r for r in valid if r["step"] in results]
        if scored:
            sign = 1 if cfg.higher_is_better else -1
            best = max(scored, key=lambda r: (sign * results[r["step"]], r["step"]))
            how = "highest" if cfg.higher_is_better else "lowest"
            return {"recommended": best["step"], "recommended_path": best["path"], "recommended_reason": f"{how} {cfg.metric} = {results[best['step']]:.4g} among {len(scored)} evaluated checkpoints"}
        console.print("[yellow]warning[/]: no evaluation result matches a valid checkpoint step; falling back to convergence")
    converged = [r for r in valid if r.get("converged")]
    pick, why = (converged[-1], "latest converged checkpoint (no evaluation results given)") if converged else (valid[-1], "latest valid checkpoint (none has converged)")
    return {"recommended": pick["step"], "recommended_path": pick["path"], "recommended_reason": why}


def write_markdown(result: dict, out: Path) -> None:
    lines = [f"# {result.get('family', 'HRM')} run analysis: {result['run_dir']}", "", f"**Verdict:** {result['verdict']}" + (f" (since step {result['converged_since']})" if result["converged_since"] is not None else ""), "", f"Rule: {result['rule']}.", ""]
    lines += [f"**Recommended checkpoint:** step {result['recommended']} — {result['recommended_reason']}", ""]
    groups = sorted({g for r in result["checkpoints"] for g in r["norms"]})
    lines += ["| step | valid | change (model) | " + " | ".join(f"‖{g}‖" for g in groups) + " |", "|---" * (3 + len(groups)) + "|"]
    for r in result["checkpoints"]:
        ch = r["change"].get("model")
        cells = [str(r["step"]), "yes" if r["valid"] else "**no**", "-" if ch is None else f"{ch:.3e}"]
        cells += [f"{r['norms'][g]:.4g}" if g in r["norms"] else "-" for g in groups]
        lines.append("| " + " | ".join(cells) + " |")
    problems = [(r["step"], e) for r in result["checkpoints"] for e in r["errors"]]
    if problems:
        lines += ["", "## Problems", ""] + [f"- step {s}: {e}" for s, e in problems]
    lines += ["", "![weight norms](norms.png)", "", "![relative change](change.png)", ""]
    atomic_write_text(out / "analysis.md", "\n".join(lines))


def write_plots(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["checkpoints"] if r["norms"]]
    for name, key, ylabel, log in (("norms.png", "norms", "L2 norm", False), ("change.png", "change", "relative change vs previous", True)):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        groups = sorted({g for r in rows for g in r[key]})
        for g in groups:
            pts = [(r["step"], r[key][g]) for r in rows if g in r[key] and math.isfinite(r[key][g]) and (r[key][g] > 0 or not log)]
            if pts:
                style = {"color": "black", "linewidth": 2.5, "zorder": 3} if g == "model" else {"linewidth": 1.2}
                ax.plot(*zip(*pts), marker="o", label="model (all but puzzle_emb)" if g == "model" else g, **style)
        if key == "change":
            ax.axhline(result["threshold"], color="gray", linestyle="--", label="threshold")
        if log and any(line.get_label() != "threshold" for line in ax.lines):
            ax.set_yscale("log")
        if not ax.lines:
            ax.text(0.5, 0.5, "no data (fewer than two valid checkpoints)", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel} per tensor group")
        if ax.lines:
            ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        atomic_write(out / name, lambda p: fig.savefig(p, format="png", dpi=110))
        plt.close(fig)


def main(argv: list[str]) -> int:
    cfg = parse_command(AnalyzeConfig, argv, positional=("run_dir",), prog="tinyreason hrm analyze")
    result = analyze_run(cfg)
    result["threshold"] = cfg.change_threshold
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "analysis.json", result)
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    write_markdown(result, out)
    write_plots(result, out)
    console.print(f"{len(result['checkpoints'])} checkpoints: {result['verdict']}; recommended step {result['recommended']} ({result['recommended_reason']})")
    console.print(f"wrote {out / 'analysis.md'}, analysis.json, norms.png, change.png")
    if result["recommended"] is None:
        first = next((e for r in result["checkpoints"] for e in r["errors"]), "")
        raise UserError(f"no valid checkpoint in {cfg.run_dir} (first problem: {first})")
    return 0


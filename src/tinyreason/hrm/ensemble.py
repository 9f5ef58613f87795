"""`tinyreason hrm ensemble`: combine several HRM and/or TRM checkpoints and evaluate the ensemble.

    tinyreason hrm ensemble --checkpoints A B C --strategy average|vote|stack --data DATASET --out ens.json
        [--weights 0.5 0.3 0.2 | --fit-weights] [--fit-split train --fit-limit 512]
        [--stacker stacker.json (reuse) | --stacker-out stacker.json]

Strategies (member outputs are each member's final ACT step):
- average: per-token probabilities (under each member's own normaliser, stablemax or
  softmax) averaged with weights, given or fitted (EM) to maximise the likelihood of the
  labels on the fit split;
- vote: the whole answer given by most members; ties go to the answer whose supporters
  have the highest mean sigmoid(q_halt) (the official ARC tie-break);
- stack: logistic regression over member probabilities and Q values (`hrm.stacking`),
  fitted on the fit split (or loaded) and saved as JSON.
Ensemble Q = mean of members' q logits (vote: of the supporters); ACT steps = the sum over
members (the compute spent). Output: the eval JSON plus `members` and `comparison`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from tinyreason import dist
from tinyreason.config import parse_command
from tinyreason.device import pick_device
from tinyreason.errors import UserError
from tinyreason.hrm.eval_loop import detect_kind, labels_for, verify_rows
from tinyreason.hrm.evaluate import EvalOptions, build_report, evaluate_loaded, load_for_eval, open_data, show_and_save
from tinyreason.hrm.metrics import aggregate, example_metrics
from tinyreason.hrm.stacking import Stacker, fit_stacker
from tinyreason.runlog import console


class EnsembleConfig(EvalOptions):
    """Evaluate an ensemble of HRM and/or TRM checkpoints (sharing vocabulary and sequence length)."""

    checkpoints: list[str] = Field(..., min_length=2, description="two or more checkpoints (files, run folders, embedded:)")
    strategy: Literal["average", "vote", "stack"] = "average"
    weights: list[float] | None = Field(None, description="average: one weight per checkpoint (default equal)")
    fit_weights: bool = Field(False, description="average: fit the weights on the fit split instead")
    fit_split: Literal["train", "test"] = Field("train", description="held-out split for fitting weights / the stacker")
    fit_limit: int | None = Field(512, ge=1, description="examples of the fit split used")
    stacker: str | None = Field(None, description="stack: reuse this fitted stacker JSON instead of fitting")
    stacker_out: str | None = Field(None, description="stack: where to save the fitted stacker (default <out>.stacker.json)")


def average(probs: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Weighted mean of member distributions: (N, L, V)."""
    w = np.asarray(weights, dtype=np.float64)
    return sum(wi * p.astype(np.float64) for wi, p in zip(w / w.sum(), probs))


def fit_weights(probs: list[np.ndarray], labels: np.ndarray, iters: int = 200) -> np.ndarray:
    """Simplex weights maximising the likelihood of the labelled tokens under the mixture
    (EM for mixture weights: w_i <- mean over tokens of the responsibility of member i)."""
    mask = labels != -100
    if not mask.any():
        raise UserError("cannot fit ensemble weights: the fit split has no labelled tokens")
    idx = np.where(mask, labels, 0)[..., None]
    picked = np.stack([np.take_along_axis(p, idx, -1)[..., 0][mask] for p in probs]).astype(np.float64)  # (M, T)
    w = np.full(len(probs), 1.0 / len(probs))
    for _ in range(iters):
        resp = w[:, None] * picked
        resp /= np.clip(resp.sum(0, keepdims=True), 1e-300, None)
        w = resp.mean(1)
    return w


def vote(preds: list[np.ndarray], q_halt: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per example: the answer most members give, ties by mean sigmoid(q_halt) of its supporters.
    Returns the winning member index (N,) (a supporter of the winning answer) and the support mask (M, N)."""
    m, n = len(preds), len(preds[0])
    conf = [1 / (1 + np.exp(-np.asarray(q, dtype=np.float64))) for q in q_halt]
    winner = np.zeros(n, dtype=np.int64)
    support = np.zeros((m, n), dtype=bool)
    for j in range(n):
        groups: dict[bytes, list[int]] = {}
        for i in range(m):
            groups.setdefault(np.ascontiguousarray(preds[i][j]).tobytes(), []).append(i)
        best = max(groups.values(), key=lambda g: (len(g), float(np.mean([conf[i][j] for i in g]))))
        winner[j] = best[0]
        support[best, j] = True
    return winner, support


def combine(strategy: str, members: list[dict], weights: np.ndarray | None = None, stacker: Stacker | None = None) -> dict:
    """Ensemble probabilities (N, L, V), q logits (N,) and steps (N,) from members' per-example arrays."""
    probs = [m["probs"] for m in members]
    q_h = np.stack([m["q_halt_logits"] for m in members])  # (M, N)
    q_c = np.stack([m["q_continue_logits"] for m in members])
    out = {"steps": np.sum([m["steps"] for m in members], 0), "stable_step": np.sum([m["stable_step"] for m in members], 0),
           "q_halt_logits": q_h.mean(0), "q_continue_logits": q_c.mean(0)}
    if strategy == "average":
        out["probs"] = average(probs, np.ones(len(probs)) if weights is None else weights)
    elif strategy == "vote":
        _, support = vote([m["predictions"] for m in members], list(q_h))
        w = support[:, :, None, None].astype(np.float64)  # (M, N, 1, 1)
        out["probs"] = sum(w[i] * probs[i] for i in range(len(probs))) / w.sum(0)
        out["q_halt_logits"] = (support * q_h).sum(0) / support.sum(0)
        out["q_continue_logits"] = (support * q_c).sum(0) / support.sum(0)
    elif strategy == "stack":
        out["probs"] = stacker.probs(probs, list(q_h))
    else:
        raise UserError(f"unknown strategy '{strategy}'")
    return out


def ensemble_per_example(combined: dict, members: list[dict], inputs: np.ndarray, raw_labels: np.ndarray, labels: np.ndarray, kind: str) -> dict:
    """Per-example metric arrays of the ensemble (same keys as a single checkpoint's eval)."""
    logp = torch.from_numpy(np.log(np.clip(combined["probs"], 1e-12, None)))
    per = example_metrics(logp, torch.from_numpy(labels), torch.from_numpy(combined["q_halt_logits"]), "softmax_cross_entropy")
    preds = per.pop("predictions")
    per.update({k: combined[k] for k in ("steps", "stable_step", "q_halt_logits", "q_continue_logits")})
    per["example_index"] = members[0]["example_index"]
    per["time"] = np.sum([m["time"] for m in members], 0)
    per["solved"] = verify_rows(kind, inputs, preds, raw_labels, per["exact"])
    per["predictions"] = preds
    return per


def main(argv: list[str]) -> int:
    cfg = parse_command(EnsembleConfig, argv, prog="tinyreason hrm ensemble")
    info = dist.init(pick_device(cfg.device).type)
    try:
        loaded = [load_for_eval(ref, cfg) for ref in cfg.checkpoints]
        for ref, lc in zip(cfg.checkpoints[1:], loaded[1:]):
            a, b = loaded[0].config, lc.config
            if a.vocab_size != b.vocab_size or None not in (a.seq_len, b.seq_len) and a.seq_len != b.seq_len:
                raise UserError(f"{ref}: vocab_size/seq_len {b.vocab_size}/{b.seq_len} differ from {cfg.checkpoints[0]}'s {a.vocab_size}/{a.seq_len}")
        if cfg.weights is not None and len(cfg.weights) != len(loaded):
            raise UserError(f"--weights has {len(cfg.weights)} values for {len(loaded)} checkpoints")
        if cfg.weights is not None and (min(cfg.weights) < 0 or sum(cfg.weights) <= 0):
            raise UserError(f"--weights must be non-negative with a positive sum (got {cfg.weights})")
        data_path, data = open_data(cfg)
        keep = ("probs", "predictions")
        members = [evaluate_loaded(lc, data, cfg, keep) for lc in loaded]
        weights, stacker = _fit(cfg, loaded, keep, info.is_main)
        if not info.is_main:
            return 0
        rows = members[0]["example_index"].astype(np.int64)
        kind = detect_kind(data.metadata) if cfg.kind == "auto" else cfg.kind
        combined = combine(cfg.strategy, members, weights, stacker)
        per = ensemble_per_example(combined, members, np.asarray(data.inputs[rows]), np.asarray(data.labels[rows]), labels_for(data, rows), kind)
        report = build_report(per, loaded[0], data_path, data, cfg)
        report["checkpoint"] = {"strategy": cfg.strategy, "members": [str(lc.path) for lc in loaded],
                                "weights": None if weights is None else weights.tolist()}
        names = member_names(loaded)
        report["members"] = [{"name": n, "path": str(lc.path), "step": lc.step, "aggregate_metrics": aggregate(m, lc.config.halt_max_steps)}
                             for n, lc, m in zip(names, loaded, members)]
        table = {n: m["aggregate_metrics"] for n, m in zip(names, report["members"])}
        table[f"ensemble ({cfg.strategy})"] = report["aggregate_metrics"]
        report["comparison"] = table
        families = "+".join(sorted({lc.config.family for lc in loaded}))
        show_and_save(table, f"{families} ensemble on {data_path.name}/{cfg.split}", cfg.out, report)
        return 0
    finally:
        dist.cleanup()


def member_names(loaded: list) -> list[str]:
    """Short unique names: `<folder>/<file>`, numbered when two are the same."""
    names = [f"{lc.path.parent.name}/{lc.path.name}" for lc in loaded]
    return [f"{i}:{n}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def _fit(cfg: EnsembleConfig, loaded: list, keep: tuple[str, ...], is_main: bool) -> tuple[np.ndarray | None, Stacker | None]:
    """Weights (average) or stacker (stack), fitted on the fit split or loaded. The fit split is
    opened as the evaluation split is: of every `--data` folder, merged."""
    if cfg.strategy == "average" and cfg.weights is not None and not cfg.fit_weights:
        return np.asarray(cfg.weights, dtype=np.float64), None
    if cfg.strategy == "stack" and cfg.stacker:
        return None, Stacker.load(cfg.stacker)
    if not (cfg.strategy == "stack" or (cfg.strategy == "average" and cfg.fit_weights)):
        return None, None
    if cfg.fit_split == cfg.split:
        console.print(f"warning: fitting on the evaluation split '{cfg.split}': figures are optimistic")
    fit_cfg = cfg.model_copy(update={"split": cfg.fit_split, "limit": cfg.fit_limit})
    _, fit_data = open_data(fit_cfg)
    outs = [evaluate_loaded(lc, fit_data, fit_cfg, keep) for lc in loaded]
    labels = labels_for(fit_data, outs[0]["example_index"].astype(np.int64))
    probs = [o["probs"] for o in outs]
    if cfg.strategy == "average":
        w = fit_weights(probs, labels)
        console.print(f"fitted weights on {cfg.fit_split} ({len(labels)} examples): {np.round(w, 3).tolist()}")
        return w, None
    meta = {"members": [str(lc.path) for lc in loaded], "vocab_size": loaded[0].config.vocab_size,
            "fit_split": cfg.fit_split, "fit_examples": len(labels), "dataset": cfg.data}
    stacker = fit_stacker(probs, [o["q_halt_logits"] for o in outs], labels, meta=meta)
    path = cfg.stacker_out or (f"{cfg.out}.stacker.json" if cfg.out else None)
    if path and is_main:
        stacker.save(path)
        console.print(f"stacker: {path} (reuse with --stacker)")
    return None, stacker

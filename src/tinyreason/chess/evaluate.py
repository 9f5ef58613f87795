"""`tinyreason chess eval`: policy, environment and mate-in-one metrics of a RookWorld LM.

    tinyreason chess eval --model embedded:rookworld-tiny --data held_out.txt --out results.json
    tinyreason chess eval --model jrahn/RookWorld-LM-124M --data rook_val_400.txt --device cuda \
        --mate-in-one mates.txt --temperature 0.7 --seed 1

Completions come from the batched KV-cache sampler (`tinyreason.lm.sampler`), greedy by
default; they are scored by `tinyreason.chess.eval_metrics` (pure functions of prompt,
reference and completion). The mean centipawn loss of the chosen moves needs Stockfish
(through `tinyreason.chess.engine.EnginePool`); without one it is reported as null with
the reason. Results go to one JSON file (written atomically) and a table on the console.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator

from tinyreason import kernels
from tinyreason.chess import eval_metrics as em
from tinyreason.chess.data import Sample, load_samples
from tinyreason.chess.rewards import CP_CLIP  # evals clipped to +-10 pawns before differencing
from tinyreason.config import StrictModel, parse_command
from tinyreason.device import DeviceName, DtypeName, pick_device, pick_dtype
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_json, atomic_write_text
from tinyreason.runguard import refuse_same
from tinyreason.runlog import console, make_progress


class EvalConfig(StrictModel):
    """Evaluate a RookWorld LM (policy, environment and mate-in-one tasks)."""

    model: str = Field(description="model folder, Hub id or embedded:<name>")
    data: str | None = Field(None, description="RookWorld samples (.txt/.jsonl/.parquet, folder or Hub dataset)")
    split: str | None = Field(None, description="split of a folder/Hub dataset (train/test)")
    mate_in_one: str | None = Field(None, description="mate-in-one set (policy samples; `chess datagen --mate-in-one`)")
    out: str = Field("results.json", description="JSON results file")
    records: str | None = Field(None, description="optional JSONL file with every prompt, completion and score")
    limit: int | None = Field(None, ge=1, description="first N samples of each set")
    prompt_format: Literal["as_is", "compact", "padded"] = Field(
        "as_is", description="rewrite policy prompts to the layout the model was trained on")
    batch_size: int = Field(32, ge=1, description="prompts per generation batch")
    greedy: bool = Field(False, description="greedy decoding (same as temperature=0)")
    temperature: float = Field(0.0, ge=0, description="sampling temperature; 0 is greedy")
    top_k: int = Field(0, ge=0, description="top-k filter when sampling (0: off)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus filter when sampling")
    max_new_tokens: int = Field(128, ge=1, description="generation cap per completion")
    seed: int = Field(0, description="sampling seed")
    device: DeviceName = "auto"
    dtype: DtypeName = Field("float32", description="weights/compute dtype for generation (bfloat16 is faster on CPUs with a bf16 GEMM)")
    cp_loss: bool = Field(True, description="live Stockfish centipawn loss of the chosen moves")
    stockfish: str | None = Field(None, description="Stockfish binary (default: $STOCKFISH, PATH, /usr/games)")
    engine_nodes: int = Field(20000, ge=1, description="node limit per engine analysis")
    engine_workers: int = Field(2, ge=1, description="Stockfish processes for the centipawn loss")
    show: int = Field(3, ge=0, description="example completions printed per task")
    reward_weights: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="per task, over rewards.DEFAULT_WEIGHTS (as in chess grpo)")
    kernels: Literal["auto", "off"] | None = Field(None, description=kernels.HELP)

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        if self.data is None and self.mate_in_one is None:
            raise ValueError("nothing to evaluate: give --data and/or --mate-in-one")
        if self.greedy and self.temperature > 0:
            raise ValueError("--greedy contradicts temperature > 0")
        from tinyreason.chess.rewards import DEFAULT_WEIGHTS

        for task, weights in self.reward_weights.items():
            if task not in DEFAULT_WEIGHTS or set(weights) - set(DEFAULT_WEIGHTS[task]):
                raise ValueError(f"reward_weights.{task}: unknown task or reward (have {DEFAULT_WEIGHTS})")
        return self


def reformat(samples: list[Sample], layout: str) -> list[Sample]:
    """Policy prompts in the `compact` (`P: fen `) or `padded` (FEN to 90 columns) layout.

    Lets a model trained on one layout be scored on data written in the other (the embedded
    model is compact; rook_val_400 is padded). Env prompts are the same in both.
    """
    if layout == "as_is":
        return samples
    from tinyreason.chess.formats import parse_policy, policy_prompt

    out = []
    for s in samples:
        fen = parse_policy("", fen=s.prompt).fen if s.task == "policy" else None
        out.append(Sample(s.task, policy_prompt(fen, compact=layout == "compact"), s.completion) if fen else s)
    return out


def generate(model, tokenizer, prompts: Sequence[str], cfg: EvalConfig) -> list[str]:
    """Completions of `prompts` in batches of similar length, stopping at EOS or a newline."""
    from tinyreason.lm.sampler import decode_completions, sample, stop_token_ids

    try:  # samples end at EOS; models trained on raw text lines end them with a newline
        stop_strings: tuple[str, ...] = ("\n",)
        stops = stop_token_ids(tokenizer, stop_strings)
    except UserError:  # a character vocabulary without a newline
        stop_strings, stops = (), stop_token_ids(tokenizer)
    encoded = [tokenizer(p).input_ids for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    temperature = 0.0 if cfg.greedy else cfg.temperature
    n_pos = model.config.n_positions
    out = [""] * len(prompts)
    model.eval()
    with make_progress() as bar:
        task = bar.add_task("generate", total=len(prompts), info="")
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            batch = [encoded[i] for i in idx]
            longest = max(len(b) for b in batch)
            if longest >= n_pos:
                raise UserError(f"a prompt has {longest} tokens, more than the model's {n_pos} positions")
            roll = sample(model, batch, 1, min(cfg.max_new_tokens, n_pos - longest), temperature=temperature,
                          top_k=cfg.top_k, top_p=cfg.top_p, stop_ids=stops, pad_id=tokenizer.pad_token_id,
                          dtype=next(model.parameters()).dtype, generator=gen)
            for i, text in zip(idx, decode_completions(tokenizer, roll, stop_strings)):
                out[i] = text
            bar.update(task, advance=len(idx))
    return out


def add_cp_loss(records: list[em.PolicyRecord], cfg: EvalConfig) -> str | None:
    """Fill `cp_loss` of legal chosen moves with live Stockfish; returns why not, if it cannot."""
    if not cfg.cp_loss:
        return "disabled (cp_loss=false)"
    todo = [r for r in records if r.best_legal and r.fen]
    if not todo:
        return "no legal chosen move to evaluate"
    from tinyreason.chess.engine import EnginePool, find_stockfish

    try:
        path = find_stockfish(cfg.stockfish)
    except UserError as e:
        return f"no engine: {e}"
    with EnginePool(path, size=cfg.engine_workers, nodes=cfg.engine_nodes) as pool:
        def one(rec: em.PolicyRecord) -> None:
            rec.cp_loss = pool.cp_loss(rec.fen, rec.chosen, clip=CP_CLIP)  # type: ignore[arg-type]

        with ThreadPoolExecutor(cfg.engine_workers) as ex:
            list(ex.map(one, todo))
    return None


def score(samples: Sequence[Sample], completions: Sequence[str]) -> tuple[list, list]:
    """(policy records, env records) in sample order (see `eval_metrics`)."""
    pol, env = [], []
    for s, c in zip(samples, completions):
        if s.task == "policy":
            pol.append(em.score_policy(s.prompt, s.completion, c))
        else:
            env.append(em.score_env(s.prompt, c))
    return pol, env


def mean_rewards(samples: Sequence[Sample], completions: Sequence[str], cfg: EvalConfig) -> dict[str, float]:
    """Mean weighted GRPO reward (`rewards.score`) per task, with the config's weights over the defaults."""
    from tinyreason.chess.rewards import DEFAULT_WEIGHTS, score as reward_score

    out = {}
    for task in ("policy", "env"):
        idx = [i for i, s in enumerate(samples) if s.task == task]
        if not idx:
            continue
        weights = {**DEFAULT_WEIGHTS[task], **cfg.reward_weights.get(task, {})}
        total, _ = reward_score(task, [samples[i].prompt for i in idx], [completions[i] for i in idx],
                                [samples[i].completion for i in idx], weights)
        out[task] = sum(total) / len(total)
    return out


def evaluate(model, tokenizer, cfg: EvalConfig) -> tuple[dict, list[dict]]:
    """Run every requested set; returns (results, per-sample records)."""
    results: dict = {"model": cfg.model, "config": cfg.model_dump(mode="json")}
    rows: list[dict] = []
    if cfg.data is not None:
        samples = reformat(load_samples(cfg.data, cfg.split, cfg.limit), cfg.prompt_format)
        t0 = time.perf_counter()
        completions = generate(model, tokenizer, [s.prompt for s in samples], cfg)
        results["generation_seconds"] = round(time.perf_counter() - t0, 2)
        pol, env = score(samples, completions)
        rewards = mean_rewards(samples, completions, cfg)
        if pol:
            reason = add_cp_loss(pol, cfg)
            results["policy"] = {**em.summarize_policy(pol), "mean_reward": rewards["policy"], "cp_loss_note": reason}
        if env:
            results["env"] = {**em.summarize_env(env), "mean_reward": rewards["env"]}
        recs = iter(pol), iter(env)
        for s, c in zip(samples, completions):
            rec = next(recs[0] if s.task == "policy" else recs[1])
            rows.append({"set": "data", "task": s.task, "prompt": s.prompt, "reference": s.completion,
                         "completion": c, **em.as_dict(rec)})
    if cfg.mate_in_one is not None:
        mates = reformat(load_samples(cfg.mate_in_one, None, cfg.limit), cfg.prompt_format)
        if any(s.task != "policy" for s in mates):
            raise UserError(f"{cfg.mate_in_one}: a mate-in-one set holds policy (P:) samples only")
        completions = generate(model, tokenizer, [s.prompt for s in mates], cfg)
        mrecs = [em.score_mate_in_one(s.prompt, c) for s, c in zip(mates, completions)]
        results["mate_in_one"] = em.summarize_mate(mrecs)
        rows += [{"set": "mate_in_one", "task": "policy", "prompt": s.prompt, "reference": s.completion,
                  "completion": c, **em.as_dict(r)} for s, c, r in zip(mates, completions, mrecs)]
    return results, rows


def print_table(results: dict, rows: list[dict], show: int = 3) -> None:
    from rich.table import Table

    table = Table(title=f"chess eval: {results['model']}")
    table.add_column("task")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for task in ("policy", "env", "mate_in_one"):
        for key, value in results.get(task, {}).items():
            if key == "cp_loss_note" and value is None:
                continue
            if value is None or isinstance(value, str):
                value = "n/a" if value is None else value
            elif isinstance(value, float):
                value = f"{value:.3f}" if key in ("mean_cp_loss", "eval_mae", "mean_reward") else f"{value:.1%}"
            table.add_row(task, key, str(value))
    console.print(table)
    for task in ("policy", "env"):
        for r in [r for r in rows if r["task"] == task and r["set"] == "data"][:show]:
            console.print(f"[dim]{task}[/] {r['prompt'].rstrip()} [cyan]->[/] {r['completion']!r}", markup=True,
                          highlight=False)


def check_outputs(cfg: EvalConfig) -> None:
    """--out and --records must differ from each other and from every input (data, model files)."""
    inputs: dict[str, str | Path | None] = {"--data": cfg.data, "--mate-in-one": cfg.mate_in_one}
    model = Path(cfg.model)
    if model.is_dir():
        inputs.update({f"the model's {p.name}": p for p in model.iterdir()})
    elif model.is_file():
        inputs["--model"] = model
    refuse_same(cfg.out, "--out", {**inputs, "--records": cfg.records})
    refuse_same(cfg.records, "--records", inputs)


def main(argv: list[str]) -> int:
    cfg = parse_command(EvalConfig, argv, prog="tinyreason chess eval")
    check_outputs(cfg)
    from tinyreason.lm.model import load_model

    torch.manual_seed(cfg.seed)
    pick_dtype(cfg.dtype)  # weights in this dtype: the sampler then runs without a per-batch copy
    model, tokenizer = load_model(cfg.model, device=str(pick_device(cfg.device)), dtype=cfg.dtype)
    with kernels.use(cfg.kernels):
        results, rows = evaluate(model, tokenizer, cfg)
    atomic_write_json(Path(cfg.out), results)
    if cfg.records:
        import json

        atomic_write_text(cfg.records, "".join(json.dumps(r) + "\n" for r in rows))
    print_table(results, rows, cfg.show)
    console.print(f"results written to {cfg.out}")
    return 0

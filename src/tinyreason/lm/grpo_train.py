"""`tinyreason chess grpo`: GRPO fine-tuning of a GPT-2 RookWorld model with verifiable rewards.

One step, top to bottom: draw prompts (policy:env mix) -> sample G completions each ->
score them (tinyreason.chess.rewards.score against the dataset reference) -> group
advantages -> old log-probs (only when num_iterations > 1) and reference log-probs
(only when beta > 0) -> num_iterations optimizer updates -> metrics, samples, eval,
checkpoint, safety checks.

Departures from TRL's GRPOTrainer: dropout is always off (TRL's `disable_dropout=True`,
which is opt-in there); position ids follow the attention mask so left-padded prompts are
exact; gradients are all-reduced by hand (one flat bucket) instead of a DDP wrapper;
each rank samples its own groups and computes their advantages ("batch" scaling uses the
std over all ranks).
"""

from __future__ import annotations

import json
import math
import time
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from tinyreason import dist
from tinyreason.chess.data import Sample, load_samples
from tinyreason.chess.rewards import DEFAULT_WEIGHTS, score
from tinyreason.config import StrictModel, parse_command
from tinyreason.device import autocast, pick_device, pick_dtype
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_json
from tinyreason.lm import grpo, mfu
from tinyreason.lm.curves import plot_curves
from tinyreason.lm.heldout import evaluate_heldout
from tinyreason.lm.model import count_params, load_model
from tinyreason.lm.sampler import decode_completions, sample, stop_token_ids
from tinyreason.lm.state import latest_checkpoint, load_state, load_weights, rng_state, save_checkpoint, set_rng_state, truncate_jsonl
from tinyreason.runlog import RunDir, console


class SamplingConfig(StrictModel):
    max_new_tokens: int = Field(96, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_k: int = Field(0, ge=0, description="0 = off")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop_strings: list[str] = Field(default_factory=lambda: ["\n"], description="EOS always stops")


class SafetyConfig(StrictModel):
    kl_max: float = Field(1.0, description="mean per-token KL to the reference counted as diverging")
    kl_patience: int = Field(3, ge=1, description="consecutive diverging steps that stop the run")
    grad_norm_max: float = Field(1000.0, description="pre-clip gradient norm that stops the run")


class GRPOTrainConfig(StrictModel):
    """GRPO fine-tuning of a GPT-2 RookWorld model on policy and environment prompts."""

    model: str = Field("jrahn/RookWorld-LM-124M", description="folder, Hub id or embedded:<name>")
    ref_model: str | None = Field(None, description="frozen KL reference (default: model); not loaded when beta=0")
    train_data: list[str] = Field(default_factory=lambda: ["jrahn/rookworld_7m"])
    train_split: str | None = "train"
    train_limit: int | None = None
    eval_data: list[str] = Field(default_factory=list)
    eval_split: str | None = "test"
    eval_limit: int = 64
    task_ratio: str = Field("1:1", description="policy:env prompt ratio, e.g. 3:1 or 1:0")
    group_size: int = Field(8, ge=2)
    prompts_per_step: int = Field(4, ge=1, description="prompts (groups) per step per rank")
    micro_batch_size: int = Field(16, ge=1, description="sequences per forward/backward")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    lr: float = 1e-6
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.99)
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    max_grad_norm: float = 1.0
    num_iterations: int = Field(1, ge=1, description="updates per batch of rollouts (mu)")
    beta: float = Field(0.04, ge=0.0, description="KL coefficient; 0 loads no reference model")
    epsilon: float = 0.2
    epsilon_high: float | None = Field(None, description="upper clip (clip-higher); default epsilon")
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    mask_truncated_completions: bool = True
    zero_std_weight: float = Field(1.0, ge=0.0, description="loss weight of tied groups: 1 keep (TRL), 0 skip")
    entropy_coef: float = 0.0
    reward_weights: dict[str, dict[str, float]] = Field(default_factory=dict, description="per task, over the defaults")
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    max_steps: int = Field(100, ge=1)
    time_budget_min: float | None = None
    eval_every: int = 50
    eval_max_new_tokens: int = 128
    save_every: int = 50
    keep_checkpoints: int = 2
    log_samples_every: int = 10
    log_samples: int = 4
    run_dir: str = "runs/grpo"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "bfloat16"] = "float32"
    seed: int = 0
    resume: bool = False
    tensorboard: bool = False
    wandb: bool = False

    @field_validator("task_ratio")
    @classmethod
    def _ratio(cls, v: str) -> str:
        parse_ratio(v)
        return v


def parse_ratio(text: str) -> Fraction:
    """Policy share of a 'policy:env' ratio."""
    try:
        p, e = (Fraction(x.strip()).limit_denominator(1000) for x in text.split(":"))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"task_ratio must be 'policy:env' like 1:1, got {text!r}") from None
    if p < 0 or e < 0 or p + e == 0:
        raise ValueError(f"task_ratio needs non-negative parts, not both 0: {text!r}")
    return p / (p + e)


class TaskMixer:
    """Prompts for a step as a pure function of (step, rank): resuming needs only the step.

    Global prompt k goes to policy when floor((k+1)f) > floor(kf) (f = policy share), so
    the mix is exact over any window; each task walks its own reshuffled epochs.
    """

    def __init__(self, pools: dict[str, list[Sample]], policy_share: Fraction, seed: int):
        self.pools, self.f, self.seed = pools, policy_share, seed
        for task, share in (("policy", policy_share), ("env", 1 - policy_share)):
            if share > 0 and not pools.get(task):
                raise UserError(f"task_ratio asks for {task} prompts but the training data has none")
        self._perm: dict[tuple[str, int], np.ndarray] = {}

    def _item(self, task: str, i: int) -> Sample:
        pool = self.pools[task]
        epoch, j = divmod(i, len(pool))
        key = (task, epoch)
        if key not in self._perm:
            self._perm = {key: np.random.default_rng([self.seed, epoch, task == "env"]).permutation(len(pool))}
        return pool[int(self._perm[key][j])]

    def at(self, k: int) -> Sample:
        n_pol = math.floor(k * self.f)
        if math.floor((k + 1) * self.f) > n_pol:
            return self._item("policy", n_pol)
        return self._item("env", k - n_pol)

    def batch(self, step: int, n: int, rank: int, world: int) -> list[Sample]:
        base = ((step - 1) * world + rank) * n
        return [self.at(base + j) for j in range(n)]

    def position(self, step: int, n: int, world: int) -> dict[str, int]:
        k = step * world * n
        return {"prompts_drawn": k, "policy_drawn": math.floor(k * self.f), "env_drawn": k - math.floor(k * self.f)}


def lr_lambda(cfg: GRPOTrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        frac = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
        decay = 1 - frac if cfg.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * frac))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * decay
    return f


def load_pools(refs: list[str], split: str | None, limit: int | None) -> dict[str, list[Sample]]:
    pools: dict[str, list[Sample]] = {"policy": [], "env": []}
    for ref in refs:
        for s in load_samples(ref, split=split, limit=limit):
            pools[s.task].append(s)
    return pools


def reward_weights(cfg: GRPOTrainConfig) -> dict[str, dict[str, float]]:
    out = {task: dict(w) for task, w in DEFAULT_WEIGHTS.items()}
    for task, w in cfg.reward_weights.items():
        if task not in out:
            raise UserError(f"reward_weights: unknown task '{task}' (policy or env)")
        unknown = set(w) - set(out[task])
        if unknown:
            raise UserError(f"reward_weights.{task}: unknown reward(s) {sorted(unknown)} (have {sorted(out[task])})")
        out[task].update(w)
    return out


def score_rows(batch: list[Sample], completions: list[str], g: int, weights) -> tuple[list[float], list[dict[str, float]]]:
    """Total reward and components per row (row r answers batch[r // g]), one score() call per task."""
    totals: list[float] = [0.0] * len(completions)
    parts: list[dict[str, float]] = [{} for _ in completions]
    for task in ("policy", "env"):
        rows = [r for r in range(len(completions)) if batch[r // g].task == task]
        if not rows:
            continue
        tot, comps = score(task, [batch[r // g].prompt for r in rows], [completions[r] for r in rows],
                           [batch[r // g].completion for r in rows], weights[task])
        for i, r in enumerate(rows):
            totals[r] = float(tot[i])
            parts[r] = {name: float(vals[i]) for name, vals in comps.items()}
    return totals, parts


def chunked_logprobs(model, ids, attn, t: int, cfg, mb: int, dev, dtype) -> torch.Tensor:
    """Log-probs (N, T) without grad, micro-batched."""
    out = []
    with torch.no_grad(), autocast(dev, dtype):
        for s in range(0, ids.shape[0], mb):
            lp, _ = grpo.completion_logprobs(model, ids[s:s + mb], attn[s:s + mb], t, cfg.sampling.temperature)
            out.append(lp)
    return torch.cat(out)  # (N, T)


def allreduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Average gradients over ranks in one flat bucket (no-op in one process)."""
    if not torch.distributed.is_initialized():
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce_mean(flat)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def stop_run(run: RunDir, reason: str, detail: str, step: int, last_ckpt: Path | None) -> None:
    record = {"reason": reason, "detail": detail, "step": step, "last_good_checkpoint": str(last_ckpt) if last_ckpt else None}
    if run.is_main:
        atomic_write_json(run.path / "stop_reason.json", record)
        console.print(f"[bold red]stopped at step {step}: {reason}[/] ({detail}); last good checkpoint: {record['last_good_checkpoint']}")


def main(argv: list[str]) -> int:
    cfg = parse_command(GRPOTrainConfig, argv, prog="tinyreason chess grpo")
    device = pick_device(cfg.device)
    info = dist.init(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
    amp = pick_dtype(cfg.dtype)
    run = RunDir(cfg.run_dir, info.is_main)
    g, n_prompts, t_new = cfg.group_size, cfg.prompts_per_step, cfg.sampling.max_new_tokens

    # --- models, data, optimizer -------------------------------------------------------
    torch.manual_seed(cfg.seed + info.rank)
    np.random.seed(cfg.seed + info.rank)
    model, tok = load_model(cfg.model, str(device), "float32")
    model.eval()  # dropout off for the whole run (as TRL disable_dropout=True); grads still flow
    ref_model = None
    if cfg.beta != 0.0:
        ref_model, _ = load_model(cfg.ref_model or cfg.model, str(device), "float32")
        ref_model.eval().requires_grad_(False)
    pools = load_pools(cfg.train_data, cfg.train_split, cfg.train_limit)
    mixer = TaskMixer(pools, parse_ratio(cfg.task_ratio), cfg.seed)
    heldout = [s for ref in cfg.eval_data for s in load_samples(ref, split=cfg.eval_split, limit=cfg.eval_limit)][: cfg.eval_limit]
    weights = reward_weights(cfg)
    stops = stop_token_ids(tok, cfg.sampling.stop_strings)
    prompt_ids: dict[str, list[int]] = {}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    n_params = count_params(model)
    peak, peak_src = mfu.peak_flops(device, amp)

    # --- resume ------------------------------------------------------------------------
    start, kl_streak, last_ckpt = 0, 0, None
    if cfg.resume and (ckpt := latest_checkpoint(run.path)) is not None:
        state = load_state(ckpt)
        if len(state["rng"]) != info.world_size:
            raise UserError(f"checkpoint {ckpt} was written by {len(state['rng'])} ranks, this run has {info.world_size}")
        load_weights(model, ckpt)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"][info.rank])
        start, kl_streak, last_ckpt = state["step"], state["kl_streak"], ckpt
        run.truncate_after(start)
        if run.is_main:
            truncate_jsonl(run.path / "samples.jsonl", start)
        if info.is_main:
            console.print(f"resumed from {ckpt} (step {start})")
    elif cfg.resume and info.is_main:
        console.print(f"--resume: no checkpoint in {run.path}/checkpoints, starting fresh")
    run.write_config(cfg)
    writer = _trackers(cfg, run) if info.is_main else None
    if info.is_main:
        console.print(f"GRPO: {n_params / 1e6:.1f}M params on {device} ({cfg.dtype}), {len(pools['policy'])} policy / "
                      f"{len(pools['env'])} env prompts, {g} x {n_prompts} x {info.world_size} completions per step")

    t_start, stop = time.perf_counter(), None
    step = start
    for step in range(start + 1, cfg.max_steps + 1):
        t0 = time.perf_counter()
        # 1. prompts and rollouts
        batch = mixer.batch(step, n_prompts, info.rank, info.world_size)
        ids = [prompt_ids.setdefault(s.prompt, tok(s.prompt).input_ids) for s in batch]
        roll = sample(model, ids, g, t_new, cfg.sampling.temperature, cfg.sampling.top_k, cfg.sampling.top_p,
                      stop_ids=stops, pad_id=tok.pad_token_id, dtype=amp)
        t1 = time.perf_counter()
        # 2. rewards
        completions = decode_completions(tok, roll, cfg.sampling.stop_strings)
        rewards_l, parts = score_rows(batch, completions, g, weights)
        rewards = torch.tensor(rewards_l, dtype=torch.float32, device=device)  # (N,)
        t2 = time.perf_counter()
        # 3. advantages and token weights
        adv, zero_std = grpo.group_advantages(rewards, g, "none" if cfg.scale_rewards == "batch" else cfg.scale_rewards)
        if cfg.scale_rewards == "batch":  # std over every rank's rewards
            all_r = torch.tensor(sum(dist.all_gather_objects(rewards_l), []))
            adv = adv / (all_r.std().item() + 1e-4)
        w = grpo.token_weights(roll.completion_mask, roll.truncated, zero_std, g,
                               cfg.mask_truncated_completions, cfg.zero_std_weight)  # (N, T)
        full_ids = torch.cat([roll.prompt_ids, roll.completion_ids], 1)  # (N, P+T)
        full_mask = torch.cat([roll.prompt_mask, roll.completion_mask], 1)  # (N, P+T)
        t_len = roll.completion_ids.shape[1]
        # 4. old and reference log-probs
        old_lp = chunked_logprobs(model, full_ids, full_mask, t_len, cfg, cfg.micro_batch_size, device, amp) \
            if cfg.num_iterations > 1 else None
        ref_lp = chunked_logprobs(ref_model, full_ids, full_mask, t_len, cfg, cfg.micro_batch_size, device, amp) \
            if ref_model is not None else None
        t3 = time.perf_counter()
        # 5. updates (normalisers global so micro-batches and ranks add up to the batch loss)
        n_rows = full_ids.shape[0]
        n_tok = dist.all_reduce_mean(w.sum().reshape(1).clone())[0].clamp(min=1.0).item()
        sums = {"loss": 0.0, "tokens": 0.0, "clip_low": 0.0, "clip_high": 0.0, "kl": 0.0, "entropy": 0.0}
        grad_norm = 0.0
        for _ in range(cfg.num_iterations):
            optimizer.zero_grad(set_to_none=True)
            for s in range(0, n_rows, cfg.micro_batch_size):
                sl = slice(s, s + cfg.micro_batch_size)
                with autocast(device, amp):
                    lp, ent = grpo.completion_logprobs(model, full_ids[sl], full_mask[sl], t_len,
                                                       cfg.sampling.temperature, with_entropy=True,
                                                       entropy_grad=cfg.entropy_coef != 0.0)
                loss, st = grpo.grpo_loss(
                    lp, adv[sl], w[sl], old_logp=None if old_lp is None else old_lp[sl],
                    ref_logp=None if ref_lp is None else ref_lp[sl], beta=cfg.beta, epsilon=cfg.epsilon,
                    epsilon_high=cfg.epsilon_high, loss_type=cfg.loss_type, max_completion_length=t_new,
                    entropy=ent, entropy_coef=cfg.entropy_coef, num_seqs=n_rows, num_tokens=n_tok)
                loss.backward()
                sums["loss"] += loss.item() / cfg.num_iterations
                for k, v in st.items():
                    sums[k] += v.item() / cfg.num_iterations
            allreduce_grads(params)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm).item()
            if not (math.isfinite(sums["loss"]) and math.isfinite(grad_norm)):
                stop = ("nonfinite", f"loss {sums['loss']}, grad norm {grad_norm}")
                break
            if grad_norm > cfg.safety.grad_norm_max:
                stop = ("grad_norm_explosion", f"grad norm {grad_norm:.3g} > {cfg.safety.grad_norm_max}")
                break
            optimizer.step()
        lr_now = scheduler.get_last_lr()[0]
        if stop is None:
            scheduler.step()
        t4 = time.perf_counter()

        # 6. metrics (gathered from every rank; rank 0 logs)
        local = {"rewards": rewards_l, "parts": parts, "tasks": [batch[r // g].task for r in range(n_rows)],
                 "zero_std": zero_std.tolist(), "lengths": roll.lengths.tolist(), "truncated": roll.truncated.tolist(),
                 "sums": sums, "prompt_tokens": int(roll.prompt_mask[::g].sum()), "update_tokens": int(full_mask.sum())}
        gathered = dist.all_gather_objects(local)
        rec = _step_metrics(gathered, step, lr_now, grad_norm, cfg, [t0, t1, t2, t3, t4], n_params, peak, device)
        kl_streak = kl_streak + 1 if cfg.beta != 0 and rec["kl"] > cfg.safety.kl_max else 0
        if stop is None and kl_streak >= cfg.safety.kl_patience:
            stop = ("kl_divergence", f"KL {rec['kl']:.3g} > {cfg.safety.kl_max} for {kl_streak} consecutive steps")
        run.log(rec)
        if writer is not None:
            writer(rec)
        if info.is_main and cfg.log_samples_every and step % cfg.log_samples_every == 0:
            _log_samples(run, step, batch, completions, rewards_l, parts, adv.tolist(), g, cfg.log_samples)
        if info.is_main and (step % 10 == 0 or step == start + 1):
            console.print(f"step {step}: reward {rec['reward_mean']:.3f}  kl {rec['kl']:.4f}  loss {rec['loss']:.4f}  "
                          f"len {rec['completion_len_mean']:.1f}  {rec['time_step']:.2f}s")
        if stop is not None:
            break
        # 7. eval, checkpoint, budget
        if heldout and cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            if info.is_main:
                ev = evaluate_heldout(model, tok, heldout, cfg.eval_max_new_tokens, cfg.micro_batch_size * 2, amp)
                run.log({"step": step, **{f"eval/{k}": v for k, v in ev.items()}})
            dist.barrier()
        out_of_time = cfg.time_budget_min is not None and time.perf_counter() - t_start > 60 * cfg.time_budget_min
        if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.max_steps or out_of_time:
            rngs = dist.all_gather_objects(rng_state())
            if info.is_main:
                last_ckpt = save_checkpoint(run.path, step, model, tok, {
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rngs,
                    "kl_streak": kl_streak, "data_position": mixer.position(step, n_prompts, info.world_size)},
                    keep=cfg.keep_checkpoints)
            dist.barrier()
        if out_of_time:
            stop = ("time_budget", f"{cfg.time_budget_min} min reached")
            break

    if stop is not None:
        stop_run(run, stop[0], stop[1], step, last_ckpt or latest_checkpoint(run.path))
    if info.is_main:
        plot_curves(run.path, ["reward_mean", "kl", "entropy", "completion_len_mean", "eval/policy_legal_rate",
                               "eval/env_fen_exact_rate"],
                    title=f"GRPO {Path(cfg.run_dir).name}")
    dist.cleanup()
    return 1 if stop is not None and stop[0] not in ("time_budget",) else 0


def _step_metrics(gathered, step, lr, grad_norm, cfg, t, n_params, peak, device) -> dict:
    rewards = np.array([r for d in gathered for r in d["rewards"]], dtype=np.float64)
    tasks = [x for d in gathered for x in d["tasks"]]
    parts = [p for d in gathered for p in d["parts"]]
    lengths = np.array([x for d in gathered for x in d["lengths"]], dtype=np.float64)
    sums = {k: sum(d["sums"][k] for d in gathered) for k in gathered[0]["sums"]}
    tokens = max(sums["tokens"], 1.0)
    world = len(gathered)
    gen_tokens = float(lengths.sum())
    prompt_tokens = sum(d["prompt_tokens"] for d in gathered)
    upd_tokens = sum(d["update_tokens"] for d in gathered)
    t_roll, t_reward, t_ref, t_upd, t_step = t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3], t[4] - t[0]
    infer_flops = 2 * n_params * (gen_tokens + prompt_tokens + (upd_tokens if cfg.beta else 0) +
                                  (upd_tokens if cfg.num_iterations > 1 else 0))
    train_flops = 6 * n_params * upd_tokens * cfg.num_iterations
    rec = {
        "step": step,
        "loss": sums["loss"] / world,
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std(ddof=1)) if len(rewards) > 1 else 0.0,
        "frac_zero_std": float(np.mean([z for d in gathered for z in d["zero_std"]])),
        "kl": sums["kl"] / tokens,
        "clip_low": sums["clip_low"] / tokens,
        "clip_high": sums["clip_high"] / tokens,
        "clip_ratio": (sums["clip_low"] + sums["clip_high"]) / tokens,
        "entropy": sums["entropy"] / tokens,
        "completion_len_mean": float(lengths.mean()),
        "completion_len_min": float(lengths.min()),
        "completion_len_max": float(lengths.max()),
        "frac_truncated": float(np.mean([x for d in gathered for x in d["truncated"]])),
        "grad_norm": grad_norm,
        "lr": lr,
        "rollout_tok_s": gen_tokens / max(t_roll, 1e-9),
        "update_tok_s": upd_tokens * cfg.num_iterations / max(t_upd, 1e-9),
        "time_rollout": t_roll, "time_reward": t_reward, "time_ref_old": t_ref, "time_update": t_upd, "time_step": t_step,
        "peak_mem_mb": mfu.peak_memory_mb(device),
        "mfu_rollout": mfu.mfu(2 * n_params * (gen_tokens + prompt_tokens), t_roll * world, peak),
        "mfu_update": mfu.mfu(train_flops, t_upd * world, peak),
        "mfu": mfu.mfu(infer_flops + train_flops, t_step * world, peak),
    }
    for task in ("policy", "env"):
        idx = [i for i, x in enumerate(tasks) if x == task]
        if not idx:
            continue
        rec[f"reward/{task}/mean"] = float(rewards[idx].mean())
        for name in parts[idx[0]]:
            rec[f"reward/{task}/{name}"] = float(np.mean([parts[i][name] for i in idx]))
    return rec


def _log_samples(run, step, batch, completions, rewards, parts, adv, g, k) -> None:
    with open(run.path / "samples.jsonl", "a", encoding="utf-8") as f:
        for r in range(0, len(completions), max(1, len(completions) // max(1, k)))[:k]:
            s = batch[r // g]
            f.write(json.dumps({"step": step, "task": s.task, "prompt": s.prompt, "completion": completions[r],
                                "reference": s.completion, "reward": rewards[r], "advantage": adv[r],
                                "components": parts[r]}) + "\n")


def _trackers(cfg: GRPOTrainConfig, run: RunDir):
    """TensorBoard / W&B writers when enabled and installed (else None)."""
    sinks = []
    if cfg.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(run.path / "tb"))
            sinks.append(lambda r: [tb.add_scalar(k, v, r["step"]) for k, v in r.items() if isinstance(v, (int, float))])
        except ImportError:
            console.print("tensorboard not installed; skipping")
    if cfg.wandb:
        try:
            import wandb

            wandb.init(project="tinyreason", dir=str(run.path), config=cfg.model_dump(mode="json"))
            sinks.append(lambda r: wandb.log(r, step=r["step"]))
        except ImportError:
            console.print("wandb not installed; skipping")
    return (lambda r: [s(r) for s in sinks]) if sinks else None

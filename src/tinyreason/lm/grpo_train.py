"""GRPO fine-tuning of a GPT-2 LM on verifiable tasks (`tinyreason chess grpo`: tinyreason.chess.grpo).

One step, top to bottom: draw prompts (the tasks' mix, `task_ratio`) -> sample G completions
each -> score them (each task's reward functions against the example's reference;
`tinyreason.lm.tasks`) -> group advantages -> reference log-probs (only when beta > 0) -> num_iterations optimizer
updates -> metrics, samples, eval, checkpoint, safety checks.

Departures from TRL's GRPOTrainer, none of which changes the loss: dropout is always off
(TRL's `disable_dropout=True`, opt-in there); position ids follow the attention mask so
left-padded prompts are exact; each prompt runs through the network once per group in
the update and the reference pass (`grouped.grouped_logprobs`), not once per completion;
with num_iterations > 1 the old log-probs are the first iteration's own (detached)
log-probs rather than a separate forward pass (same weights, same numbers); where the sampler
decodes in one C call per token (fp32 CPU, one thread) the first update takes the completion
tokens' linear outputs from the rollout instead of recomputing them (`tinyreason.lm.replay`:
same numbers up to float rounding; `keep_rollout_activations`); gradients are
all-reduced by hand (one flat bucket) instead of a DDP wrapper; each rank samples its own
groups and computes their advantages ("batch" scaling uses the std over all ranks).
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from tinyreason import dist, kernels
from tinyreason.config import StrictModel
from tinyreason.contention import StepWatchdog
from tinyreason.device import EMULATED_BF16_NOTE, autocast, pick_device, pick_dtype, slow_bf16
from tinyreason.fileio import atomic_write_json
from tinyreason.lm import grpo, mfu
from tinyreason.lm.curves import plot_grpo_curves
from tinyreason.lm.grouped import grouped_logprobs
from tinyreason.lm.grpo_data import TaskMixer, load_pools, parse_ratio, score_rows
from tinyreason.lm.grpo_metrics import log_samples, step_metrics
from tinyreason.lm.heldout import evaluate_heldout
from tinyreason.lm.model import count_params, load_model
from tinyreason.lm.optim import adamw, allreduce_grads, lr_lambda
from tinyreason.lm.sampler import Rollout, decode_completions, sample, stop_token_ids
from tinyreason.lm.state import latest_checkpoint, resume_training, save_training, truncate_jsonl
from tinyreason.lm.tasks import Loader, Task, check_tasks, reward_weights
from tinyreason.runlog import RunDir, console
from tinyreason.telemetry import REPORT_TO_HELP, ReportTo


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
    """GRPO fine-tuning of a GPT-2 LM on verifiable tasks (RookWorld: policy and environment prompts)."""

    model: str = Field("jrahn/RookWorld-LM-124M", description="folder, Hub id or embedded:<name>")
    ref_model: str | None = Field(None, description="frozen KL reference (default: model); not loaded when beta=0")
    train_data: list[str] = Field(default_factory=lambda: ["jrahn/rookworld_7m"])
    train_split: str | None = "train"
    train_limit: int | None = None
    eval_data: list[str] = Field(default_factory=list)
    eval_split: str | None = "test"
    eval_limit: int = 64
    task_ratio: str = Field("1:1", description="prompt shares of the tasks in order (chess policy:env), e.g. 3:1 or 1:0")
    group_size: int = Field(8, ge=2)
    prompts_per_step: int = Field(4, ge=1, description="prompts (groups) per step per rank")
    micro_batch_size: int = Field(16, ge=1, description="sequences per forward/backward, rounded down to whole groups (at least one)")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    lr: float = 1e-6
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.99)
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    max_grad_norm: float = 1.0
    num_iterations: int = Field(1, ge=1, description="updates per batch of rollouts (mu)")
    keep_rollout_activations: bool = Field(
        True, description="the first update takes the completion tokens' linear outputs from the rollout instead of "
                          "recomputing them (where the sampler decodes in one C call per token: fp32 CPU, one thread)")
    beta: float = Field(0.04, ge=0.0, description="KL coefficient; 0 loads no reference model")
    epsilon: float = Field(0.2, ge=0.0, description="clip range of the probability ratio (lower side)")
    epsilon_high: float | None = Field(None, ge=0.0, description="upper clip (clip-higher); default epsilon")
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    mask_truncated_completions: bool = True
    zero_std_weight: float = Field(1.0, ge=0.0, description="loss weight of tied groups: 1 keep (TRL), 0 skip")
    entropy_coef: float = 0.0
    reward_weights: dict[str, dict[str, float]] = Field(default_factory=dict, description="per task, over the defaults")
    stockfish: str | None = Field(None, description="chess: Stockfish for live rewards when a reference lacks candidates (default: $STOCKFISH, PATH, /usr/games)")
    engine_nodes: int = Field(20000, ge=1, description="node limit of live Stockfish rewards")
    engine_workers: int = Field(2, ge=1, description="Stockfish processes for live rewards (started on first use)")
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
    cpu_watchdog: bool = Field(True, description="on CPU, fewer torch threads while other processes hold cores "
                                                "(tinyreason.contention)")
    seed: int = 0
    resume: bool = Field(False, description="continue from the run folder's latest checkpoint")
    overwrite: bool = Field(False, description="empty a run folder that holds a run, then start fresh")
    report_to: ReportTo = Field("none", description=REPORT_TO_HELP)
    kernels: Literal["auto", "off"] | None = Field(None, description=kernels.HELP)

    @field_validator("task_ratio")
    @classmethod
    def _ratio(cls, v: str) -> str:
        parse_ratio(v)
        return v


def train(cfg: GRPOTrainConfig, tasks: dict[str, Task], load: Loader) -> int:
    """Run GRPO on `tasks` (in `task_ratio` order), their examples read by `load` from
    `train_data` and `eval_data`; returns the exit code (0, or 1 on a safety stop).
    The kernels switch (`cfg.kernels`) and the loop's frozen gc hold for the run and are undone
    when it ends, however it ends."""
    with kernels.use(cfg.kernels), contextlib.ExitStack() as held:
        return _train(cfg, tasks, load, held)


def _train(cfg: GRPOTrainConfig, tasks: dict[str, Task], load: Loader, held: contextlib.ExitStack) -> int:
    device = pick_device(cfg.device)
    if device.type == "cpu":
        kernels.keep_freed_memory()  # the next step reuses this step's freed tensors (no page faults)
    info = dist.init(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
    amp = pick_dtype(cfg.dtype)
    run = RunDir(cfg.run_dir, info.is_main)
    g, n_prompts = cfg.group_size, cfg.prompts_per_step

    # --- models, data, optimizer -------------------------------------------------------
    torch.manual_seed(cfg.seed + info.rank)
    np.random.seed(cfg.seed + info.rank)
    model, tok = load_model(cfg.model, str(device), "float32")
    model.eval()  # dropout off for the whole run (as TRL disable_dropout=True); grads still flow
    ref_model = None
    if cfg.beta != 0.0:
        ref_model, _ = load_model(cfg.ref_model or cfg.model, str(device), "float32")
        ref_model.eval().requires_grad_(False)
    pools = load_pools(load, tasks, cfg.train_data, cfg.train_split, cfg.train_limit)
    mixer = TaskMixer(pools, parse_ratio(cfg.task_ratio), cfg.seed)
    heldout = [s for ref in cfg.eval_data for s in load(ref, cfg.eval_split, cfg.eval_limit)][: cfg.eval_limit]
    check_tasks(tasks, heldout, "eval_data")
    weights = reward_weights(tasks, cfg.reward_weights)
    stops = stop_token_ids(tok, cfg.sampling.stop_strings)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(params, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(cfg.schedule, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio))
    n_params, n_head = count_params(model), model.lm_head.weight.numel()
    peak, _ = mfu.peak_flops(device, amp)

    start, kl_streak, last_ckpt = 0, 0, None
    if cfg.resume and (state := resume_training(run, model, optimizer, scheduler, info.rank, info.world_size)):
        start, kl_streak, last_ckpt = state["step"], state["kl_streak"], state["path"]
        if run.is_main:
            truncate_jsonl(run.path / "samples.jsonl", start)
    run.write_config(cfg)
    run.report_to(cfg.report_to, cfg)
    if info.is_main:
        sizes = " / ".join(f"{len(pool)} {name}" for name, pool in pools.items())
        console.print(f"GRPO: {n_params / 1e6:.1f}M params on {device} ({cfg.dtype}), {sizes} prompts, "
                      f"{g} x {n_prompts} x {info.world_size} completions per step")
        if slow_bf16(device, amp):
            console.print(EMULATED_BF16_NOTE)

    # the objects made so far (modules, imports: ~400k) outlive the loop: out of the collector's sight
    # until the run ends (`kernels.frozen_gc`, undone however it ends)
    held.enter_context(kernels.frozen_gc())
    watchdog = held.enter_context(StepWatchdog(cfg.cpu_watchdog and device.type == "cpu",
                                               console.print if info.is_main else None))
    t_start, stop = time.perf_counter(), None
    step = start
    for step in range(start + 1, cfg.max_steps + 1):
        t0 = time.perf_counter()
        # 1. prompts and rollouts
        batch = mixer.batch(step, n_prompts, info.rank, info.world_size)
        roll = sample(model, [tok(s.prompt).input_ids for s in batch], g, cfg.sampling.max_new_tokens,
                      cfg.sampling.temperature, cfg.sampling.top_k, cfg.sampling.top_p, stop_ids=stops,
                      pad_id=tok.pad_token_id, dtype=amp, keep_activations=cfg.keep_rollout_activations)
        t1 = time.perf_counter()
        # 2. rewards
        completions = decode_completions(tok, roll, cfg.sampling.stop_strings)
        rewards_l, parts = score_rows(tasks, batch, completions, g, weights)
        rewards = torch.tensor(rewards_l, dtype=torch.float32, device=device)  # (N,)
        t2 = time.perf_counter()
        # 3. advantages, token weights, reference log-probs
        adv, zero_std = grpo.group_advantages(rewards, g, "none" if cfg.scale_rewards == "batch" else cfg.scale_rewards)
        if cfg.scale_rewards == "batch":  # std over every rank's rewards
            all_r = torch.tensor(sum(dist.all_gather_objects(rewards_l), []))
            adv = adv / (all_r.std().item() + 1e-4)
        w = grpo.token_weights(roll.completion_mask, roll.truncated, zero_std, g,
                               cfg.mask_truncated_completions, cfg.zero_std_weight)  # (N, T)
        ref_lp = None
        if ref_model is not None:
            with torch.no_grad():
                ref_lp = torch.cat([logprobs(ref_model, roll, sl, cfg, device, amp)[0] for sl in group_slices(cfg, len(batch))])
        t3 = time.perf_counter()
        # 4. updates
        sums, grad_norm, stop = update(model, optimizer, params, roll, adv, w, ref_lp, cfg, device, amp)
        lr_now = scheduler.get_last_lr()[0]
        if stop is None:
            scheduler.step()
        t4 = time.perf_counter()

        # 5. metrics (gathered from every rank; rank 0 logs)
        local = {"rewards": rewards_l, "parts": parts, "tasks": [batch[r // g].task for r in range(len(rewards_l))],
                 "zero_std": zero_std.tolist(), "lengths": roll.lengths.tolist(), "truncated": roll.truncated.tolist(),
                 "sums": sums, "prompt_tokens": int(roll.prompt_mask[::g].sum())}
        times = {"rollout": t1 - t0, "reward": t2 - t1, "ref": t3 - t2, "update": t4 - t3, "step": t4 - t0}
        rec = step_metrics(dist.all_gather_objects(local), step, lr_now, grad_norm, times, n_params, n_head, peak,
                           device, cfg.beta, cfg.num_iterations, list(tasks))
        rec.update(watchdog.observe(times["step"]))
        kl_streak = kl_streak + 1 if cfg.beta != 0 and rec["kl"] > cfg.safety.kl_max else 0
        if stop is None and kl_streak >= cfg.safety.kl_patience:
            stop = ("kl_divergence", f"KL {rec['kl']:.3g} > {cfg.safety.kl_max} for {kl_streak} consecutive steps")
        run.log(rec)
        if info.is_main and cfg.log_samples_every and step % cfg.log_samples_every == 0:
            log_samples(run, step, batch, completions, rewards_l, parts, adv.tolist(), g, cfg.log_samples)
        if info.is_main and (step % 10 == 0 or step == start + 1):
            console.print(f"step {step}: reward {rec['reward_mean']:.3f}  kl {rec['kl']:.4f}  loss {rec['loss']:.4f}  "
                          f"len {rec['completion_len_mean']:.1f}  {rec['time_step']:.2f}s")
        if stop is not None:
            break
        # 6. eval, checkpoint, budget
        if heldout and cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            if info.is_main:
                ev = evaluate_heldout(model, tok, tasks, heldout, cfg.eval_max_new_tokens, cfg.micro_batch_size * 2, amp)
                run.log({"step": step, **{f"eval/{k}": v for k, v in ev.items()}})
            dist.barrier()
        out_of_time = cfg.time_budget_min is not None and time.perf_counter() - t_start > 60 * cfg.time_budget_min
        if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.max_steps or out_of_time:
            last_ckpt = save_training(run, step, model, tok, optimizer, scheduler, {
                "kl_streak": kl_streak, "data_position": mixer.position(step, n_prompts, info.world_size)},
                cfg.keep_checkpoints) or last_ckpt
        if out_of_time:
            stop = ("time_budget", f"{cfg.time_budget_min} min reached")
            break

    if stop is not None:
        stop_run(run, stop[0], stop[1], step, last_ckpt or latest_checkpoint(run.path))
    if info.is_main:
        plot_grpo_curves(run.path, title=f"GRPO {Path(cfg.run_dir).name}", task_names=list(tasks))
    run.close()
    dist.cleanup()
    return 1 if stop is not None and stop[0] != "time_budget" else 0


def group_slices(cfg: GRPOTrainConfig, n_groups: int) -> list[slice]:
    """Micro-batches as slices of groups: `micro_batch_size` rows rounded down to whole groups."""
    per = max(1, cfg.micro_batch_size // cfg.group_size)
    return [slice(s, min(s + per, n_groups)) for s in range(0, n_groups, per)]


def logprobs(model, roll: Rollout, groups: slice, cfg: GRPOTrainConfig, device, amp, with_entropy: bool = False,
             kept: bool = False):
    """Completion log-probs (and entropies) (n, T) of the rows of `groups`, each prompt run once;
    `kept`: with the rollout's linear outputs where it has them (the policy, before any update)."""
    g = roll.group_size
    rows = slice(groups.start * g, groups.stop * g)
    acts = roll.activations.rows(rows) if kept and roll.activations is not None else None
    with autocast(device, amp):
        return grouped_logprobs(model, roll.prompt_ids[rows][::g], roll.prompt_mask[rows][::g],
                                roll.completion_ids[rows], g, cfg.sampling.temperature, with_entropy,
                                entropy_grad=cfg.entropy_coef != 0.0, kept=acts)


def update(model, optimizer, params, roll: Rollout, adv, w, ref_lp, cfg: GRPOTrainConfig, device, amp):
    """`num_iterations` optimizer steps on one batch of rollouts.

    Normalisers are global, so micro-batches and ranks add up to the loss of the whole
    batch. The first iteration's log-probs, detached, are the old log-probs of the later
    ones (identical to a separate pass before any update). Returns the loss statistics
    (summed, averaged over iterations), the last pre-clip gradient norm and a stop
    (reason, detail) on non-finite values or a gradient explosion (before that update)."""
    n_rows, mu = w.shape[0], cfg.num_iterations
    n_tok = dist.all_reduce_mean((w > 0).sum().reshape(1).float())[0].clamp(min=1.0).item()
    old_lp = torch.zeros_like(w) if mu > 1 else None  # (N, T)
    sums = dict.fromkeys(("loss", "tokens", "clip_low", "clip_high", "kl", "entropy"), 0.0)
    grad_norm, stop = 0.0, None
    for it in range(mu):
        optimizer.zero_grad(set_to_none=True)
        for groups in group_slices(cfg, n_rows // roll.group_size):
            rows = slice(groups.start * roll.group_size, groups.stop * roll.group_size)
            lp, ent = logprobs(model, roll, groups, cfg, device, amp, with_entropy=True, kept=it == 0)  # (n, T) each
            if old_lp is not None and it == 0:
                old_lp[rows] = lp.detach()
            loss, st = grpo.grpo_loss(
                lp, adv[rows], w[rows], old_logp=None if it == 0 else old_lp[rows],
                ref_logp=None if ref_lp is None else ref_lp[rows], beta=cfg.beta, epsilon=cfg.epsilon,
                epsilon_high=cfg.epsilon_high, loss_type=cfg.loss_type,
                max_completion_length=cfg.sampling.max_new_tokens, entropy=ent, entropy_coef=cfg.entropy_coef,
                num_seqs=n_rows, num_tokens=n_tok)
            loss.backward()
            sums["loss"] += loss.item() / mu
            for k, v in st.items():
                sums[k] += v.item() / mu
        allreduce_grads(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm).item()
        if not (math.isfinite(sums["loss"]) and math.isfinite(grad_norm)):
            return sums, grad_norm, ("nonfinite", f"loss {sums['loss']}, grad norm {grad_norm}")
        if grad_norm > cfg.safety.grad_norm_max:
            return sums, grad_norm, ("grad_norm_explosion", f"grad norm {grad_norm:.3g} > {cfg.safety.grad_norm_max}")
        optimizer.step()
    return sums, grad_norm, stop


def stop_run(run: RunDir, reason: str, detail: str, step: int, last_ckpt: Path | None) -> None:
    """Write stop_reason.json (reason, detail, step, last good checkpoint) and print it."""
    record = {"reason": reason, "detail": detail, "step": step, "last_good_checkpoint": str(last_ckpt) if last_ckpt else None}
    if run.is_main:
        atomic_write_json(run.path / "stop_reason.json", record)
        console.print(f"[bold red]stopped at step {step}: {reason}[/] ({detail}); "
                      f"last good checkpoint: {record['last_good_checkpoint']}")

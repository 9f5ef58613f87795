"""Supervised causal-LM training of a GPT-2 on text examples (`tinyreason chess sft`: tinyreason.chess.sft).

The examples come from the caller's loader (`tinyreason.lm.tasks.Loader`; chess: RookWorld
text), each a prompt and a completion.

Rows are either packed (samples shuffled per epoch, joined with EOS, cut into rows of
`seq_len`; attention crosses sample boundaries as in nanoGPT/RookWorld pre-training) or
one sample per row, right-padded. The loss is on every token by default (how RookWorld-LM
was trained); `completion_only_loss` masks the prompts (prompt and completion are then
tokenized separately, the way GRPO feeds prompts). AdamW, linear warmup + cosine decay
to `min_lr_ratio`, gradient accumulation, bf16 autocast, periodic eval loss, atomic
checkpoints with exact resume, torchrun (gradients all-reduced by hand). The loss runs on
the trainers' own GPT-2 forward (`tinyreason.lm.causal`: HF's math, faster CPU kernels).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from tinyreason import dist, kernels
from tinyreason.config import StrictModel
from tinyreason.contention import StepWatchdog
from tinyreason.device import EMULATED_BF16_NOTE, autocast, pick_device, pick_dtype, slow_bf16
from tinyreason.errors import UserError
from tinyreason.lm import mfu
from tinyreason.lm.causal import lm_loss_sum
from tinyreason.lm.curves import plot_curves
from tinyreason.lm.model import count_params, load_model, load_tokenizer, random_model, train_char_tokenizer
from tinyreason.lm.optim import adamw, allreduce_grads, lr_lambda
from tinyreason.lm.state import resume_training, save_training
from tinyreason.lm.tasks import ExampleLike, Loader
from tinyreason.runlog import RunDir, console
from tinyreason.telemetry import REPORT_TO_HELP, ReportTo


class ArchConfig(StrictModel):
    n_layer: int = 6
    n_embd: int = 256
    n_head: int = 8
    n_positions: int = 512
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="resid/embd/attn dropout (GPT-2's 0.1; 0 for tiny models)")

    @model_validator(mode="after")
    def _heads_divide(self) -> ArchConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        return self


class SFTConfig(StrictModel):
    """Causal-LM training of a GPT-2 on text (RookWorld: policy and environment samples)."""

    model: str | None = Field(None, description="start from this model (folder/Hub/embedded:); None = random init")
    arch: ArchConfig = Field(default_factory=ArchConfig, description="random-init architecture")
    tokenizer: str | None = Field(None, description="tokenizer folder/Hub id for random init (e.g. gpt2)")
    char_tokenizer: bool = Field(False, description="train a character-level tokenizer on the training text")
    chess_tokenizer: bool = Field(False, description="the chess tokenizer: whole UCI moves (tinyreason.chess.tokenizer)")
    train_data: list[str] = Field(default_factory=lambda: ["jrahn/rookworld_7m"])
    train_split: str | None = "train"
    train_limit: int | None = None
    eval_data: list[str] = Field(default_factory=list)
    eval_split: str | None = "test"
    eval_limit: int = 256
    packing: bool = True
    completion_only_loss: bool = False
    seq_len: int = Field(256, ge=1)
    batch_size: int = Field(8, ge=1, description="rows per micro-batch per rank")
    grad_accum: int = Field(1, ge=1)
    lr: float = 3e-4
    weight_decay: float = 0.1
    adam_betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_steps: int = Field(1000, ge=1)
    time_budget_min: float | None = None
    eval_every: int = 100
    save_every: int = 100
    keep_checkpoints: int = 2
    run_dir: str = "runs/sft"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "bfloat16"] = "float32"
    cpu_watchdog: bool = Field(True, description="on CPU, fewer torch threads while other processes hold cores "
                                                "(tinyreason.contention)")
    seed: int = 0
    resume: bool = Field(False, description="continue from the run folder's latest checkpoint")
    overwrite: bool = Field(False, description="empty a run folder that holds a run, then start fresh")
    report_to: ReportTo = Field("none", description=REPORT_TO_HELP)
    kernels: Literal["auto", "off"] | None = Field(None, description=kernels.HELP)


def encode(samples: list[ExampleLike], tok, completion_only: bool) -> list[tuple[list[int], list[int]]]:
    """(token ids ending in EOS, loss mask) per sample.

    One batched tokenizer call per text list (a fast tokenizer encodes the batch in Rust); the ids
    equal those of one call per sample.
    """
    if not samples:
        return []
    eos = [tok.eos_token_id]
    if completion_only:
        prompts = tok([s.prompt for s in samples]).input_ids
        completions = tok([s.completion for s in samples]).input_ids
        return [(p + c + eos, [0] * len(p) + [1] * (len(c) + 1)) for p, c in zip(prompts, completions)]
    whole = tok([s.prompt + s.completion for s in samples]).input_ids
    return [(ids + eos, [1] * (len(ids) + 1)) for ids in whole]


class Rows:
    """Training rows as a pure function of their global index (epochs reshuffled by seed)."""

    def __init__(self, docs, seq_len: int, packing: bool, seed: int, pad_id: int, shuffle: bool = True):
        self.docs, self.seq_len, self.packing, self.seed, self.pad_id, self.shuffle = docs, seq_len, packing, seed, pad_id, shuffle
        total = sum(len(d[0]) for d in docs)
        self.per_epoch = total // seq_len if packing else len(docs)
        if self.per_epoch == 0:
            raise UserError(f"not enough training text for one row of {seq_len} tokens")
        self._epoch: tuple[int, tuple[np.ndarray, np.ndarray] | np.ndarray] | None = None

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.docs)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def _stream(self, epoch: int):
        if self._epoch is None or self._epoch[0] != epoch:
            order = self._order(epoch)
            if self.packing:
                ids = np.concatenate([self.docs[i][0] for i in order])
                mask = np.concatenate([self.docs[i][1] for i in order])
                self._epoch = (epoch, (ids, mask))
            else:
                self._epoch = (epoch, order)
        return self._epoch[1]

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """input ids (B, L), attention mask (B, L), loss mask (B, L)."""
        rows = []
        for k in indices:
            epoch, j = divmod(k, self.per_epoch)
            data = self._stream(epoch)
            if self.packing:
                ids, mask = data
                sl = slice(j * self.seq_len, (j + 1) * self.seq_len)
                rows.append((ids[sl].tolist(), mask[sl].tolist()))
            else:
                ids, mask = self.docs[int(data[j])]
                rows.append((ids[: self.seq_len], mask[: self.seq_len]))
        width = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        loss_mask = torch.zeros((len(rows), width), dtype=torch.float32)
        for i, (r, m) in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            attn[i, : len(r)] = 1
            loss_mask[i, : len(m)] = torch.tensor(m, dtype=torch.float32)
        return ids, attn, loss_mask


def build_model(cfg: SFTConfig, train: list[ExampleLike], device, task_tokenizer: Callable[[], object] | None = None):
    """The model to train and its tokenizer: loaded, or random init with the configured tokenizer
    (`task_tokenizer` makes the one `chess_tokenizer: true` selects; the caller's, as lm knows no task)."""
    if cfg.model is not None:
        if cfg.char_tokenizer or cfg.chess_tokenizer:
            raise UserError("char_tokenizer/chess_tokenizer: true only applies to random init (model: null)")
        return load_model(cfg.model, str(device), "float32")
    if cfg.char_tokenizer and cfg.chess_tokenizer:
        raise UserError("char_tokenizer and chess_tokenizer exclude each other: set one")
    if cfg.char_tokenizer:
        tok = train_char_tokenizer(s.prompt + s.completion for s in train)
    elif cfg.chess_tokenizer:
        if task_tokenizer is None:
            raise UserError("chess_tokenizer: true needs the chess tokenizer: run `tinyreason chess sft`")
        tok = task_tokenizer()
    elif cfg.tokenizer:
        tok = load_tokenizer(cfg.tokenizer)
    else:
        raise UserError("random init needs a tokenizer: set tokenizer (e.g. gpt2), char_tokenizer or chess_tokenizer: true")
    arch = cfg.arch.model_dump()
    p = arch.pop("dropout")
    model = random_model(tok, seed=cfg.seed, resid_pdrop=p, embd_pdrop=p, attn_pdrop=p, **arch)
    return model.to(device), tok


def train(cfg: SFTConfig, load: Loader, task_tokenizer: Callable[[], object] | None = None) -> int:
    """Train on the examples `load` reads from `train_data` (eval loss on `eval_data`); returns 0.
    The kernels switch (`cfg.kernels`) and the watchdog's thread count hold for the run and are
    undone when it ends, however it ends."""
    with kernels.use(cfg.kernels), contextlib.ExitStack() as held:
        return _train(cfg, load, task_tokenizer, held)


def _train(cfg: SFTConfig, load: Loader, task_tokenizer: Callable[[], object] | None, held: contextlib.ExitStack) -> int:
    device = pick_device(cfg.device)
    if device.type == "cpu":
        kernels.keep_freed_memory()  # the next step reuses this step's freed tensors (no page faults)
    info = dist.init(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
    amp = pick_dtype(cfg.dtype)
    run = RunDir(cfg.run_dir, info.is_main)
    torch.manual_seed(cfg.seed + info.rank)

    train = [s for ref in cfg.train_data for s in load(ref, cfg.train_split, cfg.train_limit)]
    evals = [s for ref in cfg.eval_data for s in load(ref, cfg.eval_split, cfg.eval_limit)][: cfg.eval_limit]
    model, tok = build_model(cfg, train, device, task_tokenizer)
    if cfg.seq_len > model.config.n_positions:
        raise UserError(f"seq_len {cfg.seq_len} exceeds the model's {model.config.n_positions} positions")
    model.train()
    rows = Rows(encode(train, tok, cfg.completion_only_loss), cfg.seq_len, cfg.packing, cfg.seed, tok.pad_token_id)
    eval_rows = Rows(encode(evals, tok, cfg.completion_only_loss), cfg.seq_len, cfg.packing, 0, tok.pad_token_id,
                     shuffle=False) if evals else None
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    params = decay + no_decay
    optimizer = adamw([{"params": decay, "weight_decay": cfg.weight_decay},
                       {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.adam_betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda("cosine", cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio))
    n_params = count_params(model)
    peak, _ = mfu.peak_flops(device, amp)
    start = 0
    if cfg.resume and (state := resume_training(run, model, optimizer, scheduler, info.rank, info.world_size)):
        start = state["step"]
    run.write_config(cfg)
    run.report_to(cfg.report_to, cfg)
    if info.is_main:
        console.print(f"SFT: {n_params / 1e6:.2f}M params, {len(train)} samples, {rows.per_epoch} rows/epoch on {device}")
        if slow_bf16(device, amp):
            console.print(EMULATED_BF16_NOTE)

    rows_per_step = cfg.batch_size * cfg.grad_accum * info.world_size
    watchdog = held.enter_context(StepWatchdog(cfg.cpu_watchdog and device.type == "cpu",
                                               console.print if info.is_main else None))
    t_start = time.perf_counter()
    step = start
    for step in range(start + 1, cfg.max_steps + 1):
        t0 = time.perf_counter()
        base = (step - 1) * rows_per_step
        micro = []
        for a in range(cfg.grad_accum):
            first = base + (a * info.world_size + info.rank) * cfg.batch_size
            micro.append(rows.batch(list(range(first, first + cfg.batch_size))))
        n_targets = sum(float((m[2][:, 1:] * m[1][:, 1:]).sum()) for m in micro)
        optimizer.zero_grad(set_to_none=True)
        loss_total = 0.0
        for ids, attn, lmask in micro:
            ids, attn, lmask = ids.to(device), attn.to(device), lmask.to(device)
            with autocast(device, amp):
                loss_sum, _ = lm_loss_sum(model, ids, attn, lmask)
            loss = loss_sum / max(n_targets, 1.0)
            loss.backward()
            loss_total += loss.item()
        allreduce_grads(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm).item()
        lr_now = scheduler.get_last_lr()[0]
        if not (math.isfinite(loss_total) and math.isfinite(grad_norm)):
            raise UserError(f"non-finite loss/gradient at step {step} (loss {loss_total}, grad norm {grad_norm}); "
                            f"resume from the last checkpoint with a lower lr")
        optimizer.step()
        scheduler.step()
        dt = time.perf_counter() - t0
        tokens = sum(int(m[1].sum()) for m in micro) * info.world_size
        rec = {"step": step, "loss": dist.all_reduce_mean(torch.tensor([loss_total]))[0].item(),
               "grad_norm": grad_norm, "lr": lr_now, "tokens_per_s": tokens / dt, "time_step": dt,
               "mfu": mfu.mfu(6 * n_params * tokens, dt * info.world_size, peak), "peak_mem_mb": mfu.peak_memory_mb(device)}
        rec.update(watchdog.observe(dt))
        if eval_rows is not None and cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            rec["eval_loss"] = evaluate(model, eval_rows, cfg, device, amp)
        run.log(rec)
        if info.is_main and (step % 10 == 0 or step == start + 1):
            console.print(f"step {step}: loss {rec['loss']:.4f}" + (f"  eval {rec['eval_loss']:.4f}" if "eval_loss" in rec else ""))
        out_of_time = cfg.time_budget_min is not None and time.perf_counter() - t_start > 60 * cfg.time_budget_min
        if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.max_steps or out_of_time:
            save_training(run, step, model, tok, optimizer, scheduler, {"data_position": {"rows_seen": step * rows_per_step}},
                          cfg.keep_checkpoints)
        if out_of_time:
            break
    if info.is_main:
        plot_curves(run.path, ["loss", "eval_loss", "lr", "grad_norm"], title=f"SFT {Path(cfg.run_dir).name}")
    run.close()
    dist.cleanup()
    return 0


@torch.no_grad()
def evaluate(model, eval_rows: Rows, cfg: SFTConfig, device, amp) -> float:
    """Mean token cross entropy over one pass of the eval rows (this rank's share, averaged)."""
    model.eval()
    total, count = 0.0, 0.0
    for s in range(0, eval_rows.per_epoch, cfg.batch_size):
        ids, attn, lmask = (t.to(device) for t in eval_rows.batch(list(range(s, min(s + cfg.batch_size, eval_rows.per_epoch)))))
        with autocast(device, amp):
            ls, n = lm_loss_sum(model, ids, attn, lmask)
        total, count = total + ls.item(), count + n.item()
    model.train()
    return total / max(count, 1.0)

"""Batched GPT-2 sampling for GRPO rollouts: groups of completions per prompt, KV cache.

Why not `model.generate`: rollouts need G completions per prompt, the log-prob of every
sampled token, and masks, as fast as possible on a CPU. This sampler
- prefills each distinct prompt once and keeps one copy of its K/V for its G completions:
  in decoding the G queries of a group attend to that copy together (shared-prefix
  attention, `tinyreason.lm.shared_prefix`) and to their own generated K/V,
- keeps a static, preallocated KV cache written in place and runs the GPT-2 blocks
  directly (`tinyreason.lm.cached_gpt2`: no per-step cache objects, mask builders or logits
  processors; GELU fused into the MLP's first GEMM on oneDNN; decode attention as batched
  matmuls, no SDPA mask per step),
- runs the one GPT-2 forward (`tinyreason.lm.gpt2.blocks`) on its own view of the weights:
  on CPU the linears packed once per update (oneDNN's blocked layout, or the C linears' panels;
  fp32, or bf16 copies refreshed in place; where the CPU has no bf16 GEMM, fp32 copies of the
  bf16 values: bf16 emulated), or each decode token through the whole network in one C call
  (`kernels.Step`, the "decode step" op, this per-op path its reference); the plain-case draw
  (no top-k/top-p) in one C call (`kernels.sample_rows`). Which of these runs is
  `tinyreason.kernels.choose`'s decision (switch, device, dtype, threads, ISA, compiler),
- drops finished rows from the batch (compacting the cache) as completions stop and
  returns only as many completion columns as the longest completion,
- supports left-padded prompts of different lengths with exact position ids.
`benchmarks/sampler_vs_generate.py` measures the gain. The math is GPT-2's exactly:
the returned log-probs match a full forward pass of the same sequences (tested).

Log-probs are those of the temperature-scaled distribution, log_softmax(logits / T),
before top-k/top-p filtering — what TRL's GRPOTrainer computes in training, so they
can serve as old log-probs. With temperature 0 decoding is greedy and log-probs are
log_softmax(logits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tinyreason.errors import UserError
from tinyreason import kernels
from tinyreason.lm.cached_gpt2 import CachedGPT2
from tinyreason.lm.replay import Activations
from tinyreason.lm.shared_prefix import SharedPrefix


@dataclass
class Rollout:
    """Sampled completions. Rows of one prompt's group are adjacent (row = prompt * G + g)."""

    prompt_ids: torch.Tensor  # (N, P) left-padded, N = B*G
    prompt_mask: torch.Tensor  # (N, P) 1 = real token
    completion_ids: torch.Tensor  # (N, T) right-padded with pad id, T = longest completion
    completion_mask: torch.Tensor  # (N, T) 1 = generated token (stop token included)
    logprobs: torch.Tensor  # (N, T) float32 sampling log-probs, 0 on padding
    truncated: torch.Tensor  # (N,) bool: reached max_new_tokens without a stop token
    group_size: int
    activations: Activations | None = None  # the decode steps' linear outputs (`keep_activations`)

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(-1)  # (N,)


def stop_token_ids(tokenizer, stop_strings: Sequence[str] = ()) -> list[int]:
    """EOS plus every vocabulary token whose text contains one of `stop_strings`.

    A stop string is detected when a single token contains it (true for the newline
    that ends every RookWorld sample, with GPT-2 BPE, character and chess tokenizers alike).
    """
    ids = set() if tokenizer.eos_token_id is None else {tokenizer.eos_token_id}
    if stop_strings:
        special = set(tokenizer.all_special_ids)
        for tid in range(len(tokenizer)):
            if tid not in special and any(s in tokenizer.decode([tid]) for s in stop_strings):
                ids.add(tid)
        missing = [s for s in stop_strings if not any(s in tokenizer.decode([t]) for t in ids if t not in special)]
        if missing:
            raise UserError(f"stop strings {missing} are not contained in any single token of the tokenizer")
    return sorted(ids)


def decode_completions(tokenizer, rollout: Rollout, stop_strings: Sequence[str] = ()) -> list[str]:
    """Completion texts: masked tokens decoded without special tokens, cut at the first stop string."""
    out = []
    for ids, n in zip(rollout.completion_ids.tolist(), rollout.lengths.tolist()):
        text = tokenizer.decode(ids[:n], skip_special_tokens=True)
        for s in stop_strings:
            text = text.split(s, 1)[0]
        out.append(text)
    return out


def _draw(probs: torch.Tensor, generator) -> torch.Tensor:
    """One token per row (A,) from probs (A, V), by inverting the cumulative distribution at
    one uniform draw per row. Same distribution as `torch.multinomial(probs, 1)`, which on
    CPU draws an exponential variate for every vocabulary entry (a large share of a 124M
    rollout at GPT-2's 50257 entries); this draws A numbers."""
    cdf = probs.cumsum(-1)  # (A, V)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=cdf.dtype)  # (A, 1)
    tok = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)[:, 0]  # first entry with cdf > u * total
    tok = tok.clamp_(max=probs.shape[-1] - 1)  # (A,)
    # only when u * total rounds up to the total can the pick be a token without mass: take the last one with mass
    bad = probs.gather(-1, tok[:, None])[:, 0] <= 0
    if bool(bad.any()):
        last = probs.shape[-1] - 1 - (probs.flip(-1) > 0).int().argmax(-1)  # (A,)
        tok = torch.where(bad, last, tok)
    return tok


def _pick(logits, temperature: float, top_k: int, top_p: float, generator):
    """Next tokens (A,) and their log-probs (A,) from logits (A, V) float32."""
    if temperature == 0:
        tok = logits.argmax(-1)
        return tok, torch.log_softmax(logits, -1).gather(-1, tok[:, None])[:, 0]
    plain = top_k <= 0 and top_p >= 1.0
    if plain and kernels.choose.sample_rows(logits):
        return kernels.sample_rows(logits.contiguous(), temperature, generator)  # same draw, one C call
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, -1)  # (A, V)
    if plain:
        tok = _draw(logp.exp(), generator)
        return tok, logp.gather(-1, tok[:, None])[:, 0]
    if 0 < top_k < logits.shape[-1]:
        vals, idx = logits.topk(top_k, dim=-1)  # (A, k) sorted descending
    else:
        vals, idx = logits.sort(dim=-1, descending=True)
    if top_p < 1.0:
        p = torch.softmax(vals, -1)
        drop = (p.cumsum(-1) - p) >= top_p  # mass before the token already reaches top_p (as HF)
        drop[:, 0] = False
        vals = vals.masked_fill(drop, float("-inf"))
    choice = _draw(torch.softmax(vals, -1), generator)  # (A,)
    tok = idx.gather(-1, choice[:, None])[:, 0]
    return tok, logp.gather(-1, tok[:, None])[:, 0]


def sample(
    model,
    prompts: Sequence[Sequence[int]],
    num_samples: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    stop_ids: Sequence[int] = (),
    pad_id: int = 0,
    dtype: torch.dtype = torch.float32,
    share_prefix: bool = True,
    generator: torch.Generator | None = None,
    compact_fraction: float = 0.25,
    keep_activations: bool = False,
) -> Rollout:
    """Sample `num_samples` completions for each prompt (token id lists).

    Generation of a row stops after a token in `stop_ids` (EOS, newline, ...; that token
    is part of the completion) or after `max_new_tokens`. `dtype` bfloat16 runs the
    sampler on a bf16 copy of the weights. Finished rows are dropped from the batch once
    `compact_fraction` of the active rows are done. Runs under `torch.inference_mode`; the
    returned tensors are ordinary ones (cloned outside it) so training can use them.
    `keep_activations`: where every decode step runs as one C call (`kernels.choose.decode_step`:
    fp32 on CPU at one thread), also return the completion tokens' linear outputs
    (`Rollout.activations`, see `tinyreason.lm.replay`), else None there.
    """
    with torch.inference_mode():
        roll = _sample(model, prompts, num_samples, max_new_tokens, temperature, top_k, top_p, stop_ids, pad_id,
                       dtype, share_prefix, generator, compact_fraction, keep_activations)
    return Rollout(**{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in vars(roll).items()})


def _sample(model, prompts, num_samples, max_new_tokens, temperature, top_k, top_p, stop_ids, pad_id, dtype,
            share_prefix, generator, compact_fraction, keep_activations=False) -> Rollout:
    if not prompts or any(len(p) == 0 for p in prompts):
        raise UserError("sample() needs at least one non-empty prompt")
    device = model.transformer.wte.weight.device
    b, g, t_new = len(prompts), num_samples, max_new_tokens
    net = CachedGPT2.for_model(model, dtype, b * g)
    p_len = max(len(p) for p in prompts)
    if p_len + t_new > net.n_pos:
        raise UserError(f"prompt ({p_len} tokens) + max_new_tokens ({t_new}) exceed the model's {net.n_pos} positions")
    n = b * g
    p_ids = torch.full((b, p_len), pad_id, dtype=torch.long)
    p_mask = torch.zeros((b, p_len), dtype=torch.long)
    for i, p in enumerate(prompts):
        p_ids[i, p_len - len(p):] = torch.tensor(list(p), dtype=torch.long)
        p_mask[i, p_len - len(p):] = 1
    p_ids, p_mask = p_ids.to(device), p_mask.to(device)
    pos = (p_mask.cumsum(-1) - 1).clamp(min=0)  # (B, P) positions count real tokens only

    prefix = None
    if share_prefix:  # prompt K/V once per group; the cache holds the generated tokens only
        small = net.new_cache(b, p_len, device)
        logits = net.forward(p_ids, pos, small, 0, p_mask.bool()).repeat_interleave(g, 0)  # (N, V)
        prefix = SharedPrefix(small, p_mask, g)
        if prefix.kernel_pays(n, t_new, net.kv_dtype(device), device):  # for the whole rollout: it sets the layout
            prefix.use_kernel()
        cache = net.new_cache(n, t_new, device, prefix.kernel)  # (N, H, Tnew, D) per layer
        key_ok, offset = None, 0
    else:  # reference path: every row prefills and attends to its own copy of the prompt
        cache = net.new_cache(n, p_len + t_new, device)
        key_ok = torch.ones((n, p_len + t_new), dtype=torch.bool, device=device)  # (N, Tmax)
        key_ok[:, :p_len] = p_mask.repeat_interleave(g, 0).bool()
        logits = net.forward(p_ids.repeat_interleave(g, 0), pos.repeat_interleave(g, 0), cache, 0, key_ok)
        offset = p_len

    out_ids = torch.full((n, t_new), pad_id, dtype=torch.long, device=device)
    out_lp = torch.zeros((n, t_new), dtype=torch.float32, device=device)
    lengths = torch.zeros(n, dtype=torch.long, device=device)
    stops = torch.tensor(sorted(set(stop_ids)), dtype=torch.long, device=device)
    active = torch.arange(n, device=device)  # original row of each cache row
    next_pos = p_mask.sum(-1).repeat_interleave(g, 0)  # (A,) position id of the next token
    done = torch.zeros(n, dtype=torch.bool, device=device)  # (A,) finished among active rows
    kept = None
    if keep_activations and net.step is not None and not net.step.bf16 and prefix is not None and prefix.kernel \
            and t_new > 1:
        kept = Activations.empty(n, t_new - 1, net.d_model, net.n_head, net.step.d_inner, net.step.head.out_features,
                                 len(net.layers))
    for t in range(t_new):
        tok, lp = _pick(logits, temperature, top_k, top_p, generator)  # (A,), (A,)
        live = ~done
        rows = active[live]
        out_ids[rows, t] = tok[live]
        out_lp[rows, t] = lp[live]
        lengths[rows] = t + 1
        if stops.numel():
            done = done | torch.isin(tok, stops)
        n_done = int(done.sum())
        if t == t_new - 1 or n_done == done.numel():
            break
        if n_done and n_done >= compact_fraction * done.numel():  # drop finished rows
            keep = ~done
            cache = [(kc[keep], vc[keep]) for kc, vc in cache]
            active, tok, next_pos = active[keep], tok[keep], next_pos[keep]
            if key_ok is not None:
                key_ok = key_ok[keep]
            if prefix is not None:
                prefix.keep(active)
            done = done[keep]
        logits = net.forward(tok[:, None], next_pos[:, None], cache, offset + t, key_ok, prefix, kept, active)
        next_pos = next_pos + 1
    # a row is complete iff its last token is a stop token (it stopped there); else it hit the limit
    last = out_ids.gather(1, (lengths - 1).clamp(min=0)[:, None])[:, 0]  # (N,)
    truncated = ~torch.isin(last, stops) if stops.numel() else torch.ones(n, dtype=torch.bool, device=device)
    t_used = int(lengths.max())  # columns after the longest completion hold only padding: dropped
    if kept is not None:
        kept.clear_unwritten(lengths)
    mask = (torch.arange(t_used, device=device)[None, :] < lengths[:, None]).long()
    return Rollout(
        prompt_ids=p_ids.repeat_interleave(g, 0), prompt_mask=p_mask.repeat_interleave(g, 0),
        completion_ids=out_ids[:, :t_used], completion_mask=mask, logprobs=out_lp[:, :t_used], truncated=truncated,
        group_size=g, activations=kept,
    )

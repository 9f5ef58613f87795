"""Batched GPT-2 sampling for GRPO rollouts: groups of completions per prompt, KV cache.

Why not `model.generate`: rollouts need G completions per prompt, the log-prob of every
sampled token, and masks, as fast as possible on a CPU. This sampler
- prefills each distinct prompt once and keeps one copy of its K/V for its G completions:
  in decoding the G queries of a group attend to that copy together (shared-prefix
  attention, `tinyreason.lm.shared_prefix`) and to their own generated K/V,
- keeps a static, preallocated KV cache written in place and runs the GPT-2 blocks
  directly (no per-step cache objects, mask builders or logits processors; GELU fused
  into the MLP's first GEMM on oneDNN; decode attention as batched matmuls, no SDPA mask
  per step),
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

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tinyreason.errors import UserError
from tinyreason import kernels
from tinyreason.lm import gpt2
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


_CASTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> ((dtype, versions), _GPT2)


class _GPT2:
    """GPT-2 forward over a static KV cache, reading the weights of a GPT2LMHeadModel.

    fp32 reads the model's own parameters (transposed views of the Conv1D weights); other
    dtypes (bf16) keep a copy of every weight in that dtype, refreshed in place (one strided
    copy, no allocation) when a parameter changed (an optimizer step bumps its version
    counter). On CPU the linear weights, LM head included, are then packed for the decode batch
    (`kernels.dnn_pack`, oneDNN's blocked layout; or `kernels.Panels` for the C linears, re-packed
    in place into the previous view's buffers; where the CPU has no bf16 GEMM, fp32 copies of the
    bf16 values, bf16 emulated, and then no bf16 copy of the block weights is kept beside them):
    decoding reads each weight once per token; re-packing is paid once per update.
    """

    def __init__(self, model, dtype: torch.dtype, rows: int, reuse: "_GPT2 | None" = None, c_linear: bool = False,
                 step: bool = False):
        cfg = model.config
        if getattr(cfg, "add_cross_attention", False):
            raise UserError("the sampler supports decoder-only GPT-2 models (no cross-attention)")
        tr = model.transformer
        views = dtype == torch.float32 and tr.wte.weight.dtype == torch.float32
        olds = iter(reuse._copies) if reuse is not None else None
        old_panels = iter(reuse._panels) if reuse is not None and c_linear else None
        self._copies: list[torch.Tensor] = []
        self._panels: list[kernels.Panels] = []

        def own(t: torch.Tensor, transpose: bool = False) -> torch.Tensor:
            src = t.detach().t() if transpose else t.detach()
            if views:
                return src
            dst = next(olds) if olds is not None else torch.empty(src.shape, dtype=dtype, device=src.device)
            self._copies.append(dst.copy_(src))
            return dst

        emulated = dtype == torch.bfloat16 and tr.wte.weight.device.type == "cpu" and kernels.emulate_bf16()
        native = dtype == torch.bfloat16 and not emulated and kernels.bf16_native()  # bf16 panels

        # C decode linears (`kernels.Panels`, one thread) or oneDNN's packed layout (or dense)
        def pack(w: torch.Tensor):
            if not c_linear:
                return kernels.dnn_pack(w, rows)
            old = next(old_panels, None) if old_panels is not None else None
            self._panels.append(kernels.Panels(w, old, bf16=native and w.shape[1] % 2 == 0))
            return self._panels[-1]

        def lin(conv) -> tuple[torch.Tensor, torch.Tensor]:  # Conv1D (in, out) -> packed (out, in), bias
            if emulated or c_linear:  # the packed copy of the (bf16) values is all that is kept
                return pack(conv.weight.detach().t().to(dtype)), own(conv.bias)
            return pack(own(conv.weight, True)), own(conv.bias)

        self.wte, self.wpe = own(tr.wte.weight), own(tr.wpe.weight)
        head = model.lm_head.weight  # (V, C), tied to wte in GPT-2
        self.head = pack(self.wte if head is tr.wte.weight else own(head))
        self.eps = cfg.layer_norm_epsilon
        self.n_head = cfg.n_head
        self.n_pos = cfg.n_positions
        self.d_model = cfg.n_embd
        act = cfg.activation_function  # GELU is fused into the MLP's first linear; others run after it
        self.gelu = "tanh" if act in gpt2.TANH_GELUS else "none" if act == "gelu" else None
        self.act = tr.h[0].mlp.act
        self.layers = [gpt2.Layer((own(blk.ln_1.weight), own(blk.ln_1.bias)), lin(blk.attn.c_attn),
                                  lin(blk.attn.c_proj), (own(blk.ln_2.weight), own(blk.ln_2.bias)), lin(blk.mlp.c_fc),
                                  lin(blk.mlp.c_proj), gpt2.attn_scale(cfg, i))
                       for i, blk in enumerate(tr.h)]
        self.lnf = (own(tr.ln_f.weight), own(tr.ln_f.bias))
        self.dtype = dtype
        self.step = None  # whole decode steps in one C call (`kernels.Step`) where it applies
        bf16_step = native and all(q.bf16 for q in self._panels)  # bf16 panels, fp32 everything else
        if (step and c_linear and (views or bf16_step) and self.gelu is not None
                and getattr(model.lm_head, "bias", None) is None):
            def f32(t):  # the step's own fp32 copies of bf16 position embeddings, norms and biases
                return t if isinstance(t, kernels.Panels) else t.float().contiguous()

            self.step = kernels.Step(
                self.wte, f32(self.wpe),
                [tuple(f32(t) for t in (*ly.ln1, *ly.qkv, *ly.proj, *ly.ln2, *ly.fc, *ly.out)) for ly in self.layers],
                [ly.scale for ly in self.layers], self.eps, self.gelu, tuple(map(f32, self.lnf)), self.head,
                self.n_head)

    @staticmethod
    def linear(x: torch.Tensor, w, b: torch.Tensor | None = None, gelu: str | None = None) -> torch.Tensor:
        """x (..., in) @ w.T + b -> (..., out), w packed by `kernels.Panels` or `kernels.dnn_pack`."""
        if isinstance(w, kernels.Panels):
            return kernels.panel_linear(x, w, b, gelu)
        return kernels.dnn_linear(x, w, b, gelu)

    @staticmethod
    def for_model(model, dtype: torch.dtype, rows: int) -> "_GPT2":
        """The sampler view of `model` in `dtype`, packed for `rows` decode rows; cached until a
        parameter changes (bf16 copies are then refreshed in place) or `rows` does (the packed
        layout depends on it, and with it the rounding: same calls, same results, as on resume).
        Writers that skip version counters (torch's fused AdamW) must bump them
        (`torch.autograd.graph.increment_version`, as `tinyreason.lm.optim.adamw` does)."""
        device = model.transformer.wte.weight.device
        step = kernels.choose.decode_step(device, dtype)
        c_linear = step or kernels.choose.decode_linear(device, dtype)
        key = (dtype, rows, (c_linear, step), tuple((p.data_ptr(), p._version) for p in model.parameters()))
        cached = _CASTS.get(model)
        if cached is None or cached[0] != key:
            reuse = cached[1] if cached is not None and cached[0][::2] == key[::2] else None
            cached = _CASTS[model] = (key, _GPT2(model, dtype, rows, reuse, c_linear, step))
        return cached[1]

    def kv_dtype(self, device) -> torch.dtype:
        """The K/V caches' dtype: on CPU float32 even for bf16 weights (the small batched
        attention matmuls are faster in fp32 there)."""
        return torch.float32 if torch.device(device).type == "cpu" else self.dtype

    def new_cache(self, n: int, length: int, device, kernel: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Zeroed K/V buffers (N, H, Tmax, D) per layer; `kernel`: the keys in the C decode
        attention's layout instead, tiles of 16 transposed keys (`kernels.key_tiles`)."""
        h, d = self.n_head, self.d_model // self.n_head
        kv_dtype = self.kv_dtype(device)
        k_shape = (n, h, kernels.key_slots(length) // 16, d, 16) if kernel else (n, h, length, d)
        return [(torch.zeros(k_shape, dtype=kv_dtype, device=device),
                 torch.zeros((n, h, length, d), dtype=kv_dtype, device=device)) for _ in self.layers]

    def forward(self, ids, pos, cache, start: int, key_ok, prefix: SharedPrefix | None = None, keep=None,
                rows=None) -> torch.Tensor:
        """Logits (N, V) float32 of the last position; writes K/V of slots [start, start+S).
        keep, rows: a decode step on `step` also writes its linear outputs there (`Step`).

        Decoding (S = 1) attends over the whole buffer, slots not yet written masked out:
        a contiguous (N, H, Tmax, D) operand takes the fast batched-matmul path, a
        [:start+1] slice of it does not (measured slower overall).
        With `prefix` (decode only), `cache` holds only the generated tokens' K/V and
        each row also attends to its group's one copy of the prompt K/V (`SharedPrefix`)."""
        n, s = ids.shape  # ids, pos: (N, S); key_ok: (N, Tmax) bool, False on padding and unwritten slots
        if s == 1 and self.step is not None and prefix is not None and prefix.kernel:
            return self.step(ids[:, 0], pos[:, 0], cache, start, prefix.kernel_kv(), prefix.row_group, prefix.pstart,
                             keep, rows)  # (N, V)
        end = start + s
        c = self.d_model
        kv_dtype = cache[0][0].dtype
        x = F.embedding(ids, self.wte) + F.embedding(pos, self.wpe)  # (N, S, C)
        if s > 1:  # prefill: fused SDPA with a boolean mask
            q_at = torch.arange(start, end, device=ids.device)[:, None]  # (S, 1)
            k_at = torch.arange(end, device=ids.device)[None, :]  # (1, end)
            # causal & not padding; a query always sees itself so padded rows never get an empty softmax
            mask = (key_ok[:, None, None, :end] & (k_at <= q_at)) | (k_at == q_at)  # (N, 1, S, end)
        elif prefix is not None:
            pass  # generated K/V are read as [:end] slices: no mask, every row has `end` tokens so far
        else:  # decode: plain matmuls, an additive mask built once per step for all layers
            ok = key_ok.clone()
            ok[:, end:] = False  # (N, Tmax) slots after this token are not written yet
            bias = torch.zeros(ok.shape, dtype=kv_dtype, device=ids.device).masked_fill_(~ok, float("-inf"))
            bias = bias[:, None, None, :]  # (N, 1, 1, Tmax)
        fused = s == 1 and prefix is not None and prefix.kernel  # decode attention in one C call

        def attend(i, qkv, scale):  # qkv (N, S, 3C) -> (N, S, C); writes the cache
            kc, vc = cache[i]
            qkv = qkv.to(kv_dtype)
            if fused:  # cache write and shared-prefix attention
                return prefix.attend_fused(i, qkv.view(n, 3 * c), kc, vc, start, scale).view(n, s, c).to(self.dtype)
            q, k, v = (t.view(n, s, self.n_head, -1).transpose(1, 2) for t in qkv.split(c, dim=-1))  # (N, H, S, D)
            kc[:, :, start:end] = k
            vc[:, :, start:end] = v
            if s > 1:
                a = F.scaled_dot_product_attention(q, kc[:, :, :end], vc[:, :, :end], attn_mask=mask, scale=scale)
            elif prefix is not None:
                a = prefix.attend(i, q, kc[:, :, :end], vc[:, :, :end], scale)  # (N, H, 1, D)
            else:
                att = torch.matmul(q, kc.transpose(-1, -2)) * scale + bias  # (N, H, 1, Tmax)
                a = torch.matmul(torch.softmax(att, -1), vc)  # (N, H, 1, D)
            return a.transpose(1, 2).reshape(n, s, c).to(self.dtype)  # (N, S, C)

        def mlp_in(h, wb, i):
            return self.linear(h, *wb, gelu=self.gelu) if self.gelu else self.act(self.linear(h, *wb))

        x = gpt2.blocks(x, self.layers, self.eps, attend, lambda h, wb, i, name: self.linear(h, *wb), mlp_in)
        x = F.layer_norm(x[:, -1], (c,), *self.lnf, self.eps)  # (N, C)
        return self.linear(x, self.head).float()  # (N, V)


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
    net = _GPT2.for_model(model, dtype, b * g)
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

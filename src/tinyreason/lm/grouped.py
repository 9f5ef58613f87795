"""Completion log-probs of G completions per prompt with the prompt computed once per group.

A GRPO batch holds G completions of each prompt. A plain forward (TRL's) runs every
row over prompt + completion, so each prompt is processed G times, in the forward pass,
the backward pass and the reference model alike. Here each prompt goes through the
network once; the G completion rows attend to its keys/values (repeated per row), and
gradients from all G rows flow back into the one prompt pass. The math is GPT-2's
(`GPT2LMHeadModel` modules, weights and autocast as they are); only the batching differs,
so results equal a full forward of the concatenated sequences up to float rounding
(tested). All tokens go through each linear layer as one flat matrix; in fp32 on CPU the
linears, LM head included, run forward and backward on oneDNN (`tinyreason.lm.onednn`), and
bf16 is emulated by fp32 GEMMs on CPUs without a bf16 GEMM (same values, `onednn.Bf16Linear`).
Log-probs come from `tinyreason.lm.token_logprobs` (row chunks, no full float32 logits),
and the tied embedding's gradient is added sparsely into the LM head's.

Departures from the Hugging Face forward: dropout is never applied (GRPO trains with
dropout off, as TRL's `disable_dropout=True`); training-mode models with dropout > 0 are
refused rather than silently changed. Under bf16 autocast on CPU attention is computed
as HF's eager attention computes it there (bf16 scores and softmax), not by SDPA's flash
kernel (fp32 scores inside), whose CPU backward is 3-4x slower at these shapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tinyreason.lm import onednn
from tinyreason.lm.grpo import logprobs_from_logits

_TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def _linear(conv, x: torch.Tensor) -> torch.Tensor:
    """A GPT-2 Conv1D layer (weight (in, out)) applied to x (M, in); on oneDNN where usable."""
    return onednn.linear_grad(x, conv.weight.t(), conv.bias)


def _attention(q, k, v, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale, masked) v for q (.., Sq, D), k/v (.., Sk, D), mask (.., Sq, Sk) bool.

    bf16 on CPU: bf16 scores and softmax, as Hugging Face's eager GPT-2 attention computes
    under CPU autocast (which keeps softmax in bf16); forward + backward 3-4x faster there
    than the CPU flash kernel of SDPA at GRPO shapes. Otherwise SDPA (flash)."""
    if q.dtype != torch.bfloat16 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
    w = torch.softmax(_bf16_matmul(q, k.transpose(-1, -2)) * scale + bias, -1)  # (.., Sq, Sk)
    return _bf16_matmul(w, v)  # (.., Sq, D)


def _bf16_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for bf16 CPU tensors: a bf16 matmul, or on CPUs without a oneDNN bf16 GEMM the
    same values (fp32 accumulation, bf16 result, bf16 gradients) from an fp32 matmul of the
    widened operands (`onednn.emulate_bf16`; ~10x faster there)."""
    if not onednn.emulate_bf16():
        return torch.matmul(a, b)
    with torch.autocast("cpu", enabled=False):
        return torch.matmul(a.float(), b.float()).to(torch.bfloat16)


def _heads(t: torch.Tensor, n_head: int) -> torch.Tensor:
    b, s, c = t.shape
    return t.view(b, s, n_head, c // n_head).transpose(1, 2)  # (B, H, S, D)


def grouped_logprobs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    group_size: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (N, T) of `completion_ids` (N, T) after their prompts, and entropies (N, T)
    when asked (differentiable only with `entropy_grad`).

    prompt_ids/prompt_mask: (B, P) left-padded, one row per group; row r of the
    completions answers prompt r // group_size. Padding after a completion's end is fed
    as tokens (it only follows real tokens, so causality keeps it out of their results).
    Logits are divided by `temperature` as in TRL. Position ids count real tokens.
    """
    cfg = model.config
    if model.training and max(cfg.attn_pdrop, cfg.resid_pdrop, cfg.embd_pdrop) > 0:
        raise ValueError("grouped_logprobs applies no dropout: call model.eval() (GRPO trains with dropout off)")
    tr = model.transformer
    b, p = prompt_ids.shape
    n, t = completion_ids.shape
    g, c, nh = group_size, cfg.n_embd, cfg.n_head
    if n != b * g:
        raise ValueError(f"{n} completion rows for {b} prompts x group size {g}")
    dev = prompt_ids.device
    n_real = prompt_mask.sum(-1)  # (B,)
    p_pos = (prompt_mask.cumsum(-1) - 1).clamp(min=0)  # (B, P)
    c_pos = n_real.repeat_interleave(g)[:, None] + torch.arange(t, device=dev)[None, :]  # (N, T)
    ids = torch.cat([prompt_ids.reshape(-1), completion_ids.reshape(-1)])  # (B*P + N*T,)
    pos = torch.cat([p_pos.reshape(-1), c_pos.reshape(-1)])  # (B*P + N*T,)
    # tied LM head (GPT-2): its dense gradient reaches the shared weight first; a sparse embedding
    # gradient is then added into it in place, instead of through a second zero-filled (V, C) tensor
    tied = model.lm_head.weight is tr.wte.weight
    x = F.embedding(ids, tr.wte.weight, sparse=tied) + tr.wpe(pos)  # (B*P + N*T, C)

    # prompt rows: causal over real prompt tokens (a query always sees itself: no empty softmax on padding)
    ar_p, ar_t = torch.arange(p, device=dev), torch.arange(t, device=dev)
    pm = prompt_mask.bool()
    mask_p = (pm[:, None, None, :] & (ar_p[None, :] <= ar_p[:, None])) | (ar_p[None, :] == ar_p[:, None])  # (B, 1, P, P)
    # completion rows: their prompt's real tokens, then causal over the completion
    mask_c = torch.cat([pm.repeat_interleave(g, 0)[:, None, None, :].expand(n, 1, t, p),
                        (ar_t[None, :] <= ar_t[:, None]).expand(n, 1, t, t)], dim=-1)  # (N, 1, T, P+T)
    act = (lambda h: F.gelu(h, approximate="tanh")) if cfg.activation_function in _TANH_GELUS else None

    for i, blk in enumerate(tr.h):
        scale = (c // nh) ** -0.5 if cfg.scale_attn_weights else 1.0
        if cfg.scale_attn_by_inverse_layer_idx:
            scale /= float(i + 1)
        qkv = _linear(blk.attn.c_attn, blk.ln_1(x))  # (B*P + N*T, 3C)
        q, k, v = qkv.split(c, dim=-1)
        qp, kp, vp = (_heads(z[: b * p].view(b, p, c), nh) for z in (q, k, v))  # (B, H, P, D)
        qc, kc, vc = (_heads(z[b * p:].view(n, t, c), nh) for z in (q, k, v))  # (N, H, T, D)
        ap = _attention(qp, kp, vp, mask_p, scale)  # (B, H, P, D)
        k_all = torch.cat([kp.repeat_interleave(g, 0), kc], dim=2)  # (N, H, P+T, D)
        v_all = torch.cat([vp.repeat_interleave(g, 0), vc], dim=2)  # (N, H, P+T, D)
        ac = _attention(qc, k_all, v_all, mask_c, scale)  # (N, H, T, D)
        a = torch.cat([ap.transpose(1, 2).reshape(b * p, c), ac.transpose(1, 2).reshape(n * t, c)])  # (B*P + N*T, C)
        x = x + _linear(blk.attn.c_proj, a)
        h = _linear(blk.mlp.c_fc, blk.ln_2(x))
        x = x + _linear(blk.mlp.c_proj, act(h) if act is not None else blk.mlp.act(h))

    # position P-1 of each prompt predicts completion token 0; completion position j predicts token j+1
    last_p = x[: b * p].view(b, p, c)[:, -1].repeat_interleave(g, 0)[:, None]  # (N, 1, C)
    h = torch.cat([last_p, x[b * p:].view(n, t, c)[:, :-1]], dim=1)  # (N, T, C)
    logits = onednn.linear_grad(tr.ln_f(h).reshape(n * t, c), model.lm_head.weight, model.lm_head.bias)
    logits = logits.view(n, t, -1)  # (N, T, V)
    return logprobs_from_logits(logits, completion_ids, temperature, with_entropy, entropy_grad)

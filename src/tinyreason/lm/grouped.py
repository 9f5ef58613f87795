"""Completion log-probs of G completions per prompt with the prompt computed once per group.

A GRPO batch holds G completions of each prompt. A plain forward (TRL's) runs every
row over prompt + completion, so each prompt is processed G times, in the forward pass,
the backward pass and the reference model alike. Here each prompt goes through the
network once; the G completion rows attend to its keys/values (repeated per row), and
gradients from all G rows flow back into the one prompt pass. The math is GPT-2's
(`GPT2LMHeadModel` modules, weights and autocast as they are); only the batching differs,
so results equal a full forward of the concatenated sequences up to float rounding
(tested). The blocks are the one GPT-2 forward (`tinyreason.lm.gpt2.blocks`); this module
supplies its batching and attention. All tokens go through each linear layer as one flat
matrix (`gpt2.linear_grad`: on CPU oneDNN, or bf16 emulated by fp32 GEMMs where the CPU has no
bf16 GEMM, as `tinyreason.kernels.choose` decides). The completion rows' attention is one C call
per layer on CPU where `kernels.choose.group_attention` (no repeated prompt keys, no masked
scores computed; fp32, on bf16 q/k/v widened under autocast), else SDPA over the repeated
prompt K/V.
Log-probs come from `tinyreason.lm.token_logprobs` (row chunks, no full float32 logits),
and the tied embedding's gradient is added sparsely into the LM head's.

Departures from the Hugging Face forward: dropout is never applied (GRPO trains with
dropout off, as TRL's `disable_dropout=True`); training-mode models with dropout > 0 are
refused rather than silently changed. Under bf16 autocast attention keeps its scores and
softmax in fp32 (SDPA's flash kernel, HF's default, or the C kernel), where HF's eager
attention rounds the scores to bf16 (see `gpt2.attention`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tinyreason import kernels
from tinyreason.lm import gpt2
from tinyreason.lm.grpo import logprobs_from_logits
from tinyreason.lm.replay import Activations, kept_attention, kept_linear
from tinyreason.lm.shared_prefix import prompt_starts


def grouped_logprobs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    group_size: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = False,
    kept: Activations | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (N, T) of `completion_ids` (N, T) after their prompts, and entropies (N, T)
    when asked (differentiable only with `entropy_grad`).

    prompt_ids/prompt_mask: (B, P) left-padded, one row per group; row r of the
    completions answers prompt r // group_size. Padding after a completion's end is fed
    as tokens (it only follows real tokens, so causality keeps it out of their results).
    The last completion token is not fed at all: its hidden state predicts nothing (a plain
    forward, TRL's, computes it and drops its logits), so every pass is T - 1 completion
    positions long. Logits are divided by `temperature` as in TRL. Position ids count real tokens.
    kept: the rollout's own linear outputs and attention results for these completion rows
    (`replay.Activations`, fp32 without autocast): the completion rows' forward GEMMs and
    attention are taken from it, not run.
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
    if kept is not None and (torch.is_autocast_enabled(prompt_ids.device.type) or kept.logits.shape[0] != n
                             or kept.capacity < t - 1 or len(kept.layers) != len(model.transformer.h)):
        raise ValueError("kept activations do not fit this batch (or autocast is on)")
    dev = prompt_ids.device
    targets, t = completion_ids, t - 1  # t = T' = T - 1 completion positions fed
    completion_ids = completion_ids[:, :t]  # (N, T')
    n_real = prompt_mask.sum(-1)  # (B,)
    p_pos = (prompt_mask.cumsum(-1) - 1).clamp(min=0)  # (B, P)
    c_pos = n_real.repeat_interleave(g)[:, None] + torch.arange(t, device=dev)[None, :]  # (N, T')
    ids = torch.cat([prompt_ids.reshape(-1), completion_ids.reshape(-1)])  # (B*P + N*T',)
    pos = torch.cat([p_pos.reshape(-1), c_pos.reshape(-1)])  # (B*P + N*T',)
    # tied LM head (GPT-2): the embedding's gradient is sparse, so no second zero-filled (V, C)
    # tensor is made for it; autograd sums it with the head's dense gradient (one (V, C) add, not in
    # place)
    tied = model.lm_head.weight is tr.wte.weight
    x = F.embedding(ids, tr.wte.weight, sparse=tied) + tr.wpe(pos)  # (B*P + N*T', C)

    # prompt rows: causal over real prompt tokens (a query always sees itself: no empty softmax on padding)
    ar_p, ar_t = torch.arange(p, device=dev), torch.arange(t, device=dev)
    pm = prompt_mask.bool()
    mask_p = (pm[:, None, None, :] & (ar_p[None, :] <= ar_p[:, None])) | (ar_p[None, :] == ar_p[:, None])  # (B, 1, P, P)
    # completion rows: their prompt's real tokens, then causal over the completion; in C where it applies
    starts = prompt_starts(prompt_mask) if t and kernels.choose.group_attention(x, nh) else None  # (B,) or None
    if starts is None:
        mask_c = torch.cat([pm.repeat_interleave(g, 0)[:, None, None, :].expand(n, 1, t, p),
                            (ar_t[None, :] <= ar_t[:, None]).expand(n, 1, t, t)], dim=-1)  # (N, 1, T', P+T')
        if kept is not None:  # the same mask as an additive one, for the kept attention's backward (every layer)
            bias_c = torch.zeros(mask_c.shape, dtype=x.dtype, device=dev).masked_fill_(~mask_c, float("-inf"))
    bp = b * p  # prompt rows first: computed; the completion rows' outputs may be kept ones

    def attend(i, qkv, scale):  # qkv (B*P + N*T', 3C) -> (B*P + N*T', C)
        q, k, v = qkv.split(c, dim=-1)
        qp, kp, vp = (gpt2.heads(z[: b * p].view(b, p, c), nh) for z in (q, k, v))  # (B, H, P, D)
        ap = gpt2.attention(qp, kp, vp, mask_p, scale)  # (B, H, P, D)
        att = None if kept is None else (kept.layers[i][Activations.ATT], kept.layers[i][Activations.LSE])
        if starts is not None:  # the rollout's attention output where kept; the C backward either way
            ac = kernels.completion_attention(qkv.float(), starts, bp, p, g, t, nh, scale, att)  # (N*T', C)
            ac = ac.to(ap.dtype)  # bf16 under autocast, as SDPA's output
        else:
            qc, kc, vc = (gpt2.heads(z[b * p:].view(n, t, c), nh) for z in (q, k, v))  # (N, H, T', D)
            k_all = torch.cat([kp.repeat_interleave(g, 0), kc], dim=2)  # (N, H, P+T', D)
            v_all = torch.cat([vp.repeat_interleave(g, 0), vc], dim=2)  # (N, H, P+T', D)
            if kept is None:
                ac = gpt2.attention(qc, k_all, v_all, mask_c, scale)  # (N, H, T', D)
            else:  # the rollout's attention output; SDPA's backward
                ac = kept_attention(qc, k_all, v_all, bias_c, scale, att[0][:, :t], att[1][:, :t])
            ac = ac.transpose(1, 2).reshape(n * t, c)  # (N*T', C)
        return torch.cat([ap.transpose(1, 2).reshape(b * p, c), ac])  # (B*P + N*T', C)

    def lin(x, wb, i: int, name: str):  # the linear of block i whose output is kept under `name`
        return kept_linear(x, *wb, None if kept is None else kept.layers[i][Activations.INDEX[name]], bp)

    act = gpt2.mlp_act(cfg, tr.h[0])
    x = gpt2.blocks(x, gpt2.model_layers(model), cfg.layer_norm_epsilon, attend, lin,
                    lambda h, wb, i: act(lin(h, wb, i, "fc")))

    # position P-1 of each prompt predicts completion token 0; completion position j predicts token j+1.
    # Rows: the N prompt ends first, then the N*T' completion positions (the layout of kept logits)
    last_p = x[:bp].view(b, p, c)[:, -1].repeat_interleave(g, 0)  # (N, C)
    h = tr.ln_f(torch.cat([last_p, x[bp:]]))  # (N + N*T', C)
    if kept is None:
        logits = gpt2.linear_grad(h, model.lm_head.weight, model.lm_head.bias, head=True)  # (N + N*T', V)
    else:
        logits = kept_linear(h, model.lm_head.weight, model.lm_head.bias, kept.logits, n)
    order = torch.cat([targets[:, 0], targets[:, 1:].reshape(-1)])  # (N + N*T',) targets in that row order
    lp, ent = logprobs_from_logits(logits, order, temperature, with_entropy, entropy_grad)  # (N + N*T',) each

    def back(z):  # (N + N*T',) -> (N, T)
        return torch.cat([z[:n, None], z[n:].view(n, t)], dim=1)

    return back(lp), back(ent) if with_entropy else None

"""GPT-2 causal-LM loss for supervised training (`chess sft`), on the trainers' own forward.

The math of `GPT2LMHeadModel` - its modules and weights, dropout included - with what the
GRPO update (`tinyreason.lm.grouped`) does for speed, on the one GPT-2 forward
(`tinyreason.lm.gpt2.blocks`): every linear, LM head included, runs over all tokens as one
flat matrix (on oneDNN in fp32 on CPU, bf16 emulated by fp32 GEMMs on CPUs without a bf16
GEMM: `tinyreason.kernels`), GPT-2's tanh-GELU is one kernel, attention is SDPA (fp32 scores
for bf16 too, `gpt2.attention`), the
cross entropy comes from `token_logprobs` in row chunks (no full float32 copy of the
logits) and the tied embedding's gradient is added sparsely into the LM head's.
`benchmarks/train_mfu.py` measures the step against Hugging Face's forward.

Departure from HF's forward, not from its results: attention is causal with no padding
mask. Rows are packed (no padding) or right-padded (refused otherwise), so every real
token sees exactly the tokens HF lets it see; padding positions, which carry no loss, see
the tokens before them instead of nothing. Position ids count from 0 in every row, as HF's
do when none are given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tinyreason.lm import gpt2
from tinyreason.lm.token_logprobs import token_logprobs


def hidden_states(model, ids: torch.Tensor) -> torch.Tensor:
    """Final hidden states (B*L, C), after `ln_f`, of a GPT2LMHeadModel on rows ids (B, L)
    under causal attention; dropout as the model's config says when it is in training mode."""
    cfg, tr = model.config, model.transformer
    b, l = ids.shape
    c, nh = cfg.n_embd, cfg.n_head
    drop = model.training
    pos = torch.arange(l, device=ids.device)
    tied = model.lm_head.weight is tr.wte.weight  # sparse embedding gradient, added into the head's
    x = (F.embedding(ids, tr.wte.weight, sparse=tied) + tr.wpe(pos)).reshape(b * l, c)  # (B*L, C)
    x = F.dropout(x, cfg.embd_pdrop, drop)

    def attend(i, qkv, scale):  # qkv (B*L, 3C) -> (B*L, C)
        q, k, v = (gpt2.heads(z.view(b, l, c), nh) for z in qkv.split(c, dim=-1))  # (B, H, L, D)
        a = gpt2.attention(q, k, v, None, scale, cfg.attn_pdrop if drop else 0.0)  # (B, H, L, D)
        return a.transpose(1, 2).reshape(b * l, c)

    act = gpt2.mlp_act(cfg, tr.h[0])
    x = gpt2.blocks(x, gpt2.model_layers(model), cfg.layer_norm_epsilon, attend,
                    lambda h, wb, i, j: gpt2.linear_grad(h, *wb), lambda h, wb, i: act(gpt2.linear_grad(h, *wb)),
                    (lambda y: F.dropout(y, cfg.resid_pdrop, True)) if drop else None)
    return tr.ln_f(x)  # (B*L, C)


def lm_loss_sum(model, ids: torch.Tensor, attn: torch.Tensor, loss_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross entropy over the targets that `loss_mask` (B, L) and `attn`
    (B, L, 1 = real token, right padding only) keep, and the number of those targets."""
    if bool((attn[:, 1:] > attn[:, :-1]).any()):
        raise ValueError("lm_loss_sum takes right-padded rows (a real token after padding)")
    b, l = ids.shape
    h = hidden_states(model, ids).view(b, l, -1)[:, :-1].reshape(b * (l - 1), -1)  # (B*(L-1), C)
    logits = gpt2.linear_grad(h, model.lm_head.weight, model.lm_head.bias, head=True)  # (B*(L-1), V)
    targets, weights = ids[:, 1:], loss_mask[:, 1:] * attn[:, 1:]  # (B, L-1)
    ce = -token_logprobs(logits, targets.reshape(-1))[0].view(b, l - 1)  # (B, L-1)
    return (ce * weights).sum(), weights.sum()

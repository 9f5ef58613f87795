"""GPT-2 causal-LM loss for supervised training (`chess sft`), on the trainers' own forward.

The math of `GPT2LMHeadModel` - its modules and weights, dropout included - with what the
GRPO update (`tinyreason.lm.grouped`) does for speed: every linear, LM head included, runs
over all tokens as one flat matrix on oneDNN in fp32 on CPU (bf16 emulated by fp32 GEMMs on
CPUs without a bf16 GEMM, where PyTorch's bf16 kernels are several times slower), GPT-2's
tanh-GELU is one kernel, attention is SDPA (fp32 scores for bf16 too, `gpt2_ops`), the
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

from tinyreason.lm import onednn
from tinyreason.lm.gpt2_ops import attention, attn_scale, conv_linear, heads, mlp_act
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
    for i, blk in enumerate(tr.h):
        qkv = conv_linear(blk.attn.c_attn, blk.ln_1(x))  # (B*L, 3C)
        q, k, v = (heads(z.view(b, l, c), nh) for z in qkv.split(c, dim=-1))  # (B, H, L, D)
        a = attention(q, k, v, None, attn_scale(cfg, i), cfg.attn_pdrop if drop else 0.0)  # (B, H, L, D)
        a = a.transpose(1, 2).reshape(b * l, c)  # (B*L, C)
        x = x + F.dropout(conv_linear(blk.attn.c_proj, a), cfg.resid_pdrop, drop)
        h = conv_linear(blk.mlp.c_fc, blk.ln_2(x))  # (B*L, 4C)
        x = x + F.dropout(conv_linear(blk.mlp.c_proj, mlp_act(cfg, blk)(h)), cfg.resid_pdrop, drop)
    return tr.ln_f(x)  # (B*L, C)


def lm_loss_sum(model, ids: torch.Tensor, attn: torch.Tensor, loss_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross entropy over the targets that `loss_mask` (B, L) and `attn`
    (B, L, 1 = real token, right padding only) keep, and the number of those targets."""
    if bool((attn[:, 1:] > attn[:, :-1]).any()):
        raise ValueError("lm_loss_sum takes right-padded rows (a real token after padding)")
    b, l = ids.shape
    h = hidden_states(model, ids).view(b, l, -1)[:, :-1].reshape(b * (l - 1), -1)  # (B*(L-1), C)
    logits = onednn.linear_grad(h, model.lm_head.weight, model.lm_head.bias, head=True)  # (B*(L-1), V)
    targets, weights = ids[:, 1:], loss_mask[:, 1:] * attn[:, 1:]  # (B, L-1)
    ce = -token_logprobs(logits, targets.reshape(-1))[0].view(b, l - 1)  # (B, L-1)
    return (ce * weights).sum(), weights.sum()

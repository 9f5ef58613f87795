"""The completion tokens' attention in a grouped GRPO forward (`grouped.grouped_logprobs`), in C.

Completion token i of row n attends to its group's real prompt keys and to its own row's
completion keys 0..i. The PyTorch route repeats the prompt's keys and values for each of the
G rows, concatenates them with the row's own, builds a (N, 1, T, P + T) mask and runs SDPA's
flash kernel, which computes every masked score; its backward sums the repeats' gradients back.
`group_attention.c` reads q, k and v in place from the c_attn output (tokens, 3C), computes
only the scores a block of queries can see, and writes the gradients of q, k and v (the
prompt's summed over its group) into one (tokens, 3C) gradient. Same math as SDPA's flash
attention forward and backward (log-sum-exp kept for the backward), up to float rounding
(tested). fp32 on CPU (under bf16 autocast `grouped` widens the bf16 q/k/v for it: scores
and softmax in fp32, as SDPA's flash kernel keeps them), head size 64 (every GPT-2's),
left-padded prompts, where the C kernels are compiled (`_switch.group_attention`); elsewhere
the forward keeps SDPA. `flash_attention_backward`: SDPA's CPU flash-attention backward for
attention outputs given from elsewhere (kept rollout activations), probed, with a plain fallback.
"""

from __future__ import annotations

import torch

from tinyreason.kernels import _cext, _probe


def completion_attention(qkv: torch.Tensor, starts: torch.Tensor, n_prompt_rows: int, p: int, g: int, t: int,
                         n_head: int, scale: float,
                         kept: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The completion rows' attention output (N*T, C) for qkv (B*P + N*T, 3C): B*P prompt-token
    rows (prompt b's slot j at b * P + j), then N = B*G completion rows of T tokens; starts (B,)
    from `shared_prefix.prompt_starts`; scale multiplies the scores. kept: the rollout's own
    attention outputs (N, >= T, C) and log-sum-exps (N, >= T, H) for these rows
    (`replay.Activations`), returned instead of computed; the backward is the same either way."""
    if not _cext.loaded():
        raise RuntimeError("group_attention needs the C kernels, which are not compiled here "
                           "(see `_switch.group_attention`)")
    if not scale > 0:
        raise ValueError(f"attention scale {scale}: the kernel takes a positive one")
    kept_out, kept_lse = kept if kept is not None else (None, None)
    return _GroupAttention.apply(qkv, starts, kept_out, kept_lse, n_prompt_rows, p, g, t, n_head, scale)


class _GroupAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, starts, kept_out, kept_lse, bp: int, p: int, g: int, t: int, n_head: int, scale: float):
        qkv = qkv.contiguous()  # (B*P + N*T, 3C)
        c = qkv.shape[1] // 3
        n = (qkv.shape[0] - bp) // t
        if n * t != qkv.shape[0] - bp or bp != starts.numel() * p or n != starts.numel() * g:
            raise ValueError(f"qkv {tuple(qkv.shape)} does not hold {starts.numel()} prompts of {p} and their "
                             f"{g} completions of {t} tokens")
        if kept_out is None:
            out, lse = qkv.new_empty(n, t, c), qkv.new_empty(n, t, n_head)  # (N, T, C), (N, T, H)
            if _cext._LIB.group_attention_fwd(qkv.data_ptr(), n, t, n_head, bp, p, g, starts.data_ptr(), scale,
                                                      out.data_ptr(), t * c, lse.data_ptr(), t * n_head):
                raise MemoryError("group_attention_fwd: out of memory")
            y = out.view(n * t, c)
        else:
            out, lse = kept_out[:, :t], kept_lse[:, :t]  # (N, T, C), (N, T, H) views, rows Tk apart
            if out.stride(1) != c or out.stride(2) != 1 or lse.stride(1) != n_head or lse.stride(2) != 1:
                raise ValueError("kept attention outputs are not (N, Tk, C) and (N, Tk, H) row-major")
            y = out.reshape(n * t, c).clone()
        ctx.save_for_backward(qkv, starts, out, lse)
        ctx.dims = (bp, p, g, t, n_head, scale)
        return y  # (N*T, C)

    @staticmethod
    def backward(ctx, gy):  # gy (N*T, C)
        qkv, starts, out, lse = ctx.saved_tensors
        bp, p, g, t, n_head, scale = ctx.dims
        n = (qkv.shape[0] - bp) // t
        gy = gy.contiguous()
        dqkv = torch.zeros_like(qkv)  # (B*P + N*T, 3C); the prompt rows' q gradient stays 0 here
        if _cext._LIB.group_attention_bwd(qkv.data_ptr(), n, t, n_head, bp, p, g, starts.data_ptr(), scale,
                                                  out.data_ptr(), out.stride(0), lse.data_ptr(), lse.stride(0),
                                                  gy.data_ptr(), dqkv.data_ptr()):
            raise MemoryError("group_attention_bwd: out of memory")
        return dqkv, None, None, None, None, None, None, None, None, None


def _flash_backward_op(g, q, k, v, out, lse, bias, scale):
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        g, q, k, v, out, lse, 0.0, False, attn_mask=bias, scale=scale)


def _plain_backward(g, q, k, v, bias, scale):
    """Gradients of softmax(q k^T * scale + bias) v by autograd through the plain math."""
    with torch.enable_grad():
        qq, kk, vv = (z.detach().requires_grad_() for z in (q, k, v))
        att = torch.softmax(torch.matmul(qq, kk.transpose(-1, -2)) * scale + bias, -1)  # (N, H, T, S)
        return torch.autograd.grad(torch.matmul(att, vv), (qq, kk, vv), g)


def flash_backward_ok() -> bool:
    """True when `aten._scaled_dot_product_flash_attention_for_cpu_backward` passes its probe: on
    tiny tensors, from SDPA's own forward outputs, the gradients of the plain math."""
    def real():
        q, k, v, bias, g = _probe_inputs()
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, attn_mask=bias,
                                                                             scale=0.5)
        return _flash_backward_op(g, q, k, v, out, lse, bias, 0.5)

    def plain():
        q, k, v, bias, g = _probe_inputs()
        return _plain_backward(g, q, k, v, bias, 0.5)

    return _probe.passes("torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward", real, plain)


def _probe_inputs():
    gen = torch.Generator().manual_seed(0)
    q, k, v, g = (torch.randn(1, 2, 3, 4, generator=gen) for _ in range(4))  # (N, H, T, D)
    bias = torch.zeros(1, 1, 3, 3).masked_fill_(torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf"))
    return q, k, v, bias, g


def flash_attention_backward(g, q, k, v, out, lse, bias, scale: float):
    """Gradients (q, k, v) of out = softmax(q k^T * scale + bias) v for q (N, H, T, D), k/v (N, H, S, D),
    bias (N, 1, T, S) additive, out (N, H, T, D) and its log-sum-exps lse (N, H, T), fp32 CPU: SDPA's
    CPU flash-attention backward (recomputes the softmax from q, k and lse) where its probe passes,
    else autograd through the plain math."""
    if flash_backward_ok():
        return _flash_backward_op(g.contiguous(), q, k, v, out, lse, bias, scale)
    return _plain_backward(g, q, k, v, bias, scale)

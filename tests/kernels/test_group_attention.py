"""The C attention of a grouped batch's completion tokens equals SDPA over the repeated prompt
keys and values with the grouped forward's mask: outputs, log-sum-exps and gradients."""

import pytest
import torch
import torch.nn.functional as F

from tinyreason import kernels
from tinyreason.kernels import _cext as cext
from tinyreason.kernels import _group_attention as group_attention
from tinyreason.kernels import _switch
from tinyreason.lm.grouped import grouped_logprobs
from tinyreason.lm.model import random_model
from tinyreason.lm.shared_prefix import prompt_starts

pytestmark = pytest.mark.kernels  # each test compares a kernel with its plain path (off: skipped)

needs_kernel = pytest.mark.skipif(not cext.loaded(), reason="no C compiler: the kernels are not built")
# every test runs on one torch thread (conftest), which the kernel serves


def _reference(qkv, prompt_mask, g, t, h, scale):
    """SDPA route of `grouped` for the completion rows: (N*T, C) output and the log-sum-exps (N, T, H)."""
    b, p = prompt_mask.shape
    c = qkv.shape[1] // 3
    n = b * g
    q, k, v = qkv.split(c, dim=-1)

    def heads(z, rows, length):
        return z.reshape(rows, length, h, c // h).transpose(1, 2)  # (rows, H, length, D)

    qc, kc, vc = (heads(z[b * p:], n, t) for z in (q, k, v))
    kp, vp = (heads(z[: b * p], b, p).repeat_interleave(g, 0) for z in (k, v))
    ar = torch.arange(t)
    mask = torch.cat([prompt_mask.bool().repeat_interleave(g, 0)[:, None, None, :].expand(n, 1, t, p),
                      (ar[None, :] <= ar[:, None]).expand(n, 1, t, t)], dim=-1)  # (N, 1, T, P+T)
    k_all, v_all = torch.cat([kp, kc], 2), torch.cat([vp, vc], 2)
    out = F.scaled_dot_product_attention(qc, k_all, v_all, attn_mask=mask, scale=scale)  # (N, H, T, D)
    s = (qc @ k_all.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf"))
    return out.transpose(1, 2).reshape(n * t, c), torch.logsumexp(s, -1).transpose(1, 2)


@needs_kernel
@pytest.mark.parametrize("b,g,p,t,h", [(3, 3, 9, 11, 2), (1, 8, 20, 37, 1), (2, 1, 5, 4, 3), (2, 2, 3, 1, 1)])
def test_completion_attention_equals_sdpa_with_the_grouped_mask(b, g, p, t, h):
    torch.manual_seed(0)
    pad = [0, 3, p - 1][:b]  # none, some, all but one slot padded (left)
    prompt_mask = (torch.arange(p)[None, :] >= torch.tensor(pad)[:, None]).long()  # (B, P)
    c = 64 * h
    qkv = torch.randn(b * p + b * g * t, 3 * c, dtype=torch.float64).float().requires_grad_()
    scale = 0.125 / 3
    starts = prompt_starts(prompt_mask)
    assert starts.tolist() == pad
    got = group_attention.completion_attention(qkv, starts, b * p, p, g, t, h, scale)
    ref, ref_lse = _reference(qkv, prompt_mask, g, t, h, scale)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)
    gy = torch.randn_like(got)
    (d_got,) = torch.autograd.grad(got, qkv, gy)
    (d_ref,) = torch.autograd.grad(ref, qkv, gy)
    torch.testing.assert_close(d_got, d_ref, atol=5e-5, rtol=1e-4)
    assert d_got[: b * p, :c].abs().max() == 0  # prompt queries take no part here

    # given the output and log-sum-exps (a rollout's kept ones, in wider stores): the same gradient
    n, tk = b * g, t + 2
    kept_out, kept_lse = torch.zeros(n, tk, c), torch.zeros(n, tk, h)
    kept_out[:, :t] = ref.detach().view(n, t, c)
    kept_lse[:, :t] = ref_lse.detach()
    got_k = group_attention.completion_attention(qkv, starts, b * p, p, g, t, h, scale, (kept_out, kept_lse))
    torch.testing.assert_close(got_k, ref)
    (d_kept,) = torch.autograd.grad(got_k, qkv, gy)
    torch.testing.assert_close(d_kept, d_ref, atol=5e-5, rtol=1e-4)


def test_only_left_padded_prompts_take_the_kernel():
    assert prompt_starts(torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])).tolist() == [2, 0]
    assert prompt_starts(torch.tensor([[1, 1, 0, 0]])) is None  # right padding
    assert prompt_starts(torch.tensor([[0, 1, 0, 1]])) is None
    x = torch.zeros(3, 128)
    assert _switch.group_attention(x, 2) == cext.loaded()
    assert not _switch.group_attention(x, 4)  # head size 32
    assert not _switch.group_attention(x.double(), 2)
    torch.set_num_threads(3)
    assert not _switch.group_attention(x, 2)  # SDPA's threads win


@needs_kernel
def test_grouped_logprobs_and_gradients_with_and_without_the_kernel(monkeypatch):
    model = random_model(None, seed=4, vocab_size=17, n_layer=2, n_embd=128, n_head=2, n_positions=64)
    model.eval()
    prompt_ids = torch.tensor([[0, 0, 5, 6, 7], [3, 4, 5, 6, 7]])
    prompt_mask = (prompt_ids != 0).long()
    completion_ids = torch.randint(1, 17, (6, 8), generator=torch.Generator().manual_seed(0))
    results = []
    calls = []
    real = group_attention.completion_attention
    monkeypatch.setattr(kernels, "completion_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    for on in (False, True):
        monkeypatch.setitem(_switch.FORCED, "group_attention", on)
        model.zero_grad()
        lp, ent = grouped_logprobs(model, prompt_ids, prompt_mask, completion_ids, 3, with_entropy=True)
        (lp.sum() + 0.1 * ent.sum()).backward()
        results.append((lp.detach(), ent.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}))
    assert len(calls) == 2  # the kernel ran in both layers when enabled, not at all otherwise
    (lp0, ent0, g0), (lp1, ent1, g1) = results
    torch.testing.assert_close(lp1, lp0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent1, ent0, atol=1e-5, rtol=1e-5)
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], atol=1e-4, rtol=1e-4, msg=k)

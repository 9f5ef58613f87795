"""Shared-prompt forward: equals a plain forward of each prompt+completion row (values and gradients)."""

import pytest
import torch

from tinyreason.lm import grpo
from tinyreason.lm.grouped import grouped_logprobs
from tinyreason.lm.model import random_model


@pytest.fixture(scope="module")
def model():
    return random_model(None, seed=2, vocab_size=23, n_layer=2, n_embd=32, n_head=4, n_positions=64).eval()


def _batch(b=3, g=2, p=7, t=5):
    gen = torch.Generator().manual_seed(0)
    prompt_ids = torch.randint(0, 23, (b, p), generator=gen)
    prompt_mask = torch.ones(b, p, dtype=torch.long)
    prompt_mask[1, :3] = 0  # left padding of different lengths
    prompt_mask[2, :1] = 0
    completion_ids = torch.randint(0, 23, (b * g, t), generator=gen)
    completion_mask = torch.ones(b * g, t, dtype=torch.long)
    completion_mask[0, min(3, t - 1):] = 0  # a completion that stopped early
    completion_mask[0, 0] = 1
    return prompt_ids, prompt_mask, completion_ids, completion_mask


@pytest.mark.parametrize("t", [5, 1])  # T = 1: no completion position is fed, only the prompts
def test_grouped_equals_plain_forward_values_and_gradients(model, t):
    pid, pm, cid, cm = _batch(t=t)
    g = 2
    ids = torch.cat([pid.repeat_interleave(g, 0), cid], 1)
    attn = torch.cat([pm.repeat_interleave(g, 0), cm], 1)
    m = cm.bool()
    lp_ref, ent_ref = grpo.completion_logprobs(model, ids, attn, t, 0.7, with_entropy=True)
    lp, ent = grouped_logprobs(model, pid, pm, cid, g, 0.7, with_entropy=True)
    assert torch.allclose(lp[m], lp_ref[m], atol=1e-5) and torch.allclose(ent[m], ent_ref[m], atol=1e-5)

    w, wte = model.transformer.h[0].attn.c_attn.weight, model.transformer.wte.weight  # wte: tied to the LM head
    model.zero_grad()
    lp_ref[m].sum().backward()
    g_ref, g_wte = w.grad.clone(), wte.grad.clone()
    model.zero_grad()
    lp[m].sum().backward()
    assert torch.allclose(w.grad, g_ref, atol=1e-5)
    assert not wte.grad.is_sparse and torch.allclose(wte.grad, g_wte, atol=1e-5)  # sparse embedding part added in
    model.zero_grad()


def _logprobs_and_grad(model, w, m, amp: bool):
    """Grouped log-probs of `_batch()` (bf16 autocast when `amp`) and the gradient of their
    masked sum with respect to the parameter `w`."""
    pid, pm, cid, _ = _batch()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        lp, _ = grouped_logprobs(model, pid, pm, cid, 2, 0.7)
    lp[m].sum().backward()
    grad = w.grad.clone()
    model.zero_grad()
    return lp.detach(), grad


def test_grouped_bf16_autocast_matches_fp32_within_bf16_rounding(model):
    m = _batch()[3].bool()
    w = model.transformer.h[1].mlp.c_fc.weight
    (lp32, g32), (lp16, g16) = (_logprobs_and_grad(model, w, m, amp) for amp in (False, True))
    assert torch.allclose(lp16[m], lp32[m], atol=3e-2)
    assert torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), dim=0) > 0.99


def test_grouped_bf16_emulation_matches_bf16_autocast(model, monkeypatch):
    """Without a oneDNN bf16 GEMM (AVX2-only CPUs) bf16 linears and attention matmuls run as fp32
    GEMMs on bf16 values: the same log-probs and gradients as PyTorch's bf16 kernels."""
    from tinyreason import kernels

    m = _batch()[3].bool()
    w = model.transformer.h[1].attn.c_attn.weight
    out = []
    for emulate in (True, False):
        monkeypatch.setitem(kernels.FORCED, "emulate_bf16", emulate)
        out.append(_logprobs_and_grad(model, w, m, amp=True))
    (lp_e, g_e), (lp_b, g_b) = out
    assert torch.allclose(lp_e[m], lp_b[m], atol=2e-2)
    assert torch.nn.functional.cosine_similarity(g_e.flatten(), g_b.flatten(), dim=0) > 0.999


def test_grouped_refuses_dropout_in_training_mode():
    m = random_model(None, vocab_size=11, n_layer=1, n_embd=16, n_head=2, n_positions=16).train()
    with pytest.raises(ValueError, match="dropout"):
        grouped_logprobs(m, torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.long),
                         torch.zeros(2, 2, dtype=torch.long), 2)

"""SFT's causal-LM loss on the trainers' own forward equals Hugging Face's forward (values and gradients)."""

import pytest
import torch
import torch.nn.functional as F

from tinyreason import kernels
from tinyreason.lm.causal import lm_loss_sum
from tinyreason.lm.model import random_model


@pytest.fixture(scope="module")
def model():
    return random_model(None, seed=3, vocab_size=29, n_layer=2, n_embd=32, n_head=4, n_positions=32).eval()


def _batch():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 29, (3, 9), generator=gen)
    attn = torch.ones(3, 9, dtype=torch.long)
    attn[1, 6:] = 0  # right padding
    attn[2, 4:] = 0
    loss_mask = torch.ones(3, 9)
    loss_mask[0, :3] = 0  # a prompt without loss
    return ids, attn, loss_mask


def _hf_loss_sum(model, ids, attn, loss_mask):
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()  # (B, L-1, V)
    w = loss_mask[:, 1:] * attn[:, 1:]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    return (ce * w.reshape(-1)).sum(), w.sum()


def _loss_and_grads(model, fn, amp: bool = False):
    """Loss and gradients of the tied embedding and one Conv1D weight."""
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        loss, n = fn(model, *_batch())
    (loss / n).backward()
    tr = model.transformer
    grads = [tr.wte.weight.grad.clone(), tr.h[0].attn.c_attn.weight.grad.clone(), tr.h[1].mlp.c_proj.weight.grad.clone()]
    model.zero_grad()
    return loss.detach(), n, grads


def test_loss_and_gradients_equal_hf_forward(model):
    loss, n, grads = _loss_and_grads(model, lm_loss_sum)
    loss_hf, n_hf, grads_hf = _loss_and_grads(model, _hf_loss_sum)
    assert n == n_hf == (8 - 2) + 5 + 3  # padded targets and the masked prompt carry no loss
    torch.testing.assert_close(loss, loss_hf, atol=1e-5, rtol=1e-5)
    assert not grads[0].is_sparse  # the embedding's sparse gradient is added into the tied head's
    for g, e in zip(grads, grads_hf):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("emulate", [False, True], ids=["bf16-gemm", "bf16-emulated"])
def test_bf16_autocast_matches_hf_under_autocast(model, monkeypatch, emulate):
    """bf16 autocast, with PyTorch's bf16 kernels or emulated by fp32 GEMMs (AVX2-only CPUs)."""
    monkeypatch.setitem(kernels.FORCED, "emulate_bf16", emulate)
    loss, _, grads = _loss_and_grads(model, lm_loss_sum, amp=True)
    loss_hf, _, grads_hf = _loss_and_grads(model, _hf_loss_sum, amp=True)
    torch.testing.assert_close(loss, loss_hf, atol=0.1, rtol=1e-2)
    for g, e in zip(grads, grads_hf):
        assert F.cosine_similarity(g.flatten(), e.flatten(), dim=0) > 0.99


def test_dropout_applies_in_training_mode_only():
    m = random_model(None, seed=4, vocab_size=29, n_layer=1, n_embd=16, n_head=2, n_positions=16)  # dropout 0.1
    ids, attn, mask = _batch()
    m.eval()
    assert torch.equal(lm_loss_sum(m, ids, attn, mask)[0], lm_loss_sum(m, ids, attn, mask)[0])
    m.train()
    torch.manual_seed(0)
    a = lm_loss_sum(m, ids, attn, mask)[0]
    b = lm_loss_sum(m, ids, attn, mask)[0]
    torch.manual_seed(0)
    assert not torch.equal(a, b) and torch.equal(a, lm_loss_sum(m, ids, attn, mask)[0])  # seeded like HF's


def test_refuses_left_padding(model):
    ids, attn, mask = _batch()
    attn[0, 0] = 0
    with pytest.raises(ValueError, match="right-padded"):
        lm_loss_sum(model, ids, attn, mask)

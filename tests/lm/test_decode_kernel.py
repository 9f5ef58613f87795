"""The C decode-attention kernel equals the sampler's PyTorch shared-prefix attention."""

import pytest
import torch

from tinyreason.lm import decode_kernel, shared_prefix
from tinyreason.lm.model import random_model, train_char_tokenizer
from tinyreason.lm.sampler import sample, stop_token_ids
from tinyreason.lm.shared_prefix import SharedPrefix

needs_kernel = pytest.mark.skipif(not decode_kernel.available(), reason="no C compiler: the kernel is not built here")


@pytest.fixture(scope="module")
def tiny():
    tok = train_char_tokenizer(["P: rnbqkbnr/pppppppp/8 w KQkq - 0 1 M: e2e4 E: 0.3 B: e2e4", "A: +e2e4+"])
    return random_model(tok, seed=2, n_layer=2, n_embd=32, n_head=4, n_positions=128).eval(), tok


@needs_kernel
def test_kernel_equals_pytorch_attention_with_padding_and_dropped_rows():
    torch.manual_seed(0)
    b, g, h, p, d, t_new = 3, 4, 2, 6, 8, 5
    p_mask = torch.ones(b, p, dtype=torch.long)
    p_mask[1, :2] = 0  # left padding
    p_mask[2, :5] = 0
    kv = [(torch.randn(b, h, p, d), torch.randn(b, h, p, d))]
    pre = SharedPrefix(kv, p_mask, g)
    active = torch.tensor([0, 2, 3, 8, 11])  # group 1 dropped entirely, others partly
    pre.keep(active)
    a, c = active.numel(), h * d
    kc, vc = torch.randn(a, h, t_new, d), torch.randn(a, h, t_new, d)
    kc2, vc2 = kc.clone(), vc.clone()
    for t in (0, 3):
        qkv = torch.randn(a, 3 * c)
        out = pre.attend_fused(0, qkv, kc, vc, t, 0.3)  # (A, C)
        q, k, v = (z.view(a, 1, h, d).transpose(1, 2) for z in qkv.view(a, 1, 3 * c).split(c, dim=-1))
        kc2[:, :, t:t + 1], vc2[:, :, t:t + 1] = k, v
        ref = pre.attend(0, q, kc2[:, :, :t + 1], vc2[:, :, :t + 1], 0.3)  # (A, H, 1, D)
        torch.testing.assert_close(out, ref.transpose(1, 2).reshape(a, c), atol=1e-5, rtol=1e-5)
        assert torch.equal(kc[:, :, : t + 1], kc2[:, :, : t + 1]) and torch.equal(vc[:, :, : t + 1], vc2[:, :, : t + 1])


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sampler_gives_the_same_rollout_with_and_without_the_kernel(tiny, monkeypatch, dtype):
    model, tok = tiny
    stops = stop_token_ids(tok, ["e", "4"])
    prompts = [tok(x).input_ids for x in ("P: rnbqkbnr", "A: +", "P: 8/8 w")]  # left padding
    runs = []
    for on in (True, False):
        monkeypatch.setattr(decode_kernel, "ENABLED", on)
        torch.manual_seed(5)
        runs.append(sample(model, prompts, 3, 12, 1.0, stop_ids=stops, pad_id=tok.pad_token_id, dtype=dtype,
                           compact_fraction=0.01))
    a, b = runs
    assert torch.equal(a.completion_ids, b.completion_ids)
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-4, rtol=1e-4)


def test_kernel_is_skipped_where_it_does_not_apply(monkeypatch):
    kv = [(torch.zeros(1, 1, 3, 2),) * 2]  # one group, one head, 3 prompt slots, head size 2
    right_padded = SharedPrefix(kv, torch.tensor([[1, 1, 0]]), 2)
    assert not right_padded.fused(torch.zeros(2, 1, 4, 2))  # only left-padded prompts
    if decode_kernel.available():  # a large batch with several threads stays on PyTorch's ops
        pre = SharedPrefix(kv, torch.ones(1, 3, dtype=torch.long), 2)
        monkeypatch.setattr(shared_prefix, "DECODE_KERNEL_MAX_KV", 2 * 1 * (3 + 4) * 2 - 1)
        torch.set_num_threads(2)
        assert not pre.fused(torch.zeros(2, 1, 4, 2)) and not pre.fused(torch.zeros(2, 1, 4, 2).bfloat16())
        torch.set_num_threads(1)
        assert pre.fused(torch.zeros(2, 1, 4, 2))
    monkeypatch.setattr(decode_kernel, "_FN", None)
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert not decode_kernel.available()  # no compiler: the sampler keeps its PyTorch ops
    assert decode_kernel._FN is False

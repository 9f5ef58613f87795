"""Attention under bf16: scores and softmax stay in fp32, so sharp attention (large scores, as in
a trained model) does not turn bf16 rounding of the scores into large errors."""

import pytest
import torch
import torch.nn.functional as F

from tinyreason import kernels
from tinyreason.chess.data import load_samples
from tinyreason.hub import EMBEDDED_DIR
from tinyreason.lm.gpt2 import attention
from tinyreason.lm.grouped import grouped_logprobs
from tinyreason.lm.model import load_model


def _sharp_qkv(seed=0, b=2, h=4, s=48, d=64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, s, d, generator=g) * 4  # scores of std ~4 at scale d**-0.5, up to ~20
    k, v = torch.randn(b, h, s, d, generator=g), torch.randn(b, h, s, d, generator=g)
    return q.bfloat16(), k.bfloat16(), v.bfloat16()


@pytest.mark.parametrize("emulate", [False, True], ids=["bf16-gemm", "bf16-emulated"])
def test_bf16_attention_equals_fp32_on_the_same_values(monkeypatch, emulate):
    monkeypatch.setitem(kernels.FORCED, "emulate_bf16", emulate)
    q, k, v = _sharp_qkv()
    scale = 64 ** -0.5
    exact = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True, scale=scale)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(q, k, v, None, scale)
    assert out.dtype == torch.bfloat16
    err = (out.float() - exact).abs().max().item()
    # eager attention under autocast (HF's "eager"): bf16 scores, then softmax
    mask = torch.ones(48, 48, dtype=torch.bool).tril_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = torch.softmax((q @ k.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf")), -1)
        eager = w @ v
    eager_err = (eager.float() - exact).abs().max().item()
    assert err < 0.02  # the output's own bf16 rounding (|values| up to ~3)
    assert eager_err > 4 * err  # what the scores' rounding costs


@pytest.fixture(scope="module")
def heldout_batch():
    """The shipped RookWorld model (trained: sharp attention) and 32 of its held-out samples, policy
    and env: left-padded prompts (B, P), completions with EOS (B, T) and their mask."""
    model, tok = load_model("embedded:rookworld-tiny", "cpu")
    samples = load_samples(EMBEDDED_DIR / "rookworld-tiny" / "data" / "heldout.txt")[1::25]
    prompts = [tok(s.prompt).input_ids for s in samples]
    completions = [tok(s.completion).input_ids + [tok.eos_token_id] for s in samples]
    p, t = max(map(len, prompts)), max(map(len, completions))
    pid = torch.tensor([[tok.pad_token_id] * (p - len(x)) + x for x in prompts])  # (B, P)
    cid = torch.tensor([x + [tok.pad_token_id] * (t - len(x)) for x in completions])  # (B, T)
    return model.eval(), pid, (pid != tok.pad_token_id).long(), cid, cid != tok.pad_token_id


@pytest.mark.parametrize("kernel", [False, True], ids=["sdpa", "c-kernel"])
def test_grouped_bf16_log_probs_of_the_trained_model_stay_close_to_fp32(monkeypatch, heldout_batch, kernel):
    """Teacher-forced log-probs under bf16 autocast within bf16 rounding of fp32 ones, on the SDPA
    route and on the C completion attention. With bf16 scores (eager attention) they strayed up
    to 2.2 nats here."""
    if kernel and not kernels.compiled():
        pytest.skip("no C compiler: the kernels are not built")
    monkeypatch.setitem(kernels.FORCED, "group_attention", kernel)
    model, pid, pm, cid, cm = heldout_batch
    out = []  # one torch thread (conftest), which the kernel serves
    for amp in (False, True):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out.append(grouped_logprobs(model, pid, pm, cid, 1, 1.0)[0])
    diff = (out[1] - out[0])[cm].abs()
    assert diff.max() < 0.5 and diff.mean() < 0.006

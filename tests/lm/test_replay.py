"""The rollout's kept linear outputs stand in for the update's forward GEMMs: same log-probs,
entropies and gradients as a recomputation (up to float rounding)."""

import pytest
import torch

from tinyreason import kernels
from tinyreason.lm.grouped import grouped_logprobs
from tinyreason.lm.model import random_model
from tinyreason.lm.replay import Activations, kept_linear
from tinyreason.lm.sampler import sample

def needs_kernel(test):  # the kept outputs come from the one-call decode step (off: skipped, see tests/conftest.py)
    return pytest.mark.kernels(pytest.mark.skipif(not kernels.compiled(), reason="no C compiler: the decode kernels "
                                                                               "are not built")(test))
# every test runs on one torch thread (conftest), where the sampler runs its one-call decode step


def _rollout(model, keep: bool, compact_fraction: float = 0.25):
    prompts = [[3, 4, 5, 6, 7], [8, 9, 10]]  # different lengths: left padding
    return sample(model, prompts, 3, 9, temperature=1.0, stop_ids=[2], pad_id=0, keep_activations=keep,
                  generator=torch.Generator().manual_seed(1), compact_fraction=compact_fraction)


@needs_kernel
@pytest.mark.parametrize("compact_fraction", [0.25, 1.0])  # finished rows dropped from the batch, or fed on
@pytest.mark.parametrize("width,heads", [(32, 4), (128, 2)])  # head size 8; 64, the decode attention's vector path
def test_kept_outputs_give_the_recomputed_logprobs_and_gradients(compact_fraction, width, heads):
    model = random_model(None, seed=3, vocab_size=13, n_layer=2, n_embd=width, n_head=heads, n_positions=64).eval()
    with torch.no_grad():
        model.lm_head.weight[2] += 0.3  # the stop token is drawn now and then: rows of different lengths
    roll = _rollout(model, True, compact_fraction)
    kept = roll.activations
    assert isinstance(kept, Activations) and kept.capacity == 8 and len(kept.layers) == 2
    assert len(set(roll.lengths.tolist())) > 1  # some rows stopped early
    g, w = roll.group_size, roll.completion_mask.float()
    args = (model, roll.prompt_ids[::g], roll.prompt_mask[::g], roll.completion_ids, g, 1.0, True, True)
    params = [model.transformer.h[0].attn.c_attn.weight, model.transformer.h[1].mlp.c_fc.bias, model.lm_head.weight,
              model.transformer.wpe.weight]
    out = {}
    for name, k in (("recomputed", None), ("kept", kept)):
        lp, ent = grouped_logprobs(*args, kept=k)
        grads = torch.autograd.grad(((lp + 0.1 * ent) * w).sum(), params)
        out[name] = (lp.detach(), ent.detach(), grads)
    lp_r, ent_r, g_r = out["recomputed"]
    lp_k, ent_k, g_k = out["kept"]
    m = roll.completion_mask.bool()
    torch.testing.assert_close(lp_k[m], lp_r[m], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent_k[m], ent_r[m], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lp_k[m], roll.logprobs[m], atol=1e-5, rtol=1e-5)  # what the sampler drew with
    for a, b in zip(g_k, g_r):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@needs_kernel
def test_nothing_is_kept_off_the_one_call_step(monkeypatch):
    model = random_model(None, seed=3, vocab_size=13, n_layer=2, n_embd=32, n_head=4, n_positions=64).eval()
    assert _rollout(model, False).activations is None
    monkeypatch.setitem(kernels.FORCED, "decode_step", False)  # per-op decode steps: nothing to keep
    assert _rollout(model, True).activations is None


def test_kept_linear_takes_the_kept_rows_and_backpropagates_as_a_linear():
    torch.manual_seed(0)
    x = torch.randn(2 + 3 * 4, 5, requires_grad=True)  # 2 computed rows, then 3 rows x 4 positions kept
    w, b = torch.randn(6, 5, requires_grad=True), torch.randn(6, requires_grad=True)
    ref = torch.nn.functional.linear(x, w, b)  # (14, 6)
    kept = torch.zeros(3, 7, 6)  # capacity 7 >= 4 positions
    kept[:, :4] = ref[2:].detach().view(3, 4, 6)
    y = kept_linear(x, w, b, kept, 2)
    torch.testing.assert_close(y, ref)
    gy = torch.randn(14, 6)
    torch.testing.assert_close(torch.autograd.grad(y, (x, w, b), gy), torch.autograd.grad(ref, (x, w, b), gy))
    with pytest.raises(ValueError, match="do not fit"):
        kept_linear(x, w, b, kept, 3)  # 11 rows are not 3 x T

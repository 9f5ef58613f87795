"""The one place that checks the coupling between `decode_step.c`'s activation stores and the
forward that reads them (`replay.Activations`, ordered by `kernels.STEP_STORES`): every store a
kept rollout holds equals what Hugging Face's forward computes for that token."""

import pytest
import torch

from tinyreason import kernels
from tinyreason.lm.replay import Activations
from tinyreason.lm.sampler import sample
from tinyreason.lm.model import random_model

pytestmark = [pytest.mark.kernels,
              pytest.mark.skipif(not kernels.compiled(), reason="no C compiler: the decode kernels are not built")]


def test_store_order_is_the_step_kernels():
    assert kernels.STEP_STORES == ("qkv", "att", "lse", "proj", "fc", "out")
    assert [Activations.QKV, Activations.ATT, Activations.LSE, Activations.PROJ, Activations.FC, Activations.OUT] \
        == list(range(6))
    acts = Activations.empty(2, 3, 8, 2, 32, 11, 1)
    assert [z.shape[-1] for z in acts.stores()] == [24, 8, 2, 8, 32, 8, 11]  # widths in that order, logits last


def test_every_kept_store_holds_what_the_model_computes_for_that_token(monkeypatch):
    monkeypatch.setitem(kernels.FORCED, "decode_step", True)
    monkeypatch.setitem(kernels.FORCED, "decode_attention", True)
    model = random_model(None, seed=5, vocab_size=13, n_layer=2, n_embd=32, n_head=2, n_positions=64).eval()
    prompt = [4, 5, 6, 7, 8]
    torch.manual_seed(0)
    roll = sample(model, [prompt], 2, 7, temperature=1.0, stop_ids=[2], pad_id=0, keep_activations=True,
                  compact_fraction=0.01)
    acts = roll.activations
    assert acts is not None
    p, c, h = len(prompt), 32, 2
    for r in range(2):
        n = int(roll.lengths[r])
        ids = torch.tensor([prompt + roll.completion_ids[r, :n].tolist()])  # (1, P + n)
        seen = {}
        hooks = []
        for i, blk in enumerate(model.transformer.h):
            for name, mod in (("qkv", blk.attn.c_attn), ("proj", blk.attn.c_proj), ("fc", blk.mlp.c_fc),
                              ("out", blk.mlp.c_proj)):
                hooks.append(mod.register_forward_hook(lambda m, a, y, k=(i, name): seen.__setitem__(k, y[0])))
            hooks.append(blk.attn.c_proj.register_forward_hook(  # its input: the attention output
                lambda m, a, y, k=(i, "att"): seen.__setitem__(k, a[0][0])))
        with torch.no_grad():
            logits = model(ids).logits[0]  # (P + n, V)
        for hk in hooks:
            hk.remove()
        fed = slice(p, p + n - 1)  # completion token j (j < n - 1) was fed at position P + j
        for i, layer in enumerate(acts.layers):
            for name in ("qkv", "att", "proj", "fc", "out"):
                torch.testing.assert_close(layer[Activations.INDEX[name]][r, : n - 1], seen[(i, name)][fed],
                                           atol=1e-5, rtol=1e-4)
            qkv = seen[(i, "qkv")]  # (P + n, 3C): the log-sum-exp of token j's scores over keys 0..P+j
            q, k = (z.view(-1, h, c // h).transpose(0, 1) for z in qkv[:, :2 * c].split(c, -1))  # (H, P+n, D)
            scores = (q @ k.transpose(-1, -2)) * (c // h) ** -0.5  # (H, P+n, P+n)
            causal = torch.ones(p + n, p + n, dtype=torch.bool).tril()
            lse = scores.masked_fill(~causal, float("-inf")).logsumexp(-1).t()  # (P+n, H)
            torch.testing.assert_close(layer[Activations.LSE][r, : n - 1], lse[fed], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(acts.logits[r, : n - 1], logits[fed], atol=1e-4, rtol=1e-4)
        assert not acts.logits[r, max(n - 1, 0):].any()  # unwritten positions cleared

"""The one GPT-2 forward gives what the four separate forwards gave before it (commit 4e0265a):
golden values of a tiny model's rollout (sampler: prefill, shared-prefix decode, draw), its
grouped log-probs, entropies and gradients (GRPO update) and an SFT loss and gradients, recorded
with the before-code on one thread, fp32. Checked with the kernels on (where the same kernels
run on the development CPU the values were bit-identical) and off (the plain path: the same up
to float rounding)."""

import json
from pathlib import Path

import pytest
import torch

from tinyreason import kernels
from tinyreason.lm.causal import lm_loss_sum
from tinyreason.lm.grouped import grouped_logprobs
from tinyreason.lm.model import random_model
from tinyreason.lm.sampler import sample

GOLDEN = json.loads((Path(__file__).parents[1] / "fixtures" / "lm" / "gpt2_golden_4e0265a.json").read_text())


def _run() -> dict:
    """What tests/fixtures/lm/gpt2_golden_4e0265a.json recorded, computed now."""
    model = random_model(None, seed=3, vocab_size=13, n_layer=2, n_embd=128, n_head=2, n_positions=64).eval()
    prompts = [[3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [5, 6]]  # left-padded to 6
    roll = sample(model, prompts, 3, 9, temperature=1.0, stop_ids=[2], pad_id=0,
                  generator=torch.Generator().manual_seed(7))
    lp, ent = grouped_logprobs(model, roll.prompt_ids[::3], roll.prompt_mask[::3], roll.completion_ids, 3,
                               with_entropy=True)
    (lp * roll.completion_mask).sum().backward()
    grads = {n: float(p.grad.norm()) for n, p in model.named_parameters()}
    model.zero_grad()
    ids = torch.randint(1, 13, (2, 20), generator=torch.Generator().manual_seed(1))
    loss, n = lm_loss_sum(model, ids, torch.ones_like(ids), torch.ones_like(ids))
    loss.backward()
    m = roll.completion_mask.bool()
    return {"completion_ids": roll.completion_ids.tolist(), "sampler_logprobs": roll.logprobs.tolist(),
            "grouped_logprobs": (lp * m).tolist(), "entropy": (ent * m).tolist(), "grouped_grad_norms": grads,
            "sft_loss": float(loss.detach()), "sft_targets": float(n),
            "sft_grad_norms": {k: float(p.grad.norm()) for k, p in model.named_parameters()}}


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_the_forward_gives_the_before_codes_values(mode):
    with kernels.use(mode):
        now = _run()
    assert now["completion_ids"] == GOLDEN["completion_ids"]
    for key in ("sampler_logprobs", "grouped_logprobs", "entropy"):
        torch.testing.assert_close(torch.tensor(now[key]), torch.tensor(GOLDEN[key]), atol=1e-4, rtol=1e-4)
    for key in ("grouped_grad_norms", "sft_grad_norms"):
        assert now[key].keys() == GOLDEN[key].keys()
        torch.testing.assert_close(torch.tensor(list(now[key].values())), torch.tensor(list(GOLDEN[key].values())),
                                   atol=1e-5, rtol=1e-4)
    assert now["sft_targets"] == GOLDEN["sft_targets"]
    assert now["sft_loss"] == pytest.approx(GOLDEN["sft_loss"], rel=1e-5)

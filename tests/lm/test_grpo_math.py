"""GRPO advantages, KL, clipped surrogate and loss aggregation against hand-computed values."""

import math

import pytest
import torch

from tinyreason.lm import grpo


def test_group_advantages_scales():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv, zero = grpo.group_advantages(r, 4, "group")
    std = math.sqrt(1 / 3)  # unbiased std of (1, 0, 0, 1)
    assert adv[:4].tolist() == pytest.approx([0.5 / (std + 1e-4), -0.5 / (std + 1e-4)] * 1 + [-0.5 / (std + 1e-4), 0.5 / (std + 1e-4)])
    assert adv[4:].tolist() == [0.0] * 4
    assert zero.tolist() == [False, True]
    adv_b, _ = grpo.group_advantages(r, 4, "batch")
    assert adv_b[0].item() == pytest.approx(0.5 / (r.std().item() + 1e-4))
    adv_n, _ = grpo.group_advantages(r, 4, "none")
    assert adv_n.tolist() == [0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]


def test_k3_kl():
    logp, ref = torch.tensor([math.log(0.5), 0.3]), torch.tensor([math.log(0.25), 0.3])
    kl = grpo.k3_kl(logp, ref)
    assert kl[0].item() == pytest.approx(0.5 - math.log(0.5) - 1)  # exp(d) - d - 1, d = log 0.5
    assert kl[1].item() == 0.0


def test_clipped_surrogate_hand_values():
    old = torch.zeros(4, 1)
    logp = torch.log(torch.tensor([[1.5], [1.5], [0.5], [0.5]]))
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0])
    loss, ratio = grpo.clipped_surrogate(logp, old, adv, 0.2, 0.2)
    assert loss[:, 0].tolist() == pytest.approx([-1.2, 1.5, 0.8, -0.5])
    loss_hi, _ = grpo.clipped_surrogate(logp, old, adv, 0.2, 0.28)
    assert loss_hi[0, 0].item() == pytest.approx(-1.28)  # clip-higher raises the cap for A > 0
    assert ratio[:, 0].tolist() == pytest.approx([1.5, 1.5, 0.5, 0.5])


PT = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize("loss_type,expected", [("grpo", (1.5 + 4.0) / 2), ("dr_grpo", 7 / (2 * 4)), ("dapo", 7 / 3)])
def test_aggregate(loss_type, expected):
    assert grpo.aggregate(PT, MASK, loss_type, max_completion_length=4).item() == pytest.approx(expected)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_micro_batches_add_up_to_batch_loss(loss_type):
    torch.manual_seed(0)
    logp, old, ref = torch.randn(6, 5) * 0.1 - 1, torch.randn(6, 5) * 0.1 - 1, torch.randn(6, 5) * 0.1 - 1
    adv, mask = torch.randn(6), (torch.rand(6, 5) > 0.3).float()
    kw = dict(old_logp=old, ref_logp=ref, beta=0.1, loss_type=loss_type, max_completion_length=5)
    full, _ = grpo.grpo_loss(logp, adv, mask, **kw)
    parts = sum(grpo.grpo_loss(logp[s], adv[s], mask[s], num_seqs=6, num_tokens=mask.sum().item(),
                               **{**kw, "old_logp": old[s], "ref_logp": ref[s]})[0] for s in (slice(0, 2), slice(2, 6)))
    assert parts.item() == pytest.approx(full.item(), rel=1e-6)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_grpo_loss_hand_computed(loss_type):
    # two sequences, ratio 1 (old = None), so per-token loss = -A + beta * KL
    logp = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    ref = torch.log(torch.tensor([[0.25, 0.5], [0.5, 0.5]]))
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    ent = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    k = 0.5 - math.log(0.5) - 1
    beta, coef = 0.1, 0.01
    tok = torch.tensor([[-1.0 + beta * k, -1.0], [2.0, 2.0]])
    expected = {"grpo": ((tok[0, 0] + tok[0, 1]) / 2 + tok[1, 0]) / 2,
                "dr_grpo": (tok[0, 0] + tok[0, 1] + tok[1, 0]) / (2 * 3),
                "dapo": (tok[0, 0] + tok[0, 1] + tok[1, 0]) / 3}[loss_type]
    ent_term = {"grpo": (1.0 + 2.0) / 2, "dr_grpo": 4.0 / 6, "dapo": 4.0 / 3}[loss_type]
    loss, stats = grpo.grpo_loss(logp, adv, mask, ref_logp=ref, beta=beta, loss_type=loss_type,
                                 max_completion_length=3, entropy=ent, entropy_coef=coef)
    assert loss.item() == pytest.approx(expected.item() - coef * ent_term, rel=1e-6)
    assert stats["tokens"].item() == 3 and stats["kl"].item() == pytest.approx(k)


def test_clip_statistics_count_only_active_side():
    logp = torch.log(torch.tensor([[1.5, 0.5], [1.5, 0.5]]))
    _, st = grpo.grpo_loss(logp, torch.tensor([1.0, -1.0]), torch.ones(2, 2), old_logp=torch.zeros(2, 2))
    assert st["clip_high"].item() == 1 and st["clip_low"].item() == 1


def test_token_weights_truncation_and_zero_std():
    mask = torch.ones(4, 3, dtype=torch.long)
    truncated = torch.tensor([False, True, False, False])
    zero_std = torch.tensor([False, True])
    w = grpo.token_weights(mask, truncated, zero_std, 2, mask_truncated=True, zero_std_weight=0.5)
    assert w[:, 0].tolist() == [1.0, 0.0, 0.5, 0.5]
    w2 = grpo.token_weights(mask, truncated, zero_std, 2, mask_truncated=False, zero_std_weight=0.0)
    assert w2[:, 0].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_completion_logprobs_and_entropy_match_direct_softmax():
    from tinyreason.lm.model import random_model

    model = random_model(None, vocab_size=11, n_layer=1, n_embd=16, n_head=2, n_positions=16).eval()
    ids = torch.randint(0, 11, (2, 6))
    attn = torch.ones(2, 6, dtype=torch.long)
    lp, ent = grpo.completion_logprobs(model, ids, attn, 3, temperature=0.7, with_entropy=True)
    logits = model(ids).logits[:, 2:5] / 0.7
    logsm = torch.log_softmax(logits, -1)
    assert torch.allclose(lp, logsm.gather(-1, ids[:, 3:, None])[..., 0], atol=1e-5)
    assert torch.allclose(ent, -(logsm.exp() * logsm).sum(-1), atol=1e-5)


def test_fractional_weights_scale_terms_and_keep_normalisers():
    # row 0 weight 1, row 1 down-weighted to 0.5: its terms count half, normalisers count its tokens
    pt = torch.tensor([[1.0, 3.0], [4.0, 8.0]])
    w = torch.tensor([[1.0, 1.0], [0.5, 0.5]])
    assert grpo.aggregate(pt, w, "grpo", 2).item() == pytest.approx((2.0 + 0.5 * 6.0) / 2)
    assert grpo.aggregate(pt, w, "dapo", 2).item() == pytest.approx((4.0 + 0.5 * 12.0) / 4)
    assert grpo.aggregate(pt, w, "dr_grpo", 2).item() == pytest.approx((4.0 + 0.5 * 12.0) / (2 * 2))


def test_lr_schedules():
    from tinyreason.lm.optim import lr_lambda

    cos = lr_lambda("cosine", 2, 12, 0.1)
    assert [cos(0), cos(1)] == [0.5, 1.0]
    assert cos(2) == pytest.approx(1.0) and cos(7) == pytest.approx(0.55) and cos(12) == pytest.approx(0.1)
    lin = lr_lambda("linear", 0, 10, 0.0)
    assert lin(5) == pytest.approx(0.5) and lr_lambda("constant", 0, 10, 0.0)(9) == 1.0


def test_adamw_is_fused_on_cpu_and_matches_the_reference_update():
    from tinyreason.lm.optim import adamw

    torch.manual_seed(0)
    w0, g = torch.randn(5, 3), torch.randn(5, 3)
    results = []
    for make in (lambda p: adamw([p], lr=0.1, weight_decay=0.01), lambda p: torch.optim.AdamW([p], lr=0.1, weight_decay=0.01)):
        p = torch.nn.Parameter(w0.clone())
        opt = make(p)
        for _ in range(3):
            p.grad = g.clone()
            opt.step()
        results.append((p.detach(), opt))
    assert results[0][1].defaults["fused"] and not results[1][1].defaults["fused"]
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    plain = torch.optim.AdamW([torch.nn.Parameter(w0.clone())], lr=0.1)
    plain.load_state_dict(results[0][1].state_dict())  # checkpoints of either kind load into the other
    assert plain.state_dict()["state"][0]["step"].item() == 3

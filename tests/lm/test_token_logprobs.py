import pytest
import torch

from tinyreason.lm import token_logprobs as tl


def plain(logits, targets, temperature, entropy_grad):
    """The textbook formula, differentiated by autograd."""
    z = logits.float() / temperature
    logsm = torch.log_softmax(z, -1)
    logp = logsm.gather(-1, targets[..., None])[..., 0]
    ent = -(logsm.exp() * logsm).sum(-1)
    return logp, ent if entropy_grad else ent.detach()


@pytest.mark.parametrize("dtype,temperature,entropy_grad", [
    (torch.float32, 1.0, False), (torch.float32, 0.7, True), (torch.bfloat16, 1.3, True), (torch.bfloat16, 1.0, False)])
def test_values_and_gradients_match_plain_formula(monkeypatch, dtype, temperature, entropy_grad):
    monkeypatch.setattr(tl, "CHUNK_ELEMENTS", 3 * 37)  # 3 rows per chunk: several chunks, a ragged last one
    torch.manual_seed(0)
    logits = (3 * torch.randn(2, 5, 37)).to(dtype)  # (N, T, V)
    targets = torch.randint(0, 37, (2, 5))
    g_lp, g_ent = torch.randn(2, 5), torch.randn(2, 5)
    results = []
    for fn in (plain, lambda *a: tl.token_logprobs(a[0], a[1], a[2], True, a[3])):
        x = logits.clone().requires_grad_()
        lp, ent = fn(x, targets, temperature, entropy_grad)
        loss = (lp * g_lp).sum() + ((ent * g_ent).sum() if entropy_grad else 0.0)
        loss.backward()
        assert x.grad.dtype == dtype and lp.dtype == torch.float32
        results.append((lp.detach(), ent.detach(), x.grad.float()))
    (lp0, ent0, g0), (lp1, ent1, g1) = results
    assert torch.allclose(lp1, lp0, atol=1e-5) and torch.allclose(ent1, ent0, atol=1e-5)
    tol = 1e-5 if dtype == torch.float32 else 2e-2  # bf16: the gradient is rounded to bf16 once
    assert torch.allclose(g1, g0, atol=tol, rtol=tol)


def test_entropy_without_grad_is_detached_and_optional():
    x = torch.randn(4, 9, requires_grad=True)
    t = torch.randint(0, 9, (4,))
    lp, ent = tl.token_logprobs(x, t, 1.0, with_entropy=True, entropy_grad=False)
    assert lp.requires_grad and not ent.requires_grad
    assert tl.token_logprobs(x, t)[1] is None
    with torch.no_grad():  # the reference pass
        assert torch.allclose(tl.token_logprobs(x, t)[0], torch.log_softmax(x, -1).gather(-1, t[:, None])[:, 0])


def test_temperature_zero_means_unscaled():
    x, t = torch.randn(3, 6), torch.tensor([0, 5, 2])
    assert torch.allclose(tl.token_logprobs(x, t, 0.0)[0], torch.log_softmax(x, -1).gather(-1, t[:, None])[:, 0])

import pytest
import torch
import torch.nn.functional as F

from tinyreason.lm import onednn


def test_linear_matches_f_linear_with_transposed_view():
    torch.manual_seed(0)
    conv_w = torch.randn(16, 24)  # Conv1D layout (in, out)
    b = torch.randn(24)
    x = torch.randn(2, 5, 16)
    y = onednn.linear(x, conv_w.t(), b)
    assert y.shape == (2, 5, 24)
    torch.testing.assert_close(y, F.linear(x, conv_w.t(), b), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_weight_gives_the_same_linear_for_any_row_count(dtype):
    torch.manual_seed(2)
    conv_w, b = torch.randn(16, 24).to(dtype), torch.randn(24).to(dtype)  # Conv1D layout (in, out)
    packed = onednn.pack(conv_w.t(), rows=8)
    expect_packed = onednn._REORDER is not None and (dtype == torch.float32 or onednn.bf16_packable())
    assert packed.is_mkldnn == expect_packed
    for m in (1, 8, 30):
        x = torch.randn(m, 16).to(dtype)
        y = onednn.linear(x, packed, b)
        assert y.dtype == dtype
        torch.testing.assert_close(y.float(), F.linear(x, conv_w.t(), b).float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_linear_with_fused_gelu(approximate):
    torch.manual_seed(3)
    conv_w, b, x = torch.randn(16, 24), torch.randn(24), torch.randn(5, 16)
    expected = F.gelu(F.linear(x, conv_w.t(), b), approximate=approximate)
    for w in (conv_w.t(), onednn.pack(conv_w.t(), rows=5)):
        torch.testing.assert_close(onednn.linear(x, w, b, gelu=approximate), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_grad_matches_autograd(bias):
    torch.manual_seed(1)
    w1 = torch.randn(16, 24, requires_grad=True)  # used as a (out, in) = (24, 16) transposed view
    b1 = torch.randn(24, requires_grad=True) if bias else None
    x1 = torch.randn(7, 16, requires_grad=True)
    w2, x2 = w1.detach().clone().requires_grad_(), x1.detach().clone().requires_grad_()
    b2 = b1.detach().clone().requires_grad_() if bias else None
    gy = torch.randn(7, 24)
    (onednn.linear_grad(x1, w1.t(), b1) * gy).sum().backward()
    (F.linear(x2, w2.t(), b2) * gy).sum().backward()
    for a, e in [(x1.grad, x2.grad), (w1.grad, w2.grad)] + ([(b1.grad, b2.grad)] if bias else []):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)


def test_falls_back_off_fp32():
    x, w = torch.randn(3, 8, dtype=torch.bfloat16), torch.randn(4, 8, dtype=torch.bfloat16)
    assert not onednn.usable(w)
    torch.testing.assert_close(onednn.linear(x, w), F.linear(x, w))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not onednn.usable(torch.randn(2, 2))


def test_bf16_stays_dense_where_onednn_has_no_bf16_gemm(monkeypatch):
    """AVX2-only CPUs: oneDNN refuses to pack bf16, so `pack` keeps the dense weight and
    `linear` runs it through F.linear (same result, no crash)."""
    monkeypatch.setattr(onednn, "_BF16", False)
    torch.manual_seed(4)
    w, b, x = torch.randn(24, 16, dtype=torch.bfloat16), torch.randn(24, dtype=torch.bfloat16), torch.randn(5, 16, dtype=torch.bfloat16)
    packed = onednn.pack(w, rows=5)
    assert packed is w
    torch.testing.assert_close(onednn.linear(x, packed, b, gelu="tanh"), F.gelu(F.linear(x, w, b), approximate="tanh"))
    assert onednn.pack(w.float(), rows=5).is_mkldnn == (onednn._REORDER is not None)


def test_bf16_probe_reports_what_pack_does():
    w = torch.randn(24, 16, dtype=torch.bfloat16)
    assert onednn.pack(w, rows=8).is_mkldnn == onednn.bf16_packable()
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # PyTorch's own (private) check
    if check is not None and onednn._REORDER is not None:
        assert onednn.bf16_packable() == check()

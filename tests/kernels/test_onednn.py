import pytest
import torch
import torch.nn.functional as F

from tinyreason.kernels import _onednn as onednn
from tinyreason.kernels import _switch

pytestmark = pytest.mark.kernels  # each test compares a kernel with its plain path (off: skipped)


@pytest.fixture(params=[True, False], ids=["onednn-fp32", "mkl-fp32"])
def fp32_route(request, monkeypatch):
    """Both fp32 routes: oneDNN (AVX-512 CPUs) and MKL's F.linear (elsewhere); the oneDNN one
    only where this build has the op."""
    monkeypatch.setitem(_switch.FORCED, "onednn_fp32", request.param)
    return _switch.onednn_fp32()


def test_linear_matches_f_linear_with_transposed_view(fp32_route):
    torch.manual_seed(0)
    conv_w = torch.randn(16, 24)  # Conv1D layout (in, out)
    b = torch.randn(24)
    x = torch.randn(2, 5, 16)
    y = onednn.linear(x, conv_w.t(), b)
    assert y.shape == (2, 5, 24)
    torch.testing.assert_close(y, F.linear(x, conv_w.t(), b), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_weight_gives_the_same_linear_for_any_row_count(dtype, fp32_route):
    torch.manual_seed(2)
    conv_w, b = torch.randn(16, 24).to(dtype), torch.randn(24).to(dtype)  # Conv1D layout (in, out)
    packed = onednn.pack(conv_w.t(), rows=8)
    native_bf16 = dtype == torch.bfloat16 and onednn.bf16_packable()
    if onednn.reorder() is not None:  # packed on either fp32 route; bf16 without a bf16 GEMM: an fp32 copy
        assert packed.is_mkldnn and packed.dtype == (torch.bfloat16 if native_bf16 else torch.float32)
    for m in (1, 8, 30):
        x = torch.randn(m, 16).to(dtype)
        y = onednn.linear(x, packed, b)
        assert y.dtype == dtype
        # bf16: rounding of the output apart (summation order differs between GEMMs)
        tol = 1e-5 if dtype == torch.float32 else 2e-2
        torch.testing.assert_close(y.float(), F.linear(x, conv_w.t(), b).float(), atol=tol, rtol=tol)


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_linear_with_fused_gelu(approximate, fp32_route):
    torch.manual_seed(3)
    conv_w, b, x = torch.randn(16, 24), torch.randn(24), torch.randn(5, 16)
    expected = F.gelu(F.linear(x, conv_w.t(), b), approximate=approximate)
    for w in (conv_w.t(), onednn.pack(conv_w.t(), rows=5)):
        torch.testing.assert_close(onednn.linear(x, w, b, gelu=approximate), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_grad_matches_autograd(bias, fp32_route):
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


@pytest.mark.parametrize("head", [True, False])
def test_lm_head_forward_runs_on_onednn_on_either_route(head, fp32_route, monkeypatch):
    """An LM head's forward product (a (V, C) weight) runs on oneDNN on both fp32 routes, where
    it was measured faster; other linears and the backward products follow the route. Values
    and gradients are F.linear's."""
    if onednn.op() is None:
        pytest.skip("this build has no oneDNN linear op")
    calls, real = [], onednn._OP
    monkeypatch.setattr(onednn, "_OP", lambda *a: calls.append(a[0].shape) or real(*a))
    torch.manual_seed(6)
    w1, b1, x1 = (torch.randn(*s, requires_grad=True) for s in ((40, 16), (40,), (7, 16)))  # w (V, C)
    w2, b2, x2 = (t.detach().clone().requires_grad_() for t in (w1, b1, x1))
    gy = torch.randn(7, 40)
    y1 = onednn.linear_grad(x1, w1, b1, head=head)
    assert len(calls) == (1 if head or fp32_route else 0)
    (y1 * gy).sum().backward()
    assert len(calls) == (3 if fp32_route else 1 if head else 0)
    y2 = F.linear(x2, w2, b2)
    (y2 * gy).sum().backward()
    for a, e in [(y1, y2), (x1.grad, x2.grad), (w1.grad, w2.grad), (b1.grad, b2.grad)]:
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("conv_layout", [True, False])
def test_weight_gradient_comes_in_the_weights_layout(conv_layout, fp32_route):
    """A Conv1D weight (in, out) used as `.t()` and a plain (out, in) weight both get their
    gradient with their own strides (AccumulateGrad then keeps it instead of copying it)."""
    torch.manual_seed(4)
    w = torch.randn(16, 24).t() if conv_layout else torch.randn(24, 16)  # (out, in)
    x, gy = torch.randn(9, 16), torch.randn(9, 24)
    gw = onednn._weight_grad(gy, x, w)
    assert gw.stride() == w.stride()
    torch.testing.assert_close(gw, gy.t() @ x, atol=1e-5, rtol=1e-5)


def test_falls_back_off_fp32():
    x, w = torch.randn(3, 8, dtype=torch.bfloat16), torch.randn(4, 8, dtype=torch.bfloat16)
    assert not _switch.onednn_fp32(w)
    torch.testing.assert_close(onednn.linear(x, w), F.linear(x, w))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _switch.onednn_fp32(torch.randn(2, 2))


def test_bf16_is_emulated_where_onednn_has_no_bf16_gemm(monkeypatch, fp32_route):
    """AVX2-only CPUs: oneDNN refuses to pack bf16, so `pack` keeps an fp32 packed copy of the
    bf16 values and `linear` multiplies the widened input in fp32: a bf16 GEMM's values."""
    monkeypatch.setattr(onednn, "_BF16", False)
    torch.manual_seed(4)
    w, b, x = torch.randn(24, 16, dtype=torch.bfloat16), torch.randn(24, dtype=torch.bfloat16), torch.randn(5, 16, dtype=torch.bfloat16)
    packed = onednn.pack(w, rows=5)
    assert _switch.emulate_bf16() == (onednn.op() is not None)
    if onednn.reorder() is not None:
        assert packed.is_mkldnn and packed.dtype == torch.float32
    y = onednn.linear(x, packed, b, gelu="tanh")
    assert y.dtype == torch.bfloat16
    expected = F.gelu(F.linear(x.float(), w.float(), b.float()), approximate="tanh").bfloat16()
    torch.testing.assert_close(y.float(), expected.float(), atol=1e-5, rtol=8e-3)  # fused GELU: at most one bf16 ulp
    torch.testing.assert_close(y.float(), F.gelu(F.linear(x, w, b), approximate="tanh").float(), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("head", [False, True])
@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
def test_bf16_linear_emulation_matches_autocast_values_and_gradients(x_dtype, head, fp32_route):
    """`Bf16Linear` computes what F.linear does under CPU bf16 autocast, gradient dtypes included
    (bit for bit where PyTorch's bf16 GEMM accumulates in the same order; bf16 rounding apart
    elsewhere)."""
    torch.manual_seed(5)
    x0, w0, b0, gy = torch.randn(37, 64).to(x_dtype), torch.randn(48, 64), torch.randn(48), torch.randn(37, 48)
    results = []
    for emulated in (True, False):
        x, w, b = (t.clone().requires_grad_() for t in (x0, w0, b0))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = onednn.Bf16Linear.apply(x, w, b, head) if emulated else F.linear(x, w, b)
        (y.float() * gy).sum().backward()
        results.append([y] + [t.grad for t in (x, w, b)])
    for a, e in zip(*results):
        assert a.dtype == e.dtype
        torch.testing.assert_close(a.float(), e.float(), atol=2e-2, rtol=2e-2)


def test_linear_grad_emulates_bf16_autocast_without_a_bf16_gemm(monkeypatch, fp32_route):
    monkeypatch.setattr(onednn, "_BF16", False)
    x, w = torch.randn(3, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = onednn.linear_grad(x, w)
    assert y.dtype == torch.bfloat16
    assert ("Bf16Linear" in type(y.grad_fn).__name__) == (onednn.op() is not None)
    monkeypatch.setattr(onednn, "_BF16", True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert "Bf16Linear" not in type(onednn.linear_grad(x, w).grad_fn).__name__


def test_bf16_probe_reports_what_pack_does():
    w = torch.randn(24, 16, dtype=torch.bfloat16)
    packed = onednn.pack(w, rows=8)
    if onednn.reorder() is not None:
        assert (packed.dtype == torch.bfloat16) == onednn.bf16_packable()
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # PyTorch's own (private) check
    if check is not None and onednn.reorder() is not None:
        assert onednn.bf16_packable() == check()

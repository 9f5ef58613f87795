"""The C kernels (`tinyreason.kernels`) equal what they replace: the sampler's PyTorch
shared-prefix attention and oneDNN's linears."""

import os
import platform
import subprocess
import sys

import pytest
import torch

from tinyreason.kernels import _cext as cext
from tinyreason.kernels import _switch
from tinyreason.lm.model import random_model, train_char_tokenizer
from tinyreason.lm.cached_gpt2 import _CASTS
from tinyreason.lm.sampler import sample, stop_token_ids
from tinyreason.lm.shared_prefix import SharedPrefix

pytestmark = pytest.mark.kernels  # each test compares a kernel with its plain path (off: skipped)

needs_kernel = pytest.mark.skipif(not cext.loaded(), reason="no C compiler: the kernel is not built here")


@pytest.fixture(scope="module")
def tiny():
    tok = train_char_tokenizer(["P: rnbqkbnr/pppppppp/8 w KQkq - 0 1 M: e2e4 E: 0.3 B: e2e4", "A: +e2e4+"])
    return random_model(tok, seed=2, n_layer=2, n_embd=32, n_head=4, n_positions=128).eval(), tok


@needs_kernel
@pytest.mark.parametrize("d,g", [(8, 4), (64, 4), (64, 11)])  # plain loops; the head-size-64 path (11: > 8 rows a group)
def test_kernel_equals_pytorch_attention_with_padding_and_dropped_rows(d, g):
    torch.manual_seed(0)
    b, h, p, t_new = 3, 2, 21, 18  # 21 prompt slots, 18 new: partial 16-key blocks in both parts
    p_mask = torch.ones(b, p, dtype=torch.long)
    p_mask[1, :2] = 0  # left padding
    p_mask[2, :19] = 0
    kv = [(torch.randn(b, h, p, d), torch.randn(b, h, p, d))]
    pre = SharedPrefix(kv, p_mask, g)
    pre.use_kernel()
    active = torch.tensor([r for r in range(b * g) if r // g != 1 and r % 5 != 1])  # group 1 dropped, others partly
    pre.keep(active)
    a, c = active.numel(), h * d
    kc, vc = cext.key_tiles(torch.randn(a, h, t_new, d)), torch.randn(a, h, t_new, d)
    kc2, vc2 = cext.untiled_keys(kc, t_new).clone(), vc.clone()  # (A, H, Tnew, D) for the PyTorch path
    for t in (0, 3, 16, 17):
        qkv = torch.randn(a, 3 * c)
        out = pre.attend_fused(0, qkv, kc, vc, t, 0.3)  # (A, C)
        q, k, v = (z.view(a, 1, h, d).transpose(1, 2) for z in qkv.view(a, 1, 3 * c).split(c, dim=-1))
        kc2[:, :, t:t + 1], vc2[:, :, t:t + 1] = k, v
        ref = pre.attend(0, q, kc2[:, :, :t + 1], vc2[:, :, :t + 1], 0.3)  # (A, H, 1, D)
        torch.testing.assert_close(out, ref.transpose(1, 2).reshape(a, c), atol=1e-5, rtol=1e-5)
        assert torch.equal(cext.untiled_keys(kc, t + 1), kc2[:, :, : t + 1])
        assert torch.equal(vc[:, :, : t + 1], vc2[:, :, : t + 1])


def test_key_tiles_layout():
    k = torch.randn(2, 3, 17, 4)  # (B, H, T, D)
    kt = cext.key_tiles(k)  # (B, H, 2, D, 16)
    assert kt.shape == (2, 3, 2, 4, 16) and cext.key_slots(16) == 16 and cext.key_slots(1) == 16
    assert torch.equal(kt[:, :, 1, :, 0], k[:, :, 16]) and torch.equal(kt[:, :, 0, 2, 5], k[:, :, 5, 2])
    assert not kt[:, :, 1, :, 1:].any() and torch.equal(cext.untiled_keys(kt, 17), k)


@needs_kernel
@pytest.mark.parametrize("flag,dtype", [("decode_attention", torch.float32), ("decode_attention", torch.bfloat16),
                                        ("decode_linear", torch.float32), ("decode_linear", torch.bfloat16),  # C linears
                                        ("decode_step", torch.float32),  # whole decode steps in one call (fp32 only)
                                        ("sample_rows", torch.float32), ("sample_rows", torch.bfloat16)])  # the draw
def test_sampler_gives_the_same_rollout_with_and_without_the_kernel(tiny, monkeypatch, dtype, flag):
    model, tok = tiny
    stops = stop_token_ids(tok, ["e", "4"])
    prompts = [tok(x).input_ids for x in ("P: rnbqkbnr", "A: +", "P: 8/8 w")]  # left padding
    runs = []
    for on in (True, False):
        monkeypatch.setitem(_switch.FORCED, flag, on)
        if flag == "decode_step":  # off: the per-op path on the same C linears, so only the step's own code differs
            monkeypatch.setitem(_switch.FORCED, "decode_linear", True)
        else:  # the per-op path, where each flag swaps one kernel
            monkeypatch.setitem(_switch.FORCED, "decode_step", False)
        torch.manual_seed(5)
        runs.append(sample(model, prompts, 3, 12, 1.0, stop_ids=stops, pad_id=tok.pad_token_id, dtype=dtype,
                           compact_fraction=0.01))  # rows dropped as they stop: the step sees compacted caches
        if flag == "decode_step":
            assert (_CASTS[model][1].step is not None) == on
    a, b = runs
    assert a.completion_mask.float().mean() < 0.9  # some rows stopped early
    assert torch.equal(a.completion_ids, b.completion_ids)
    bf16_linears = flag == "decode_linear" and dtype == torch.bfloat16  # other summation order, other bf16 roundings
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=2e-2 if bf16_linears else 1e-4, rtol=1e-4)


def test_kernel_is_skipped_where_it_does_not_apply(monkeypatch):
    kv = [(torch.zeros(1, 1, 3, 2),) * 2]  # one group, one head, 3 prompt slots, head size 2
    right_padded = SharedPrefix(kv, torch.tensor([[1, 1, 0]]), 2)
    assert not right_padded.kernel_pays(2, 4, torch.float32, "cpu")  # only left-padded prompts
    if cext.loaded():  # a large batch with several threads stays on PyTorch's ops
        pre = SharedPrefix(kv, torch.ones(1, 3, dtype=torch.long), 2)
        monkeypatch.setattr(_switch, "DECODE_ATTENTION_MAX_KV", 2 * 1 * (3 + 4) * 2 - 1)
        torch.set_num_threads(2)
        assert not pre.kernel_pays(2, 4, torch.float32, "cpu") and not pre.kernel_pays(2, 4, torch.bfloat16, "cpu")
        torch.set_num_threads(1)
        assert pre.kernel_pays(2, 4, torch.float32, "cpu") and not pre.kernel_pays(2, 4, torch.bfloat16, "cpu")
    monkeypatch.setattr(cext, "_LIB", None)
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert not cext.loaded()  # no compiler: the sampler keeps its PyTorch ops
    assert cext._LIB is False
    assert not _switch.decode_linear("cpu")  # ... and its oneDNN linears


@needs_kernel
@pytest.mark.parametrize("rows", [1, 5, 12, 13, 16, 30])
@pytest.mark.parametrize("gelu", [None, "tanh", "none"])
def test_linear_equals_f_linear(rows, gelu):
    torch.manual_seed(rows)
    conv_w = torch.randn(37, 21)  # Conv1D layout (in, out): 21 outputs, not a multiple of the 8-column panels
    w, b, x = conv_w.t(), torch.randn(21), torch.randn(2, rows, 37)  # w (out, in) as a strided view
    ref = torch.nn.functional.linear(x, w, b)
    if gelu is not None:
        ref = torch.nn.functional.gelu(ref, approximate=gelu)
    out = cext.linear(x, cext.Panels(w), b, gelu)
    assert out.shape == (2, rows, 21)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    no_bias = cext.linear(x[0], cext.Panels(w))
    torch.testing.assert_close(no_bias, x[0] @ conv_w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("width", [8, 16])  # the C kernel's panel width: 16 where compiled for AVX-512
@pytest.mark.parametrize("n", [16, 21])
@pytest.mark.parametrize("layout", ["row_major", "conv1d_view"])
def test_panels_layout_and_in_place_repacking(n, layout, width):
    torch.manual_seed(n)
    w = torch.randn(n, 13) if layout == "row_major" else torch.randn(13, n).t()  # (N, K) either way
    expect = torch.zeros(-(-n // width) * width, 13)
    expect[:n] = w
    expect = expect.view(-1, width, 13).transpose(1, 2)  # panel p, row k, column j = W[width p + j, k], 0 past N
    first = cext.Panels(w, width=width)
    assert torch.equal(first.panels, expect)
    first.panels.fill_(7.0)  # stale values, padding included, must all be overwritten
    again = cext.Panels(w * 2, reuse=first, width=width)
    assert again.panels.data_ptr() == first.panels.data_ptr() and torch.equal(again.panels, expect * 2)
    other = cext.Panels(torch.randn(n + width, 13), reuse=first, width=width)  # another shape: new buffer
    assert other.panels.data_ptr() != first.panels.data_ptr()


@needs_kernel
def test_linear_emulates_bf16_on_the_fp32_values():
    torch.manual_seed(0)
    w, b, x = (torch.randn(24, 40).bfloat16(), torch.randn(24).bfloat16(), torch.randn(6, 40).bfloat16())
    out = cext.linear(x, cext.Panels(w), b)
    assert out.dtype == torch.bfloat16  # fp32 math on the bf16 values, rounded once (a bf16 GEMM's result)
    ref = torch.nn.functional.linear(x.float(), w.float(), b.float())
    torch.testing.assert_close(out.float(), ref.bfloat16().float(), atol=0.0, rtol=2 ** -7)


@pytest.mark.skipif(not cext.bf16_native(), reason="the C kernels are not compiled for AVX512-BF16 here")
@pytest.mark.parametrize("rows", [1, 7, 13])
@pytest.mark.parametrize("n", [16, 21])  # 21: a last panel padded with zero columns
def test_bf16_panels_give_a_bf16_gemm_result(rows, n):
    torch.manual_seed(rows)
    conv_w = torch.randn(38, n).bfloat16()  # Conv1D layout (in, out)
    w, b, x = conv_w.t(), torch.randn(n).bfloat16(), torch.randn(rows, 38).bfloat16()
    panels = cext.Panels(w, bf16=True)
    assert panels.panels.dtype == torch.bfloat16 and panels.panels.shape == (-(-n // 16), 19, 16, 2)
    out = cext.linear(x, panels, b, "tanh")
    ref = torch.nn.functional.gelu(torch.nn.functional.linear(x.float(), w.float(), b.float()), approximate="tanh")
    assert out.dtype == torch.bfloat16  # bf16 products accumulated in fp32, rounded once
    torch.testing.assert_close(out.float(), ref.bfloat16().float(), atol=1e-2, rtol=2 ** -7)
    again = cext.Panels(w * 2, reuse=panels, bf16=True)  # re-packed in place
    assert again.panels.data_ptr() == panels.panels.data_ptr()
    with pytest.raises(ValueError, match="even"):
        cext.Panels(torch.randn(4, 5), bf16=True)


def test_linear_is_used_only_where_measured_faster(monkeypatch):
    if not cext.loaded():
        assert not _switch.decode_linear("cpu")
        return
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert _switch.decode_linear("cpu") and not _switch.decode_linear("meta")
        torch.set_num_threads(2)  # oneDNN's threads catch up
        assert not _switch.decode_linear("cpu")
        monkeypatch.setitem(_switch.FORCED, "decode_linear", True)  # forced (tests, benchmarks)
        assert _switch.decode_linear("cpu")
        monkeypatch.setitem(_switch.FORCED, "decode_linear", None)
        torch.set_num_threads(1)
        assert _switch.decode_linear("cpu")
        monkeypatch.setitem(_switch.FORCED, "emulate_bf16", False)  # oneDNN's bf16 GEMM reads half the bytes ...
        monkeypatch.setattr(_switch, "bf16_native", lambda: False)
        assert not _switch.decode_linear("cpu", torch.bfloat16)
        monkeypatch.setattr(_switch, "bf16_native", lambda: True)  # ... as do the C kernel's bf16 panels
        assert _switch.decode_linear("cpu", torch.bfloat16)
        monkeypatch.setattr(_switch, "bf16_native", lambda: False)
        monkeypatch.setitem(_switch.FORCED, "emulate_bf16", True)  # bf16 as fp32 GEMMs: the C ones
        assert _switch.decode_linear("cpu", torch.bfloat16)
        monkeypatch.setitem(_switch.FORCED, "decode_linear", False)
        assert not _switch.decode_linear("cpu")
    finally:
        torch.set_num_threads(threads)


@needs_kernel
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sample_rows_draws_what_the_pytorch_path_draws(temperature):
    from tinyreason.lm.sampler import _draw

    torch.manual_seed(0)
    logits = torch.randn(3000, 50) * 3  # (A, V)
    logits[:, 7] = float("-inf")  # no mass: never drawn
    tok, lp = cext.sample_rows(logits, temperature, torch.Generator().manual_seed(1))
    logp = torch.log_softmax(logits / temperature, -1)
    ref = _draw(logp.exp(), torch.Generator().manual_seed(1))  # the same uniforms, inverted on PyTorch's cdf
    assert (tok == ref).float().mean() > 0.999  # equal but where u * total falls within rounding of a boundary
    assert not (tok == 7).any()
    torch.testing.assert_close(lp, logp.gather(-1, tok[:, None])[:, 0], atol=1e-5, rtol=1e-5)


def test_step_is_used_at_one_thread_for_fp32_and_native_bf16(monkeypatch):
    if not cext.loaded():
        assert not _switch.decode_step("cpu", torch.float32)
        return
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert _switch.decode_step("cpu", torch.float32) and not _switch.decode_step("meta", torch.float32)
        monkeypatch.setitem(_switch.FORCED, "emulate_bf16", False)
        monkeypatch.setattr(_switch, "bf16_native", lambda: True)  # bf16 panels: a bf16 step
        assert _switch.decode_step("cpu", torch.bfloat16)
        monkeypatch.setattr(_switch, "bf16_native", lambda: False)  # no AVX512-BF16 kernel: per op
        assert not _switch.decode_step("cpu", torch.bfloat16)
        torch.set_num_threads(2)  # the C kernels run on one thread; oneDNN's linears use them all
        assert not _switch.decode_step("cpu", torch.float32)
        monkeypatch.setitem(_switch.FORCED, "decode_step", True)  # forced (tests, benchmarks), where it can run
        assert _switch.decode_step("cpu", torch.float32) and not _switch.decode_step("cpu", torch.bfloat16)
    finally:
        torch.set_num_threads(threads)


@needs_kernel
def test_step_is_not_built_for_an_activation_it_does_not_fuse(monkeypatch):
    tok = train_char_tokenizer(["P: e2e4 M: e2e4", "A: +e2e4+"])
    model = random_model(tok, seed=3, n_layer=1, n_embd=16, n_head=2, n_positions=64, activation_function="relu").eval()
    monkeypatch.setitem(_switch.FORCED, "decode_step", True)
    torch.manual_seed(0)
    on = sample(model, [tok("P: e2").input_ids], 2, 6)
    assert _CASTS[model][1].step is None  # the per-op path, on the C linears
    monkeypatch.setitem(_switch.FORCED, "decode_step", False)
    monkeypatch.setitem(_switch.FORCED, "decode_linear", True)  # the same path as a choice
    torch.manual_seed(0)
    off = sample(model, [tok("P: e2").input_ids], 2, 6)
    assert torch.equal(on.completion_ids, off.completion_ids)


@needs_kernel
def test_tanh_gelu_forward_and_backward_match_pytorch(monkeypatch):
    """The C tanh-GELU (gpt2.tanh_gelu on fp32 CPU tensors) against PyTorch's in float64,
    the clamped tails and a non-contiguous input included."""
    from tinyreason.lm.gpt2 import tanh_gelu

    torch.manual_seed(0)
    x0 = torch.randn(37, 64) * 4
    x0[0, :6] = torch.tensor([0.0, -60.0, 60.0, 1e-8, -1e-8, 30.0])
    x = x0.t().requires_grad_()  # a strided view
    y = tanh_gelu(x)
    assert type(y.grad_fn).__name__ == "_TanhGeluBackward"
    g = torch.randn(64, 37)
    y.backward(g)
    xd = x0.t().double().requires_grad_()
    yd = torch.nn.functional.gelu(xd, approximate="tanh")
    yd.backward(g.double())
    torch.testing.assert_close(y.double(), yd, atol=2e-6, rtol=1e-6)
    torch.testing.assert_close(x.grad.double(), xd.grad, atol=2e-6, rtol=1e-6)
    assert not _switch.gelu(x.bfloat16())  # bf16 stays on PyTorch's kernel
    monkeypatch.setitem(_switch.FORCED, "gelu", False)
    assert type(tanh_gelu(x).grad_fn).__name__ == "GeluBackward0"


@needs_kernel
@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 compiler targets")
def test_march_override_builds_the_kernels_for_that_target():
    """$TINYREASON_MARCH replaces -march=native: baseline x86-64 (SSE2) gets 4-column panels and no
    AVX512-BF16 kernel, and its kernels still give F.linear's result."""
    code = ("import torch, torch.nn.functional as F; from tinyreason.kernels import _cext as d; "
            "x, w, b = torch.randn(5, 24), torch.randn(10, 24), torch.randn(10); "
            "err = (d.linear(x, d.Panels(w), b) - F.linear(x, w, b)).abs().max().item(); "
            "print(d.panel_width(), d.bf16_native(), err < 1e-4)")
    env = {**os.environ, "TINYREASON_MARCH": "x86-64"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["4", "False", "True"]

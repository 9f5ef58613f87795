"""fp32 GEMM routes for GPT-2's linears on CPU: MKL (`torch.matmul`/`F.linear`, what a plain
model runs) vs oneDNN from dense tensors (`tinyreason.kernels`, no weight conversion) vs
oneDNN via `to_mkldnn` weight copies (the route used before, which must convert the weights
after every optimizer step). Why `tinyreason.kernels` exists; one run, same shapes.
Also, at decode: dense vs packed weights (`kernels.dnn_pack`, oneDNN's blocked layout, what the
sampler uses) in fp32 and bf16, and the cost of packing once per update.

Shapes: the 124M config's 12 blocks (qkv, proj, fc, out; Conv1D (in, out) weights) at decode
(8 rows: one prompt x G=8) and at training size (764 rows: a 92-token prompt + 8 x 84 completion
tokens), forward and both backward products; the LM head (the tied (50257, 768) embedding) at 672
completion rows, each product; decode with every weight, LM head included.

    .venv/bin/python benchmarks/linear_kernels.py [--threads 1] [--reps 3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

BLOCK = [(768, 2304), (768, 768), (768, 3072), (3072, 768)]  # Conv1D (in, out)
HEAD = (50257, 768)  # the LM head: GPT-2's tied token embedding, (V, C) row-major


def timed(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def setup() -> argparse.Namespace:
    """--threads/--reps, applied: torch threads set and the RNG seeded (shared with update_kernels)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def main() -> None:
    args = setup()
    op = torch.ops.mkldnn._linear_pointwise
    blocks = [torch.randn(i, o) * 0.02 for i, o in BLOCK * 12]  # (in, out) each
    head = torch.randn(*HEAD) * 0.02  # (out, in)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); 124M block linears and LM head, fp32")

    def rows(m):
        return {d: torch.randn(m, d) for d in (768, 2304, 3072, 50257)}

    results = []
    for label, m in (("decode, 8 rows", 8), ("training, 764 rows", 764)):
        x = rows(m)
        mkl = timed(lambda: [x[w.shape[0]] @ w for w in blocks], args.reps)
        dnn = timed(lambda: [op(x[w.shape[0]], w.t(), None, "none", [], "") for w in blocks], args.reps)
        results.append((f"blocks forward, {label}", mkl, dnn))
        if m > 8:  # backward products: gx = gy @ W^T, gw = x^T @ gy
            mkl = timed(lambda: [x[w.shape[1]] @ w.t() for w in blocks], args.reps)
            dnn = timed(lambda: [op(x[w.shape[1]], w, None, "none", [], "") for w in blocks], args.reps)
            results.append((f"blocks backward gx, {label}", mkl, dnn))
            mkl = timed(lambda: [x[w.shape[0]].t() @ x[w.shape[1]] for w in blocks], args.reps)
            dnn = timed(lambda: [op(x[w.shape[1]].t().contiguous(), x[w.shape[0]].t(), None, "none", [], "")
                                 for w in blocks], args.reps)
            results.append((f"blocks backward gw, {label}", mkl, dnn))
    x, gy = torch.randn(672, 768), torch.randn(672, 50257)  # 8 x 84 completion positions
    results.append(("LM head forward, 672 rows", timed(lambda: F.linear(x, head), args.reps),
                    timed(lambda: op(x, head, None, "none", [], ""), args.reps)))
    results.append(("LM head backward gx, 672 rows", timed(lambda: gy @ head, args.reps),
                    timed(lambda: op(gy, head.t(), None, "none", [], ""), args.reps)))
    results.append(("LM head backward gw, 672 rows", timed(lambda: gy.t() @ x, args.reps),
                    timed(lambda: op(gy.t().contiguous(), x.t(), None, "none", [], ""), args.reps)))
    for name, mkl, dnn in results:
        print(f"{name:38s} MKL {mkl * 1e3:8.1f} ms  oneDNN {dnn * 1e3:8.1f} ms  speed-up {mkl / dnn:4.2f}x")
    ws = blocks + [head.t()]  # (in, out) views, as below
    refresh = timed(lambda: [w.t().contiguous().to_mkldnn() for w in ws], args.reps)
    print(f"weight conversion for the to_mkldnn route (after every optimizer step): {refresh * 1e3:.0f} ms; "
          f"dense oneDNN route: none")

    from tinyreason import kernels

    for dtype in (torch.float32, torch.bfloat16):  # decode, 8 rows: dense (out, in) weights vs packed
        if dtype == torch.bfloat16 and not kernels.bf16_packable():
            print("decode, 8 rows, bfloat16: skipped, this CPU's oneDNN has no bf16 GEMM (bf16 is emulated by fp32 GEMMs)")
            continue
        wd = [w.t().contiguous().to(dtype) for w in ws]  # (out, in)
        x = {d: t.to(dtype) for d, t in rows(8).items()}
        dense = timed(lambda: [op(x[w.shape[1]], w, None, "none", [], "") for w in wd], args.reps * 3)
        pack = timed(lambda: [kernels.dnn_pack(w, 8) for w in wd], args.reps)
        wp = [kernels.dnn_pack(w, 8) for w in wd]
        packed = timed(lambda: [op(x[w.shape[1]], p, None, "none", [], "") for w, p in zip(wd, wp)], args.reps * 3)
        name = str(dtype).replace("torch.", "")
        print(f"decode, 8 rows, {name:8s}: dense {dense * 1e3:6.1f} ms  packed {packed * 1e3:6.1f} ms per token  "
              f"speed-up {dense / packed:4.2f}x; packing {pack * 1e3:.0f} ms per update = "
              f"{pack / max(dense - packed, 1e-9):.0f} tokens' saving")
    print(f"fp32 route for dense weights on this CPU (tinyreason.kernels.choose.onednn_fp32): "
          f"{'oneDNN' if kernels.choose.onednn_fp32() else 'MKL (F.linear)'}")


if __name__ == "__main__":
    main()

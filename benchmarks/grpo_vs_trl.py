"""Time per GRPO step: `tinyreason chess grpo` vs TRL's GRPOTrainer, same work, one run.

Both get the same random-weight GPT-2 (small ~3M and the 124M config), the same
RookWorld policy prompts (tests/fixtures; 92 characters, character tokenizer padded to
GPT-2's 50257 entries for the 124M config so its LM head costs what GPT-2's does), G=8,
the same completion length (84 = a policy completion), sampling settings (temperature
1, top-k 0, top-p 1), beta, loss type, num_iterations 1, one micro-batch, no gradient
checkpointing, dropout off, the same reward functions (tinyreason.chess.rewards, which
have TRL's signature) and the same dtype setting (fp32, or bf16 autocast: TRL `bf16=True`,
ours `dtype=bfloat16`; TRL then still generates with fp32 weights, ours with bf16 ones).
Stop: EOS only for both, and the model cannot sample EOS (see `make_model`), so every
completion has the full length on both sides; truncated completions are not masked (TRL's
default). Step 1
(warm-up) is excluded; a step is rollout + rewards + reference + update + optimizer.
Also checks that TRL's `_compute_loss` and ours agree on one fixed batch.
Each side runs in its own fresh process, in turn per round. `chess grpo` sets
`tinyreason.kernels.keep_freed_memory()` for itself on CPU (glibc malloc keeps freed memory, no
page faults per step) and freezes the objects it has made before its first step (`gc.freeze()`:
Python's full collections then skip them); TRL runs twice: as a TRL script runs (`trl`, glibc
defaults) and with the same two settings (`trl-malloc`: the malloc setting is what a TRL user gets
by preloading jemalloc or tcmalloc, and `gc.freeze()` goes before `trainer.train()`), so the ratio
against TRL as shipped and the one with equal process settings come from the same run.
`--recompute` adds a side `ours-recompute`: ours with `keep_rollout_activations=false` (the
update recomputes the forward over the completions instead of taking the rollout's outputs).
TRL is an optional extra for this script only: `.venv/bin/pip install trl`.

    .venv/bin/python benchmarks/grpo_vs_trl.py [--models small,124m] [--dtypes float32] [--threads 1] [--rounds 3]
        [--trl-sides trl,trl-malloc] [--recompute]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "rookworld" / "rook_val_400.txt"
CONFIGS = {
    "small": dict(n_layer=4, n_embd=256, n_head=4, n_positions=1024),
    "124m": dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
}


def padded_char_tokenizer(texts, vocab_size: int | None):
    """Character tokenizer whose vocabulary is filled up to `vocab_size` (GPT-2's 50257 for the
    124M config) with placeholder tokens, so the LM head has GPT-2's real cost."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<|endoftext|>": 0, "<pad>": 1, "<unk>": 2}
    for ch in sorted(set("".join(texts)) | {"\n"}):
        vocab.setdefault(ch, len(vocab))
    i = 0
    while vocab_size and len(vocab) < vocab_size:
        vocab[f"<x{i}>"] = len(vocab)
        i += 1
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(["<|endoftext|>", "<pad>", "<unk>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<pad>", unk_token="<unk>")


def make_model(name: str, lines: list[str], out: Path) -> Path:
    """Random GPT-2 whose EOS can never be sampled, so every completion of both trainers runs
    to the length limit (equal work; a random model otherwise ends rows at random, and
    differently on each side). Done with embedding coordinate 0: zero in every token's row
    but EOS's (-1), and a final-layer-norm bias of 100 there, so EOS's logit is ~-100 and
    every other logit is unchanged."""
    from tinyreason.lm.model import random_model, save_model

    tok = padded_char_tokenizer(lines, 50257 if name == "124m" else None)
    model = random_model(tok, seed=0, **CONFIGS[name])
    with torch.no_grad():
        wte = model.transformer.wte.weight  # (V, C), tied to the LM head
        wte[:, 0] = 0.0
        wte[tok.eos_token_id, 0] = -1.0
        model.transformer.ln_f.bias[0] = 100.0
    save_model(model, tok, out)
    return out


def run_ours(model_dir, data, args, run_dir, dtype: str) -> list[float]:
    from tinyreason.chess import grpo as chess_grpo
    from tinyreason.runlog import read_metrics

    argv = [f"model={model_dir}", f"train_data=[{data}]", "train_split=null", "task_ratio=1:0", f"group_size={args.group}",
            f"prompts_per_step={args.prompts}", f"micro_batch_size={args.prompts * args.group}",
            f"sampling.max_new_tokens={args.new_tokens}", "sampling.stop_strings=[]", f"beta={args.beta}",
            f"loss_type={args.loss_type}", "mask_truncated_completions=false", f"max_steps={args.steps}",
            "eval_every=0", "save_every=0", "log_samples_every=0", f"run_dir={run_dir}", "device=cpu", "lr=1e-6",
            f"dtype={dtype}", "num_iterations=1", f"keep_rollout_activations={str(args.side == 'ours').lower()}"]
    chess_grpo.main(argv)
    recs = [r for r in read_metrics(run_dir) if "time_step" in r]
    return [r["time_step"] for r in recs[1:]], [r["completion_len_mean"] for r in recs[1:]]


def run_trl(model_dir, samples, args, out_dir, dtype: str):
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from tinyreason.chess import rewards
    from tinyreason.lm.model import load_model

    model, tok = load_model(model_dir, "cpu")
    ds = Dataset.from_dict({"prompt": [s.prompt for s in samples], "reference": [s.completion for s in samples]})
    funcs = [getattr(rewards, n) for n in rewards.DEFAULT_WEIGHTS["policy"]]
    cfg = GRPOConfig(output_dir=str(out_dir), per_device_train_batch_size=args.prompts * args.group,
                     num_generations=args.group, max_completion_length=args.new_tokens, temperature=1.0, top_k=0,
                     top_p=1.0, beta=args.beta, loss_type=args.loss_type, learning_rate=1e-6, max_steps=args.steps,
                     logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, bf16=dtype == "bfloat16", num_iterations=1,
                     reward_weights=list(rewards.DEFAULT_WEIGHTS["policy"].values()), disable_dropout=True,
                     gradient_checkpointing=False, dataloader_num_workers=0, seed=0, disable_tqdm=True)
    times, lengths = [], []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t0)

        def on_log(self, _args, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=cfg, train_dataset=ds, processing_class=tok,
                          callbacks=[Timer()])
    trainer.remove_callback(PrinterCallback)  # per-step log dicts on stdout
    if args.side == "trl-malloc":
        gc.freeze()  # as `chess grpo` does before its first step
    trainer.train()
    return trainer, times[1:], lengths[1:]


def check_loss_agreement(trainer, args) -> float:
    """TRL's _compute_loss vs ours on one fixed batch with the same weights: |difference|.
    `args.temperature` (default 1, this script's) divides the logits, as TRL's does."""
    from tinyreason.lm import grpo

    model = trainer.model
    torch.manual_seed(0)
    n, p_len, t_len, v = args.group * 2, 12, 10, model.config.vocab_size
    temp = getattr(args, "temperature", 1.0)
    prompt_ids = torch.randint(3, min(v, 60), (n, p_len))
    completion_ids = torch.randint(3, min(v, 60), (n, t_len))
    prompt_mask = torch.ones(n, p_len, dtype=torch.long)
    completion_mask = (torch.arange(t_len)[None] < torch.randint(3, t_len + 1, (n, 1))).long()
    ids, attn = torch.cat([prompt_ids, completion_ids], 1), torch.cat([prompt_mask, completion_mask], 1)
    with torch.no_grad():
        ref = grpo.completion_logprobs(model, ids, attn, t_len, temp)[0] + 0.05 * torch.randn(n, t_len)
        old = grpo.completion_logprobs(model, ids, attn, t_len, temp)[0] + 0.3 * torch.randn(n, t_len)
    adv = torch.randn(n)
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": adv, "old_per_token_logps": old,
              "ref_per_token_logps": ref, "num_items_in_batch": completion_mask.sum()}
    trainer.model.train()
    theirs = trainer._compute_loss(model, inputs).item()
    lp, _ = grpo.completion_logprobs(model, ids, attn, t_len, temp)
    ours, _ = grpo.grpo_loss(lp, adv, completion_mask, old_logp=old, ref_logp=ref, beta=args.beta,
                             epsilon=trainer.epsilon_low, epsilon_high=trainer.epsilon_high, loss_type=args.loss_type,
                             max_completion_length=args.new_tokens)
    return abs(theirs - ours.item()), theirs, ours.item()


def side_main(args) -> dict:
    """One side in this (fresh) process: per-step times and completion lengths, and for TRL the
    loss-agreement check."""
    if args.side == "trl-malloc":
        from tinyreason.kernels import keep_freed_memory

        keep_freed_memory()  # what `chess grpo` sets for itself on CPU
    if args.side in ("ours", "ours-recompute"):
        times, lengths = run_ours(args.model_dir, args.data, args, args.out, args.dtypes)
        return {"times": times, "lengths": lengths}
    from tinyreason.chess.data import load_samples

    trainer, times, lengths = run_trl(args.model_dir, load_samples(FIXTURE)[:32], args, args.out, args.dtypes)
    return {"times": times, "lengths": lengths, "loss_check": check_loss_agreement(trainer, args)}


def spawn(side: str, model_dir: Path, data: Path, out: Path, dtype: str, args) -> dict:
    """Run one side in a fresh process (no allocator state, threads or caches shared)."""
    cmd = [sys.executable, __file__, "--side", side, "--model-dir", str(model_dir), "--data", str(data), "--out", str(out),
           "--dtypes", dtype, "--steps", str(args.steps), "--prompts", str(args.prompts), "--group", str(args.group),
           "--new-tokens", str(args.new_tokens), "--threads", str(args.threads), "--beta", str(args.beta),
           "--loss-type", args.loss_type]
    res = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode or not lines:
        sys.exit(f"{side} run failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def fmt(times: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="small,124m")
    ap.add_argument("--dtypes", default="float32")
    ap.add_argument("--steps", type=int, default=0, help="steps per run incl. 1 warm-up (0: 4 small, 3 124m)")
    ap.add_argument("--prompts", type=int, default=0, help="prompts per step (0: 2 small, 1 124m)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the sides this many times; also report the overall mean")
    ap.add_argument("--trl-sides", default="trl,trl-malloc",
                    help="TRL as a TRL script runs (trl) and/or with our malloc setting and gc.freeze() (trl-malloc)")
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=84)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--loss-type", default="dapo", choices=["grpo", "dr_grpo", "dapo"])
    ap.add_argument("--recompute", action="store_true",
                    help="also time ours with keep_rollout_activations=false (side ours-recompute)")
    ap.add_argument("--side", choices=["ours", "ours-recompute", "trl", "trl-malloc"], help=argparse.SUPPRESS)  # child
    ap.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "src"))
    if args.side:
        print("RESULT " + json.dumps(side_main(args)), flush=True)
        return
    from tinyreason.chess.data import load_samples

    samples = load_samples(FIXTURE)[:32]
    lines = FIXTURE.read_text().splitlines()
    tmp = Path(tempfile.mkdtemp(prefix="grpo_vs_trl_"))
    data = tmp / "policy.txt"
    data.write_text("\n".join(s.text for s in samples) + "\n")
    trl_sides = args.trl_sides.split(",")
    print(f"torch threads {args.threads or 'default'}; G={args.group}, <= {args.new_tokens} new tokens, beta {args.beta}, "
          f"loss {args.loss_type}; each side in a fresh process")
    for name in args.models.split(","):
        run_args = argparse.Namespace(**{**vars(args), "prompts": args.prompts or (2 if name == "small" else 1),
                                         "steps": args.steps or (4 if name == "small" else 3)})
        model_dir = make_model(name, lines, tmp / name)
        for dtype in args.dtypes.split(","):
            mine = ["ours", "ours-recompute"] if args.recompute else ["ours"]
            all_times: dict[str, list[float]] = {side: [] for side in [*mine, *trl_sides]}
            for r in range(args.rounds):  # sides in turn per round: drifts of the host's speed hit all of them
                res = {side: spawn(side, model_dir, data, tmp / f"{side}_{name}_{dtype}_{r}", dtype, run_args)
                       for side in all_times}
                for side, out in res.items():
                    all_times[side] += out["times"]
                o = statistics.mean(res["ours"]["times"])
                print(f"{name:>5} {dtype:>8} ({run_args.prompts} prompts x G={args.group}, {run_args.steps - 1} timed "
                      f"steps, completions {statistics.mean(res['ours']['lengths']):.1f} tok): ours {o:.2f} s/step "
                      f"[{fmt(res['ours']['times'])}]", flush=True)
                if args.recompute:
                    t = statistics.mean(res["ours-recompute"]["times"])
                    print(f"      ours-recompute: {t:.2f} s/step [{fmt(res['ours-recompute']['times'])}], "
                          f"keeping the rollout's activations {t / o:4.2f}x", flush=True)
                for side in trl_sides:
                    t = statistics.mean(res[side]["times"])
                    diff, l_trl, l_ours = res[side]["loss_check"]
                    print(f"      {side:>10}: {t:.2f} s/step [{fmt(res[side]['times'])}], completions "
                          f"{statistics.mean(res[side]['lengths'] or [0]):.1f} tok, speed-up {t / o:4.2f}x | loss check "
                          f"TRL {l_trl:.6f} ours {l_ours:.6f} |diff| {diff:.2e}", flush=True)
            if args.rounds > 1:
                o, om = statistics.mean(all_times["ours"]), statistics.median(all_times["ours"])
                for side in trl_sides:
                    t, tm = statistics.mean(all_times[side]), statistics.median(all_times[side])
                    print(f"{name:>5} {dtype:>8} all {args.rounds} rounds, {side}: ours {o:.2f} s/step, TRL {t:.2f} s/step, "
                          f"speed-up {t / o:4.2f}x (medians {om:.2f} / {tm:.2f} s: {tm / om:4.2f}x)", flush=True)


if __name__ == "__main__":
    main()

"""Learning parity: `chess grpo` vs TRL's GRPOTrainer on the same work, several seeds per side.

Both sides start from the same model (default `embedded:rookworld-tiny`), get the same prompts
in the same order (our `TaskMixer` draws each step's prompts for the seed; TRL gets that list as
its dataset with `shuffle_dataset=False`), the same rewards (TRL's one reward function dispatches
each row to `tinyreason.chess.rewards.score` by task: `P: ` prompts policy, `A: ` prompts
environment, with our resolved reward weights) and the settings of configs/demo_grpo.yaml
(`make demo`'s GRPO), each mapped to its TRL field in `SETTINGS`; a setting that cannot be
matched stops the script before any run. Overrides of the demo config, the same for both
sides: fp32, `--steps`, no time budget, no safety stops (TRL has none), the final checkpoint
only. Each side-seed run is a fresh process at one thread (OMP_NUM_THREADS=1,
torch.set_num_threads(1)); `--jobs 2` runs two at a time.

Where TRL is not left as shipped, to give both sides the same optimisation problem:
- stop strings: TRL stops at every id of `model.generation_config.eos_token_id` and masks the
  rest, so that is set to our stop tokens (EOS and "\\n"); the reward wrapper cuts the text at
  the stop string, as our `decode_completions` does.
- LR schedule: TRL gets our `lr_lambda` as its scheduler (HF's warmup starts at LR 0 and
  reaches the full LR a step later than ours) and a torch AdamW over all parameters.
- `use_bias_correction_kl=False`: TRL's default multiplies the KL by the (value 1) ratio,
  which changes the KL gradient; our loss has the plain k3 KL.
- position ids (`--trl-positions mask`, the default): TRL's training forward passes none, so
  GPT-2's learned positions of a left-padded prompt are shifted from those it was sampled
  with (policy prompts are ~50 characters shorter than environment prompts in one batch);
  a forward pre-hook gives them from the attention mask, as our trainer and HF generate do.
  `--trl-positions as_shipped` keeps TRL's.

Reports per side: the training reward as the mean of `--windows` windows of steps, the KL
(mean over steps and maximum), and `chess eval` of the final model on the demo's held-out
set, greedy and sampled at the GRPO temperature (as scripts/demo_chess.py evaluates), as mean
± sd over seeds, beside the model before GRPO. Verdict per metric (see `verdict`): within
noise when |mean(ours) - mean(TRL)| <= 2 x pooled sd of the seeds, else better/worse (KL:
higher/lower). Each TRL run also checks TRL's `_compute_loss` against ours on a fixed batch
(`grpo_vs_trl.check_loss_agreement`). Writes OUT/runs/<side>_seed<N>/ (log.txt, run folder,
evaluations, result.json), OUT/results.json and OUT/table.md; a rerun skips the runs whose
result.json exists (and stops if one was made with other settings). TRL is an optional extra: `.venv/bin/pip install "trl>=0.20"`.

    .venv/bin/python benchmarks/grpo_learning_vs_trl.py [--steps 100] [--seeds 0,1,2,3,4] [--jobs 2]
        [--out runs/grpo_learning_vs_trl] [--eval-limit 800] [--windows 4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "configs" / "demo_grpo.yaml"
K_SD = 2.0  # verdict: within noise when |mean difference| <= K_SD * pooled sd

# our GRPOTrainConfig field -> TRL GRPOConfig field (or how TRL gets it): `trl_kwargs` builds these
SETTINGS = [
    ("model, ref_model (unset)", "the same GPT2LMHeadModel object; TRL loads its reference from the model's folder"),
    ("train_data, task_ratio, seed", "train_dataset: our TaskMixer's prompts per step, in order; shuffle_dataset=False"),
    ("group_size", "num_generations"),
    ("prompts_per_step", "per_device_train_batch_size = prompts_per_step x group_size; gradient_accumulation_steps=1, "
                         "steps_per_generation=1"),
    ("micro_batch_size", "none needed: memory only (TRL runs the step's batch as one micro-batch)"),
    ("sampling.max_new_tokens", "max_completion_length"),
    ("sampling.temperature", "temperature (sampling and the loss's logits, both sides)"),
    ("sampling.top_k, sampling.top_p", "top_k, top_p (min_p None, repetition_penalty 1)"),
    ("sampling.stop_strings", "model.generation_config.eos_token_id = our stop_token_ids; the reward wrapper cuts the "
                              "text at the stop string"),
    ("lr", "learning_rate (and the optimizer's lr)"),
    ("schedule, warmup_steps, min_lr_ratio", "optimizers=(AdamW, LambdaLR(our lr_lambda)); HF's warmup would start at 0"),
    ("adam_betas, weight_decay", "adam_beta1, adam_beta2, weight_decay; torch AdamW over all parameters, eps 1e-8"),
    ("max_grad_norm", "max_grad_norm"),
    ("num_iterations", "num_iterations (1 only: ours steps the schedule once per batch of rollouts)"),
    ("beta", "beta; use_bias_correction_kl=False (ours: plain k3 KL)"),
    ("epsilon, epsilon_high", "epsilon, epsilon_high (None: epsilon)"),
    ("loss_type", "loss_type"),
    ("scale_rewards", "scale_rewards; multi_objective_aggregation sum_then_normalize (one reward function)"),
    ("mask_truncated_completions", "mask_truncated_completions"),
    ("zero_std_weight", "none: TRL keeps tied groups (ours 1.0 only)"),
    ("entropy_coef", "none matched: TRL's bonus is a token mean per micro-batch (ours 0.0 only)"),
    ("reward_weights", "reward_funcs=[dispatching wrapper of rewards.score with our resolved weights], reward_weights=[1]"),
    ("dtype", "bf16=False, fp32 only: under bf16=True TRL samples from fp32 weights in autocast, ours from bf16 copies"),
    ("device", "use_cpu=True"),
    ("dropout (always off)", "disable_dropout=True"),
    ("keep_rollout_activations", "none needed: the same numbers up to float rounding"),
    ("(not in ours)", "gradient_checkpointing=False, top_entropy_quantile=1, importance_sampling_level=token, delta None, "
                      "off_policy_mask_threshold None, sync_ref_model False, use_vllm False"),
]

# demo config overrides for both sides (our field=value; TRL gets the resolved settings)
OVERRIDES = ["train_split=null", "eval_split=null", "eval_every=0", "time_budget_min=null", "dtype=float32",
             "device=cpu", "save_every=0", "keep_checkpoints=1", "resume=false", "safety.kl_max=1e30",
             "safety.grad_norm_max=1e30"]


def grpo_argv(args, seed: int, run_dir: Path | None = None) -> list[str]:
    """`chess grpo` arguments of one run: the demo config, its data, the overrides."""
    from tinyreason.hub import EMBEDDED_DIR

    data = args.train_data or str(EMBEDDED_DIR / "rookworld-tiny" / "data" / "grpo_prompts.txt")
    argv = ["--config", str(args.config), f"model={args.model}", f"train_data=[{data}]", f"max_steps={args.steps}",
            f"seed={seed}", *OVERRIDES]
    return argv + ([f"run_dir={run_dir}"] if run_dir else [])


def unmatched(cfg) -> list[str]:
    """Settings of `cfg` (GRPOTrainConfig) that TRL's GRPOTrainer cannot be given; empty when all match."""
    bad = []
    if cfg.dtype != "float32":
        bad.append(f"dtype={cfg.dtype}: TRL's bf16=True samples from fp32 weights in autocast, ours from bf16 copies")
    if cfg.num_iterations != 1:
        bad.append(f"num_iterations={cfg.num_iterations}: TRL steps its schedule per update, ours per rollout batch")
    if cfg.zero_std_weight != 1.0:
        bad.append(f"zero_std_weight={cfg.zero_std_weight}: TRL always keeps tied groups (1.0)")
    if cfg.entropy_coef != 0.0:
        bad.append(f"entropy_coef={cfg.entropy_coef}: TRL's entropy bonus is aggregated differently")
    if cfg.ref_model not in (None, cfg.model):
        bad.append(f"ref_model={cfg.ref_model}: TRL's reference is always the initial model")
    if cfg.device != "cpu":
        bad.append(f"device={cfg.device}: this benchmark runs on CPU")
    return bad


def trl_kwargs(cfg, out_dir: Path) -> dict:
    """GRPOConfig keyword arguments equal to `cfg` (see SETTINGS)."""
    return dict(
        output_dir=str(out_dir), num_generations=cfg.group_size,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.group_size, gradient_accumulation_steps=1,
        steps_per_generation=1, max_completion_length=cfg.sampling.max_new_tokens,
        temperature=cfg.sampling.temperature, top_k=cfg.sampling.top_k, top_p=cfg.sampling.top_p, min_p=None,
        repetition_penalty=1.0, learning_rate=cfg.lr, adam_beta1=cfg.adam_betas[0], adam_beta2=cfg.adam_betas[1],
        adam_epsilon=1e-8, weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        num_iterations=cfg.num_iterations, beta=cfg.beta, use_bias_correction_kl=False, epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon, loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards, mask_truncated_completions=cfg.mask_truncated_completions,
        reward_weights=[1.0], multi_objective_aggregation="sum_then_normalize", max_steps=cfg.max_steps,
        seed=cfg.seed, shuffle_dataset=False, bf16=False, fp16=False, use_cpu=True, disable_dropout=True,
        gradient_checkpointing=False, top_entropy_quantile=1.0, importance_sampling_level="token", delta=None,
        off_policy_mask_threshold=None, sync_ref_model=False, use_vllm=False, entropy_coef=0.0, logging_steps=1,
        save_strategy="no", report_to="none", disable_tqdm=True, dataloader_num_workers=0,
    )


def task_of(prompt: str) -> str:
    """RookWorld task of a prompt: `P: ` policy, `A: ` environment."""
    if prompt.startswith("P: "):
        return "policy"
    if prompt.startswith("A: "):
        return "env"
    raise ValueError(f"neither a policy nor an environment prompt: {prompt[:40]!r}")


def dispatching_reward(weights: dict[str, dict[str, float]], stop_strings: list[str]):
    """One TRL reward function: each row scored by `rewards.score` of its prompt's task with our
    weights, on the completion cut at the first stop string (as `decode_completions`)."""
    from tinyreason.chess import rewards

    def chess_reward(prompts, completions, reference, **_):
        texts = list(completions)
        for s in stop_strings:
            texts = [t.split(s, 1)[0] for t in texts]
        out = [0.0] * len(texts)
        for task in ("policy", "env"):
            rows = [i for i, p in enumerate(prompts) if task_of(p) == task]
            if rows:
                total, _ = rewards.score(task, [prompts[i] for i in rows], [texts[i] for i in rows],
                                         [reference[i] for i in rows], weights[task])
                for i, v in zip(rows, total):
                    out[i] = float(v)
        return out

    return chess_reward


def mask_positions(model) -> None:
    """Position ids from the attention mask wherever a call gives none (TRL's training forward)."""
    def hook(_module, args, kwargs):
        mask, ids = kwargs.get("attention_mask"), kwargs.get("input_ids", args[0] if args else None)
        if kwargs.get("position_ids") is None and mask is not None and ids is not None and mask.shape == ids.shape:
            kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, L)
        return args, kwargs

    model.register_forward_pre_hook(hook, with_kwargs=True)


def windows_of(n_values: int, n: int) -> list[tuple[int, int]]:
    """[start, end) of n consecutive windows of (nearly) equal size over n_values (at most n_values windows)."""
    n = max(1, min(n, n_values))
    bounds = [round(i * n_values / n) for i in range(n + 1)]
    return list(zip(bounds, bounds[1:]))


def window_means(values: list[float], n: int) -> list[float]:
    """Means of `values` over n consecutive windows of (nearly) equal size."""
    return [statistics.fmean(values[a:b]) for a, b in windows_of(len(values), n)]


def pooled_sd(a: list[float], b: list[float]) -> float:
    """sqrt of the pooled sample variance of two groups (each needs 2+ values)."""
    va, vb = statistics.variance(a), statistics.variance(b)
    return math.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2))


def verdict(ours: list[float], trl: list[float], higher_is_better: bool | None) -> str:
    """'within noise' when |mean(ours) - mean(trl)| <= K_SD * pooled sd, else 'better'/'worse'
    (`higher_is_better` None: 'higher'/'lower'); 'n/a' with fewer than 2 seeds on a side."""
    if len(ours) < 2 or len(trl) < 2:
        return "n/a"
    d = statistics.fmean(ours) - statistics.fmean(trl)
    if abs(d) <= K_SD * pooled_sd(ours, trl):
        return "within noise"
    if higher_is_better is None:
        return "higher" if d > 0 else "lower"
    return "better" if (d > 0) == higher_is_better else "worse"


# --- one run (child process) ----------------------------------------------------------


def run_ours(args, seed: int, run_dir: Path) -> tuple[dict, Path | None]:
    from tinyreason.chess import grpo as chess_grpo
    from tinyreason.lm.state import latest_checkpoint
    from tinyreason.runlog import read_metrics

    rc = chess_grpo.main(grpo_argv(args, seed, run_dir))
    recs = [r for r in read_metrics(run_dir) if "reward_mean" in r]
    return {"exit_code": rc, "reward": [r["reward_mean"] for r in recs], "kl": [r["kl"] for r in recs],
            "lr": [r["lr"] for r in recs], "grad_norm": [r["grad_norm"] for r in recs],
            "step_seconds": [r["time_step"] for r in recs]}, \
        latest_checkpoint(run_dir)


def run_trl(args, seed: int, run_dir: Path) -> tuple[dict, Path]:
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from grpo_vs_trl import check_loss_agreement
    from tinyreason.config import parse_command
    from tinyreason.chess.engine import configure_shared_pool
    from tinyreason.chess.tasks import TASKS, load
    from tinyreason.lm.grpo_data import TaskMixer, load_pools, parse_ratio
    from tinyreason.lm.grpo_train import GRPOTrainConfig
    from tinyreason.lm.model import load_model, save_model
    from tinyreason.lm.tasks import reward_weights
    from tinyreason.lm.optim import lr_lambda
    from tinyreason.lm.sampler import stop_token_ids

    cfg = parse_command(GRPOTrainConfig, grpo_argv(args, seed))
    torch.manual_seed(cfg.seed)
    model, tok = load_model(cfg.model, "cpu", "float32")
    mixer = TaskMixer(load_pools(load, TASKS, cfg.train_data, cfg.train_split, cfg.train_limit), parse_ratio(cfg.task_ratio),
                      cfg.seed)
    batch = [s for step in range(1, cfg.max_steps + 1) for s in mixer.batch(step, cfg.prompts_per_step, 0, 1)]
    ds = Dataset.from_dict({"prompt": [s.prompt for s in batch], "reference": [s.completion for s in batch]})
    configure_shared_pool(cfg.stockfish, size=cfg.engine_workers, nodes=cfg.engine_nodes)
    eos_saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = stop_token_ids(tok, cfg.sampling.stop_strings)
    if args.trl_positions == "mask":
        mask_positions(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.adam_betas, eps=1e-8, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.schedule, cfg.warmup_steps, cfg.max_steps,
                                                             cfg.min_lr_ratio))
    steps: list[dict] = []  # TRL's per-step logs
    times: list[float] = []  # seconds per step

    class Log(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t0)

        def on_log(self, _args, state, control, logs=None, **k):
            if logs and "reward" in logs:
                steps.append(dict(logs))

    trainer = GRPOTrainer(model=model, reward_funcs=[dispatching_reward(reward_weights(TASKS, cfg.reward_weights),
                                                                        cfg.sampling.stop_strings)],
                          args=GRPOConfig(**trl_kwargs(cfg, run_dir)), train_dataset=ds, processing_class=tok,
                          callbacks=[Log()], optimizers=(opt, sched))
    trainer.remove_callback(PrinterCallback)
    if args.trl_positions == "mask" and trainer.ref_model is not None:
        mask_positions(trainer.ref_model)  # TRL loads its reference afresh from the model's folder
    trainer.train()
    check = argparse.Namespace(group=cfg.group_size, beta=cfg.beta, loss_type=cfg.loss_type,
                               new_tokens=cfg.sampling.max_new_tokens, temperature=cfg.sampling.temperature)
    diff, l_trl, l_ours = check_loss_agreement(trainer, check)
    model.generation_config.eos_token_id = eos_saved
    final = save_model(trainer.model, tok, run_dir / "final")
    return {"exit_code": 0, "reward": [r["reward"] for r in steps], "kl": [r.get("kl", 0.0) for r in steps],
            "lr": [r.get("learning_rate") for r in steps], "grad_norm": [r.get("grad_norm") for r in steps],
            "step_seconds": times,
            "loss_check": {"abs_diff": diff, "trl": l_trl, "ours": l_ours}}, final


def evaluate_model(args, model: str, out: Path, temperature: float) -> dict:
    """`chess eval` as scripts/demo_chess.py runs it (held-out set + mate-in-one, bf16, seed 0)."""
    from tinyreason.chess import evaluate
    from tinyreason.hub import EMBEDDED_DIR

    data = EMBEDDED_DIR / "rookworld-tiny" / "data"
    name = "eval_greedy" if temperature == 0 else "eval_sampled"
    evaluate.main(["--model", model, f"temperature={temperature}", "seed=0", "--data", str(data / "heldout.txt"),
                   "--mate-in-one", str(data / "mate_in_one.txt"), "--limit", str(args.eval_limit), "--batch-size", "100",
                   "--device", "cpu", "--dtype", "bfloat16", "--out", str(out / f"{name}.json"),
                   "--records", str(out / f"{name}_records.jsonl"), "engine_nodes=2000", "engine_workers=1", "show=0"])
    return json.loads((out / f"{name}.json").read_text())


def run_key(args) -> dict:
    """What a run's result depends on besides side and seed: a resumed benchmark reuses only runs made with it."""
    return {"model": args.model, "config": str(args.config), "train_data": args.train_data, "steps": args.steps,
            "eval_limit": args.eval_limit, "trl_positions": args.trl_positions}


def child_main(args) -> None:
    """One side-seed run (or the model before GRPO) in this process; writes its result.json."""
    import torch

    from tinyreason.config import parse_command
    from tinyreason.fileio import atomic_write_json
    from tinyreason.lm.grpo_train import GRPOTrainConfig

    torch.set_num_threads(1)
    out = Path(args.out)
    temp = parse_command(GRPOTrainConfig, grpo_argv(args, 0)).sampling.temperature
    t0 = time.time()
    if args.side == "before":
        train, final = {}, args.model
    else:
        run_dir = out / "run"
        train, path = (run_ours if args.side == "ours" else run_trl)(args, args.seed, run_dir)
        if path is None:
            sys.exit(f"{args.side} seed {args.seed}: no final model (exit {train['exit_code']}); see {run_dir}")
        final = str(path)
    t1 = time.time()
    ev = {"greedy": evaluate_model(args, final, out, 0.0), "sampled": evaluate_model(args, final, out, temp)}
    atomic_write_json(out / "result.json", {"side": args.side, "seed": args.seed, "run_key": run_key(args),
                                            "final_model": final, **train,
                                            "eval": ev, "seconds": {"train": t1 - t0, "eval": time.time() - t1}})


# --- the runs and the table (parent process) -------------------------------------------


def spawn(args, side: str, seed: int, out: Path) -> dict | None:
    """Run one side-seed in a fresh one-thread process (log in out/log.txt); its result, or the
    existing one when out/result.json is there already (resume)."""
    res = out / "result.json"
    label = "before GRPO" if side == "before" else f"{side} seed {seed}"
    if res.is_file():
        print(f"{label}: done before, {res}", flush=True)
        return json.loads(res.read_text())
    out.mkdir(parents=True, exist_ok=True)
    if (out / "run").exists():  # a killed run starts over
        import shutil

        shutil.rmtree(out / "run")
    cmd = [sys.executable, __file__, "--side", side, "--seed", str(seed), "--out", str(out), "--model", args.model,
           "--config", str(args.config), "--steps", str(args.steps), "--eval-limit", str(args.eval_limit),
           "--trl-positions", args.trl_positions] + (["--train-data", args.train_data] if args.train_data else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    t0 = time.time()
    with open(out / "log.txt", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    if rc or not res.is_file():
        print(f"{label}: FAILED (exit {rc}), see {out / 'log.txt'}", flush=True)
        return None
    print(f"{label}: {time.time() - t0:.0f} s", flush=True)
    return json.loads(res.read_text())


def fmt(key: str, v: float | None, sd: bool = False) -> str:
    if v is None:
        return "n/a"
    if key.endswith("rate") or key.endswith("accuracy"):
        return f"{v * 100:.1f}" + ("" if sd else "%")
    return f"{v:.4f}" if key.startswith("kl") else f"{v:.3f}"


def metric_rows(results: dict[str, list[dict]], before: dict | None, windows: int) -> list[dict]:
    """One row per metric: label, key, higher-is-better, the value before GRPO and per side the
    per-seed values."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from demo_chess import ROWS

    rows = []
    n_steps = min((len(r["reward"]) for rs in results.values() for r in rs), default=0)  # runs that stopped early
    for w, (a, b) in enumerate(windows_of(n_steps, windows) if n_steps else []):
        rows.append({"metric": f"training reward, steps {a + 1}-{b}", "key": "reward", "higher": True, "before": None,
                     **{s: [window_means(r["reward"][:n_steps], windows)[w] for r in rs] for s, rs in results.items()}})
    rows.append({"metric": "KL, mean over steps", "key": "kl_mean", "higher": None, "before": None,
                 **{s: [statistics.fmean(r["kl"]) for r in rs] for s, rs in results.items()}})
    rows.append({"metric": "KL, max over steps", "key": "kl_max", "higher": None, "before": None,
                 **{s: [max(r["kl"]) for r in rs] for s, rs in results.items()}})
    for mode in ("greedy", "sampled"):
        for label, section, key, higher in ROWS:
            vals = {s: [r["eval"][mode].get(section, {}).get(key) for r in rs] for s, rs in results.items()}
            if any(v is None for vs in vals.values() for v in vs):
                continue  # e.g. the centipawn loss without Stockfish
            b = before["eval"][mode].get(section, {}).get(key) if before else None
            rows.append({"metric": f"{mode}: {label}", "key": key, "higher": higher, "before": b, **vals})
    for row in rows:
        row["verdict"] = verdict(row["ours"], row["trl"], row["higher"])
    return rows


def mean_sd(key: str, vals: list[float]) -> str:
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return fmt(key, vals[0])
    unit = " pts" if fmt(key, 1.0).endswith("%") else ""
    return f"{fmt(key, statistics.fmean(vals))} ± {fmt(key, statistics.stdev(vals), sd=True)}{unit}"


def table_md(rows: list[dict], header: list[str]) -> str:
    lines = header + ["", "| metric | before GRPO | TRL | ours | ours − TRL | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        d = statistics.fmean(r["ours"]) - statistics.fmean(r["trl"]) if r["ours"] and r["trl"] else None
        diff = "n/a" if d is None else (f"{d * 100:+.1f} pts" if fmt(r["key"], 1.0).endswith("%") else
                                          f"{d:+.4f}" if r["key"].startswith("kl") else f"{d:+.3f}")
        lines.append(f"| {r['metric']} | {fmt(r['key'], r['before']) if r['before'] is not None else ''} | "
                     f"{mean_sd(r['key'], r['trl'])} | {mean_sd(r['key'], r['ours'])} | {diff} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100, help="GRPO steps per run")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds, each run on both sides")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (each one thread)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "grpo_learning_vs_trl"))
    ap.add_argument("--eval-limit", type=int, default=800, help="held-out samples (and mate positions) per eval")
    ap.add_argument("--windows", type=int, default=4, help="training-reward windows")
    ap.add_argument("--model", default="embedded:rookworld-tiny")
    ap.add_argument("--config", type=Path, default=DEMO_CONFIG, help="our GRPO config (both sides)")
    ap.add_argument("--train-data", default=None, help="GRPO prompts (default: the demo's)")
    ap.add_argument("--trl-positions", choices=["mask", "as_shipped"], default="mask",
                    help="TRL's training forward: position ids from the attention mask (as ours), or none")
    ap.add_argument("--side", choices=["ours", "trl", "before"], help=argparse.SUPPRESS)  # child
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "src"))
    if args.side:
        child_main(args)
        return
    import importlib.util

    from tinyreason.config import parse_command
    from tinyreason.errors import UserError
    from tinyreason.fileio import atomic_write_json, atomic_write_text
    from tinyreason.lm.grpo_train import GRPOTrainConfig

    if importlib.util.find_spec("trl") is None:
        sys.exit('TRL is not installed: .venv/bin/pip install "trl>=0.20"')
    seeds = [int(s) for s in args.seeds.split(",")]
    try:
        cfg = parse_command(GRPOTrainConfig, grpo_argv(args, seeds[0]))
        bad = unmatched(cfg)
        if bad:
            raise UserError("settings TRL cannot be given: " + "; ".join(bad))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    import dataclasses

    import torch
    import trl

    out = Path(args.out)
    missing = sorted(set(trl_kwargs(cfg, out)) - {f.name for f in dataclasses.fields(trl.GRPOConfig)})
    if missing:  # an older TRL: a setting it lacks would silently take that version's behaviour
        print(f"error: TRL {trl.__version__}'s GRPOConfig lacks {missing} (written against TRL 1.16)", file=sys.stderr)
        sys.exit(2)
    header = [
        "# GRPO learning parity: `chess grpo` vs TRL GRPOTrainer", "",
        f"{args.model}, {args.config.name} + {' '.join(OVERRIDES)}; {args.steps} steps; seeds {args.seeds} per side; "
        f"G {cfg.group_size} x {cfg.prompts_per_step} prompts (task_ratio {cfg.task_ratio}), <= "
        f"{cfg.sampling.max_new_tokens} tokens, T {cfg.sampling.temperature}, lr {cfg.lr} {cfg.schedule} "
        f"(warmup {cfg.warmup_steps}), beta {cfg.beta}, loss {cfg.loss_type}, scale_rewards {cfg.scale_rewards}, "
        f"mask_truncated {cfg.mask_truncated_completions}, max_grad_norm {cfg.max_grad_norm}, betas "
        f"{tuple(cfg.adam_betas)}, {cfg.dtype}; TRL {trl.__version__} (positions: {args.trl_positions}), torch "
        f"{torch.__version__}; one thread per run.", "",
        f"Held-out: `chess eval` of the final model, first {args.eval_limit} samples of the demo's heldout.txt and "
        f"mate_in_one.txt, greedy and sampled at T {cfg.sampling.temperature} (seed 0), bf16. Values: mean ± sd over "
        f"seeds. Verdict: within noise when |mean(ours) − mean(TRL)| <= {K_SD:g} x pooled sd of the seeds, else "
        "better/worse (KL: higher/lower); n/a with fewer than 2 seeds per side.",
    ]
    print("\n".join(header[2:3]) + "\n\nour setting -> TRL GRPOConfig:")
    for ours, theirs in SETTINGS:
        print(f"  {ours:<40} {theirs}")
    jobs = [("trl", s) for s in seeds] + [("ours", s) for s in seeds] + [("before", 0)]  # longest first
    dirs = [out / "runs" / ("before" if side == "before" else f"{side}_seed{seed}") for side, seed in jobs]
    for d in dirs:
        if (d / "result.json").is_file() and json.loads((d / "result.json").read_text()).get("run_key") != run_key(args):
            sys.exit(f"error: {d} holds a run made with other settings than {run_key(args)}; use another --out")
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        done = list(pool.map(lambda jd: spawn(args, jd[0][0], jd[0][1], jd[1]), zip(jobs, dirs)))
    before = done[-1]
    results = {side: [r for (s, _), r in zip(jobs, done) if s == side and r is not None] for side in ("trl", "ours")}
    rows = metric_rows(results, before, args.windows)
    checks = [r["loss_check"]["abs_diff"] for r in results["trl"]]
    notes = [f"Runs: TRL {len(results['trl'])}, ours {len(results['ours'])} of {len(seeds)} seeds each; steps logged "
             f"{sorted({len(r['reward']) for rs in results.values() for r in rs})}. Loss check (TRL `_compute_loss` vs "
             f"ours, fixed batch): max |diff| {max(checks):.2e}." if checks else "No TRL run finished."]
    md = table_md(rows, header) + "\n" + "\n".join(notes) + "\n"
    atomic_write_text(out / "table.md", md)
    atomic_write_json(out / "results.json", {"args": {k: str(v) for k, v in vars(args).items()},
                                             "settings": SETTINGS, "overrides": OVERRIDES, "rows": rows,
                                             "before": before, "runs": results})
    print("\n" + md + f"\nwritten: {out / 'table.md'}, {out / 'results.json'}")
    if len(results["trl"]) < len(seeds) or len(results["ours"]) < len(seeds):
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Drop samples whose position (FEN) occurs in other sample files; keep the first N per task.

    python scripts/dedupe_positions.py IN.txt OUT.txt --exclude train.txt [other.txt ...] [--per-task N]

Used by scripts/build_embedded_rookworld.sh so the held-out, GRPO and mate-in-one sets
share no position with the SFT data (nor with each other): "held-out" then means positions
the model never saw. A position is its FEN without the move counters, so a transposition
reached at another move number still counts as seen.
"""

from __future__ import annotations

import argparse
import sys

from tinyreason.chess.data import load_samples
from tinyreason.chess.formats import parse_env_prompt, parse_policy
from tinyreason.fileio import atomic_write_text


def position_key(task: str, prompt: str) -> str:
    fen = parse_policy("", fen=prompt).fen if task == "policy" else parse_env_prompt(prompt).fen
    return " ".join((fen or "").split()[:4])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--exclude", nargs="*", default=[])
    ap.add_argument("--per-task", type=int, default=None, help="keep at most N samples of each task")
    args = ap.parse_args(argv)
    seen = {position_key(s.task, s.prompt) for ref in args.exclude for s in load_samples(ref)}
    kept, count = [], {"policy": 0, "env": 0}
    for s in load_samples(args.inp):
        if position_key(s.task, s.prompt) in seen:
            continue
        if args.per_task is not None and count[s.task] >= args.per_task:
            continue
        count[s.task] += 1
        kept.append(s.text)
    atomic_write_text(args.out, "".join(t + "\n" for t in kept))
    print(f"{args.out}: kept {count['policy']} policy + {count['env']} env samples", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

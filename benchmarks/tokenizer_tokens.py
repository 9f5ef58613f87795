"""Tokens per RookWorld sample: the shipped model's character tokenizer vs the chess tokenizer.

    python benchmarks/tokenizer_tokens.py [FILE ...]   # default: the embedded model's data + rook_val_400

Counts, not timings: mean tokens per sample (prompt + completion, no EOS) and per completion,
by task, and the chess tokenizer's reduction. Also checks the exact round trip on every line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from tinyreason.chess.data import load_samples
from tinyreason.chess.tokenizer import chess_tokenizer
from tinyreason.hub import EMBEDDED_DIR
from tinyreason.lm.model import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [*sorted((EMBEDDED_DIR / "rookworld-tiny" / "data").glob("*.txt")),
           ROOT / "tests" / "fixtures" / "rookworld" / "rook_val_400.txt"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, default=DEFAULT)
    args = ap.parse_args()
    char, chess = load_tokenizer("embedded:rookworld-tiny"), chess_tokenizer()
    print("| data | task | n | chars | char tokens | chess tokens | reduction | completion: char | chess |")
    print("|---|---|---|---|---|---|---|---|---|")
    bad = 0
    for path in args.files:
        samples = load_samples(path)
        for task in ("policy", "env"):
            rows = [s for s in samples if s.task == task]
            if not rows:
                continue
            texts = [s.text for s in rows]
            n_char = [len(i) for i in char(texts).input_ids]
            ids = chess(texts).input_ids
            bad += sum(t != d for t, d in zip(texts, chess.batch_decode(ids)))
            n_chess = [len(i) for i in ids]
            c_char = statistics.mean(len(i) for i in char([s.completion for s in rows]).input_ids)
            c_chess = statistics.mean(len(i) for i in chess([s.completion for s in rows]).input_ids)
            m_char, m_chess = statistics.mean(n_char), statistics.mean(n_chess)
            print(f"| {path.name} | {task} | {len(rows)} | {statistics.mean(map(len, texts)):.1f} | {m_char:.1f} | "
                  f"{m_chess:.1f} | {1 - m_chess / m_char:.1%} | {c_char:.1f} | {c_chess:.1f} |")
    if bad:
        print(f"error: {bad} lines do not round-trip through the chess tokenizer", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

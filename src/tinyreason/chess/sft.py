"""`tinyreason chess sft`: the generic SFT trainer (`tinyreason.lm.sft`) on RookWorld text, with
the chess tokenizer for `chess_tokenizer: true`."""

from __future__ import annotations

from tinyreason.chess import tasks
from tinyreason.chess.tokenizer import chess_tokenizer
from tinyreason.config import parse_command
from tinyreason.lm import sft
from tinyreason.lm.sft import SFTConfig
from tinyreason.runguard import start_run


def main(argv: list[str]) -> int:
    cfg = parse_command(SFTConfig, argv, prog="tinyreason chess sft")
    with start_run(cfg.run_dir, cfg.resume, cfg.overwrite):
        return sft.train(cfg, tasks.load, chess_tokenizer)

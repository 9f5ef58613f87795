"""`tinyreason chess grpo`: the generic GRPO trainer (`tinyreason.lm.grpo_train`) on the RookWorld
tasks (`tinyreason.chess.tasks`), with live Stockfish rewards configured from the config."""

from __future__ import annotations

from tinyreason.chess import tasks
from tinyreason.chess.engine import configure_shared_pool
from tinyreason.config import parse_command
from tinyreason.lm import grpo_train
from tinyreason.lm.grpo_train import GRPOTrainConfig
from tinyreason.runguard import start_run


def main(argv: list[str]) -> int:
    cfg = parse_command(GRPOTrainConfig, argv, prog="tinyreason chess grpo")
    with start_run(cfg.run_dir, cfg.resume, cfg.overwrite):
        configure_shared_pool(cfg.stockfish, size=cfg.engine_workers, nodes=cfg.engine_nodes)
        return grpo_train.train(cfg, tasks.TASKS, tasks.load)

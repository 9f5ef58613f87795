"""RookWorld chess domain: text formats, the arbiter, Stockfish data generation, loaders, rewards."""

from tinyreason.chess.arbiter import arbiter_completion

__all__ = ["arbiter_completion"]

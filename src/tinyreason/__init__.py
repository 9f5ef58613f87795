"""tinyreason: train and evaluate small reasoning models on program-verifiable puzzles."""

__version__ = "0.1.0"

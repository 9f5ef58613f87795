"""Tiny RookWorld data and a tiny random GPT-2 with a character tokenizer, built once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rookworld"


def rookworld_lines(n_policy: int = 8, n_env: int = 8) -> list[str]:
    """Real policy lines from rook_val_400 and env lines (prompt + arbiter truth) from the env fixture."""
    from tinyreason.chess.arbiter import arbiter_completion

    policy = FIXTURES.joinpath("rook_val_400.txt").read_text().splitlines()[:n_policy]
    env_prompts = [e["prompt"] for e in json.loads(FIXTURES.joinpath("env_prompts_expected.json").read_text())]
    env_prompts = sorted(env_prompts, key=len)[:n_env]  # short histories keep the tiny model's context small
    return policy + [p + arbiter_completion(p) for p in env_prompts]


@pytest.fixture(scope="session")
def rook_data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rook") / "train.txt"
    path.write_text("\n".join(rookworld_lines()) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, rook_data) -> Path:
    from tinyreason.lm.model import random_model, save_model, train_char_tokenizer

    tok = train_char_tokenizer(rook_data.read_text().splitlines(), extra_chars="0123456789abcdefghprnbqkPRNBQK/-+. \n")
    model = random_model(tok, seed=0, n_layer=2, n_embd=32, n_head=2, n_positions=512)
    out = tmp_path_factory.mktemp("models") / "tiny"
    save_model(model, tok, out)
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs at one torch thread (tests/conftest.py)."""

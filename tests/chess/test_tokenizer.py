"""The chess tokenizer: exact round trip on every RookWorld format, whole moves as single tokens,
prompt and completion tokenized apart as together, and a tiny GPT-2 through SFT, sampling,
GRPO and chess eval with it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import chess
import pytest

from tinyreason.chess.arbiter import arbiter_completion
from tinyreason.chess.data import load_samples, split_text
from tinyreason.chess.tokenizer import MARKERS, chess_tokenizer, move_pairs, promotions, write_chess_tokenizer
from tinyreason.errors import UserError
from tinyreason.hub import EMBEDDED_DIR

ROOKWORLD = Path(__file__).parents[1] / "fixtures" / "rookworld"
EMBEDDED_DATA = EMBEDDED_DIR / "rookworld-tiny" / "data"


@pytest.fixture(scope="module")
def tok():
    return chess_tokenizer()


def _all_lines() -> dict[str, list[str]]:
    """Every sample of the fixtures (padded policy, env prompts with their arbiter or model
    completions) and of the embedded data (compact policy, env, mate-in-one)."""
    out = {"rook_val_400": (ROOKWORLD / "rook_val_400.txt").read_text().splitlines()}
    expected = json.loads((ROOKWORLD / "env_prompts_expected.json").read_text())
    out["env_prompts_expected"] = [e["prompt"] + arbiter_completion(e["prompt"]) for e in expected]
    generations = json.loads((ROOKWORLD / "rookworld_lm_env_generations.json").read_text())
    out["rookworld_lm_env_generations"] = [g["prompt"] + g["generated"] for g in generations]
    for path in sorted(EMBEDDED_DATA.glob("*.txt")):
        out[path.stem] = path.read_text().splitlines()
    return out


def test_vocabulary(tok):
    moves, promos = move_pairs(), promotions()
    assert (len(moves), len(promos)) == (1792, 176)  # queen 1456 + knight 336; 2 x 22 pawn moves x 4 pieces
    assert [tok.eos_token_id, tok.pad_token_id, tok.unk_token_id] == [0, 1, 2]
    assert tok.bos_token == tok.eos_token == "<|endoftext|>"
    vocab = tok.get_vocab()
    assert all(t in vocab for t in moves + promos + list(chess.SQUARE_NAMES) + list(MARKERS))
    assert all(chr(c) in vocab for c in range(32, 127)) and "\n" in vocab
    assert len(tok) == len(vocab) == 3 + 96 + 64 + 1 + 5 + 6 + 1792 + 176
    assert "a1h7" not in vocab and "e2e4q" not in vocab  # no piece moves so; promotions only to the last rank


def test_every_legal_move_is_one_token(tok):
    """Each legal move of every rook_val_400 position and a few promotion positions, in an `M:` list."""
    fens = [split_text(line).prompt[3:].strip() for line in (ROOKWORLD / "rook_val_400.txt").read_text().splitlines()]
    fens += ["1n2k3/P1P5/8/8/8/8/1p1p4/R3K2R w KQ - 0 1", "1n2k3/P1P5/8/8/8/8/1p1p4/R3K2R b KQ - 0 1"]
    n = 0
    for fen in fens:
        moves = sorted(m.uci() for m in chess.Board(fen).legal_moves)
        text = "M: " + " ".join(moves)
        pieces = tok.convert_ids_to_tokens(tok(text).input_ids)
        assert pieces == ["M: "] + [p for m in moves for p in (m, " ")][:-1], fen
        n += len(moves)
    assert n > 10000


def _check_round_trip_and_split(tok, texts: list[str]) -> None:
    """decode(encode(x)) == x for every sample (with and without its newline), no <unk>, and a
    sample's prompt and completion tokenized apart give the ids of the whole (SFT and GRPO agree)."""
    for batch in (texts, [t + "\n" for t in texts]):
        ids = tok(batch).input_ids
        assert tok.batch_decode(ids) == batch
        assert not any(tok.unk_token_id in i for i in ids)
    samples = [split_text(t) for t in texts]
    apart = zip(tok([s.prompt for s in samples]).input_ids, tok([s.completion for s in samples]).input_ids)
    assert [p + c for p, c in apart] == tok(texts).input_ids


def _history(text: str) -> int:
    return len(text.split("+")[2].split()) if text.startswith("A: ") else 0


def test_round_trip_and_split_on_every_format(tok):
    """Every 20th sample of each file and each file's longest environment history."""
    lines = _all_lines()
    assert set(lines) >= {"rook_val_400", "env_prompts_expected", "heldout", "grpo_prompts", "mate_in_one"}
    picked = [t for texts in lines.values() for t in texts[::20] + [max(texts, key=_history)]]
    assert max(map(_history, picked)) == 10  # the longest history the format has
    _check_round_trip_and_split(tok, picked)
    padded = lines["rook_val_400"][0]
    assert len(tok(padded).input_ids) < len(padded) / 1.5  # padding runs and moves fold


@pytest.mark.slow
def test_round_trip_and_split_on_all_samples(tok):
    for texts in _all_lines().values():
        _check_round_trip_and_split(tok, texts)


def test_moves_form_only_between_separators(tok):
    def pieces(text):
        ids = tok(text).input_ids
        assert tok.decode(ids) == text
        return tok.convert_ids_to_tokens(ids)

    # a FEN rank that reads like a move stays characters; the en-passant field is a square
    assert pieces("P: 1b2b3/8/8/8/8/8/8/8 w - e3 0 1 ") == (
        ["P: ", "1", "b", "2", "b", "3"] + ["/", "8"] * 7 + [" ", "w", " ", "-", " ", "e3", " ", "0", " ", "1", " "])
    assert pieces("b1b5/8") == ["b", "1", "b", "5", "/", "8"]  # an env completion's first rank, tokenized alone
    # an illegal move no piece can make is its two squares; promotions are one token
    assert pieces("+a3g8+e7e8q a1a1+") == ["+", "a3", "g8", "+", "e7e8q", " ", "a1", "a1", "+"]
    assert pieces("M: e2e4e5 e2e4q") == ["M: ", "e", "2", "e", "4", "e", "5", " ", "e2e4", "q"]
    # space runs in binary: 37 = 32 + 4 + 1
    assert pieces(" " * 37 + "E: ") == [" " * 32, " " * 4, " ", "E: "]
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(32, 127)] + ["\n", "e2e4", "a7a8q", "M: ", "+", "  "]
    for _ in range(300):
        pieces("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))


def test_saved_folder_loads_without_custom_code(tok, tmp_path):
    from transformers import AutoTokenizer

    from tinyreason.lm.model import load_tokenizer

    out = write_chess_tokenizer(tmp_path / "tok")
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert "auto_map" not in config and config["clean_up_tokenization_spaces"] is False
    text = (EMBEDDED_DATA / "heldout.txt").read_text().splitlines()[1]
    for loaded in (load_tokenizer(out), AutoTokenizer.from_pretrained(out, trust_remote_code=False)):
        assert loaded(text).input_ids == tok(text).input_ids and loaded.decode(tok(text).input_ids) == text
        assert loaded.get_vocab() == tok.get_vocab() and loaded.pad_token_id == 1


def test_stop_strings_and_completion_decoding(tok):
    import torch

    from tinyreason.lm.sampler import Rollout, decode_completions, stop_token_ids

    newline = tok.convert_tokens_to_ids("\n")
    assert stop_token_ids(tok, ["\n"]) == [0, newline]  # no other token holds a newline
    assert set(stop_token_ids(tok, ["+"])) == {0, tok.convert_tokens_to_ids("+")}  # '+' never merges
    assert tok.convert_tokens_to_ids("B: ") in stop_token_ids(tok, ["B:"])
    with pytest.raises(UserError, match="not contained in any single token"):
        stop_token_ids(tok, ["0+0"])  # spans tokens: refused, not silently ignored
    ids = tok("M: e2e4 E: 0.3 B: e2e4\nP: ").input_ids
    roll = Rollout(prompt_ids=torch.zeros((1, 1), dtype=torch.long), prompt_mask=torch.ones((1, 1), dtype=torch.long),
                   completion_ids=torch.tensor([ids]), completion_mask=torch.ones((1, len(ids)), dtype=torch.long),
                   logprobs=torch.zeros((1, len(ids))), truncated=torch.zeros(1, dtype=torch.bool), group_size=1)
    assert decode_completions(tok, roll, ["\n"]) == ["M: e2e4 E: 0.3 B: e2e4"]


def test_sft_encoding_is_the_same_with_a_masked_prompt(tok):
    from tinyreason.lm.sft import encode

    samples = load_samples(EMBEDDED_DATA / "heldout.txt", limit=40) + load_samples(ROOKWORLD / "rook_val_400.txt", limit=10)
    whole, masked = encode(samples, tok, False), encode(samples, tok, True)
    assert [ids for ids, _ in whole] == [ids for ids, _ in masked]
    for (ids, mask), s in zip(masked, samples):
        assert tok.decode(ids[: mask.index(1)]) == s.prompt  # the loss starts at the completion's first token


def test_sft_chess_tokenizer_option():
    from tinyreason.lm.sft import SFTConfig, build_model

    cfg = SFTConfig(chess_tokenizer=True, arch={"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 32})
    model, loaded = build_model(cfg, [], "cpu", chess_tokenizer)
    assert loaded.get_vocab() == chess_tokenizer().get_vocab() and model.config.vocab_size == len(loaded)
    with pytest.raises(UserError, match="only applies to random init"):
        build_model(SFTConfig(model="x", chess_tokenizer=True), [], "cpu", chess_tokenizer)
    with pytest.raises(UserError, match="exclude each other"):
        build_model(SFTConfig(char_tokenizer=True, chess_tokenizer=True), [], "cpu", chess_tokenizer)
    with pytest.raises(UserError, match="chess sft"):
        build_model(cfg, [], "cpu")  # lm knows no chess: the chess entry hands its tokenizer over


@pytest.mark.slow
def test_tiny_model_sft_sampler_grpo_and_eval(tok, tmp_path):
    """A tiny random GPT-2 with the chess tokenizer: SFT steps, a rollout with stop strings and
    left-padded prompts, a GRPO step with held-out eval, and `chess eval`, end to end."""
    import torch

    from tinyreason.chess import evaluate
    from tinyreason.chess import grpo as chess_grpo, sft as chess_sft
    from tinyreason.lm.model import load_model
    from tinyreason.lm.sampler import decode_completions, sample, stop_token_ids
    from tinyreason.lm.state import latest_checkpoint
    from tinyreason.runlog import read_metrics

    torch.manual_seed(0)
    held = (EMBEDDED_DATA / "heldout.txt").read_text().splitlines()
    data = tmp_path / "train.txt"
    data.write_text("\n".join(held[:16] + (ROOKWORLD / "rook_val_400.txt").read_text().splitlines()[:4]) + "\n")
    evals = tmp_path / "heldout.txt"
    evals.write_text("\n".join(held[16:20]) + "\n")

    arch = {"arch.n_layer": 1, "arch.n_embd": 32, "arch.n_head": 2, "arch.n_positions": 256, "arch.dropout": 0.0}
    argv = {"train_data": f"[{data}]", "train_split": "null", "eval_data": f"[{evals}]", "eval_split": "null",
            "chess_tokenizer": "true", "seq_len": 128, "batch_size": 2, "warmup_steps": 1, "max_steps": 3,
            "save_every": 3, "eval_every": 3, "lr": 3e-3, "run_dir": tmp_path / "sft", "device": "cpu", **arch}
    assert chess_sft.main([f"{k}={v}" for k, v in argv.items()]) == 0
    losses = [r["loss"] for r in read_metrics(tmp_path / "sft") if "loss" in r]
    assert len(losses) == 3 and all(loss == loss for loss in losses)
    ckpt = latest_checkpoint(tmp_path / "sft")
    model, loaded = load_model(ckpt, device="cpu")
    assert loaded.get_vocab() == tok.get_vocab() and model.config.vocab_size == len(tok)

    # rollout: left-padded prompts of both tasks, stop at a newline
    prompts = [split_text(line).prompt for line in held[:4]]
    stops = stop_token_ids(loaded, ["\n"])
    roll = sample(model.eval(), [loaded(p).input_ids for p in prompts], 2, 24, 1.0, stop_ids=stops,
                  pad_id=loaded.pad_token_id, generator=torch.Generator().manual_seed(0))
    lengths = [len(loaded(p).input_ids) for p in prompts]
    assert roll.prompt_ids.shape == (8, max(lengths)) and roll.prompt_mask.sum(-1).tolist() == [n for n in lengths for _ in range(2)]
    for ids, n, cut in zip(roll.completion_ids.tolist(), roll.lengths.tolist(), roll.truncated.tolist()):
        assert not any(i in stops for i in ids[: n - 1])  # a row ends at its first stop token
        assert (ids[n - 1] in stops) != cut and (n == 24 or not cut)
    texts = decode_completions(loaded, roll, ["\n"])
    assert len(texts) == 8 and not any("\n" in t for t in texts)

    run = tmp_path / "grpo"
    gargv = {"model": ckpt, "train_data": f"[{data}]", "train_split": "null", "eval_data": f"[{evals}]",
             "eval_split": "null", "eval_limit": 4, "eval_every": 1, "eval_max_new_tokens": 16, "group_size": 2,
             "prompts_per_step": 2, "micro_batch_size": 4, "sampling.max_new_tokens": 16, "max_steps": 1,
             "save_every": 1, "run_dir": run, "device": "cpu", "beta": 0.04, "task_ratio": "1:1"}
    assert chess_grpo.main([f"{k}={v}" for k, v in gargv.items()]) == 0
    recs = read_metrics(run)
    step = [r for r in recs if "loss" in r][0]
    assert step["num_completions"] == 4 and step["loss"] == step["loss"]
    assert any("eval/policy_legal_rate" in r for r in recs) and any("eval/env_fen_exact_rate" in r for r in recs)

    out = tmp_path / "eval.json"
    assert evaluate.main(["--model", str(latest_checkpoint(run)), "--data", str(evals), "--out", str(out),
                          "--max-new-tokens", "24", "--batch-size", "4", "cp_loss=false", "--device", "cpu"]) == 0
    res = json.loads(out.read_text())
    assert res["policy"]["n"] == 2 and res["env"]["n"] == 2
    assert 0.0 <= res["policy"]["format_valid_rate"] <= 1.0

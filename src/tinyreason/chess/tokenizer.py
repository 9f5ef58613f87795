"""A tokenizer that fits RookWorld text: whole UCI moves and squares as tokens, characters elsewhere.

The character tokenizer (`tinyreason.lm.model.train_char_tokenizer`) spends four or five
tokens on every move; this one spends one on every move a chess piece can make, which takes
the policy answers of the embedded model's data from 64 to 40 tokens
(`benchmarks/tokenizer_tokens.py`) and the environment prompts' move histories to two fifths
of their characters. It is an ordinary `tokenizers` BPE tokenizer saved as `tokenizer.json`:
`AutoTokenizer` / `PreTrainedTokenizerFast` load it with no custom class and no
`trust_remote_code`, and the sampler, SFT, GRPO and evaluation use it like any other.

Vocabulary (fixed: it does not depend on the training data):

- `<|endoftext|>` 0, `<pad>` 1, `<unk>` 2, as the character tokenizer;
- every printable ASCII character and the newline (FEN pieces, digits, evals, `/`, `+`, ...);
- the 64 squares (`e3`: a FEN's en-passant field; also the halves of a move that has no
  token of its own);
- the markers `P: `, `A: `, `M: `, `E: `, `B: ` (and `: `, the step that builds them);
- runs of 2, 4, ..., 64 spaces (the padded policy layout; a run of n spaces is n's binary
  digits, e.g. 37 = 32 + 4 + 1);
- the 1792 from-to pairs a queen or a knight can move on an empty board, which hold every
  legal move of every piece, and the 176 promotions (a pawn from the 7th rank to the 8th,
  or the 2nd to the 1st, straight or diagonally, to q, r, b or n).

The environment data's deliberately illegal moves may be any pair of squares (`a3g8`); such a
move is written as its two square tokens, so every ASCII text round-trips exactly:
`decode(encode(text)) == text`.

Where a move may form is decided by the pre-tokenizer, not by the merges: a UCI-shaped word
(one or two squares, an optional promotion letter) counts only between separators (start or
end of the text, a space, `+` or a newline). So a FEN rank such as `1b2b3` stays characters,
and the prompt and the completion of every RookWorld sample tokenize to the same ids apart
as together (the split always falls at a separator or before `M: `), which is what lets SFT
(whole samples) and GRPO (prompts alone) agree. The BPE merges then build squares from a file
and a rank, moves from two squares, promotions from a move and a piece letter, markers and
space runs; no merge crosses a pre-token, so nothing else merges.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import chess
from transformers import PreTrainedTokenizerFast

from tinyreason.fileio import atomic_write_bytes
from tinyreason.lm.model import EOS_TOKEN, PAD_TOKEN, UNK_TOKEN

MARKERS = ("P: ", "A: ", "M: ", "E: ", "B: ")
SPACE_RUNS = (2, 4, 8, 16, 32, 64)
PROMOTION_PIECES = "qrbn"
# A move or square only between separators; the fixed markers; space runs; any other character.
PRE_TOKEN_RE = r"(?<![^ +\n])(?:[a-h][1-8]){1,2}[qrbn]?(?![^ +\n])|[PAMEB]: | +|[\s\S]"


def move_pairs() -> list[str]:
    """From-to pairs (`e2e4`) a queen or a knight can move on an empty board, in square order."""
    out = []
    for a in chess.SQUARES:
        for b in chess.SQUARES:
            df = abs(chess.square_file(a) - chess.square_file(b))
            dr = abs(chess.square_rank(a) - chess.square_rank(b))
            if a != b and (df == 0 or dr == 0 or df == dr or {df, dr} == {1, 2}):
                out.append(chess.SQUARE_NAMES[a] + chess.SQUARE_NAMES[b])
    return out


def promotions() -> list[str]:
    """UCI promotions: a pawn to the last rank, one file at most to the side, to q, r, b or n."""
    out = []
    for src_rank, dst_rank in ((6, 7), (1, 0)):
        for f in range(8):
            for g in range(max(0, f - 1), min(8, f + 2)):
                move = chess.SQUARE_NAMES[chess.square(f, src_rank)] + chess.SQUARE_NAMES[chess.square(g, dst_rank)]
                out += [move + p for p in PROMOTION_PIECES]
    return out


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Tokens in id order and BPE merges in priority order (every merge's result is a token)."""
    chars = ["\n"] + [chr(c) for c in range(32, 127)]
    merges: list[tuple[str, str]] = [(n[0], n[1]) for n in chess.SQUARE_NAMES]
    merges.append((":", " "))
    merges += [(m[0], ": ") for m in MARKERS]
    merges += [(" " * (n // 2), " " * (n // 2)) for n in SPACE_RUNS]
    merges += [(m[:2], m[2:]) for m in move_pairs()]
    merges += [(m[:4], m[4]) for m in promotions()]
    vocab = {EOS_TOKEN: 0, PAD_TOKEN: 1, UNK_TOKEN: 2}
    for token in chars + [a + b for a, b in merges]:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def chess_tokenizer() -> PreTrainedTokenizerFast:
    """The chess tokenizer (see the module docstring), with `<|endoftext|>` as BOS/EOS, `<pad>`, `<unk>`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab, merges = _vocab_and_merges()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PRE_TOKEN_RE), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([EOS_TOKEN, PAD_TOKEN, UNK_TOKEN])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
    )


def write_chess_tokenizer(out_dir: str | os.PathLike) -> Path:
    """Save the chess tokenizer into `out_dir` (`tokenizer.json`, `tokenizer_config.json`, each
    written atomically); `AutoTokenizer.from_pretrained(out_dir)` or SFT's `tokenizer:` loads it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        for f in sorted(chess_tokenizer().save_pretrained(tmp)):
            path = Path(f)
            if path.is_file():
                atomic_write_bytes(out / path.name, path.read_bytes())
    return out

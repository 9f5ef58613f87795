"""The RookWorld text formats: writing them byte-exactly and parsing (possibly broken) model output.

Policy task (ROOK), padded as in the original datasets::

    P: {fen:89}M: {' '.join(moves):30}E: {' '.join(evals):40}B: {best}

The original generator scripts write `f"P: {fen:90}"`, but every line of the released data
(e.g. rook_val_500) has `M:` at column 92, i.e. the FEN padded to 89 characters after
`P: ` (most likely because the FENs were file lines still ending in a newline, which took
the 90th column and was dropped later). We follow the data, so our files and theirs are
byte-identical.

and a *compact* variant with single spaces (`P: {fen} M: ... E: ... B: {best}`) for small
character-level models. Evals are Python float strings of pawns from the side to move
(`score.relative.score(mate_score=100000) / 100`, so mates read ±999.xx).

Environment task (ArbiterSim): prompt `A: {fen}+{uci}+{history}+`, completion
`{new_fen}+{reward}+{terminated}+{truncated}` (history: last <= 10 moves incl. this one).

Departure from the original generator: it wrote `B:` as the *last* entry of the engine's
MultiPV list for black (the weakest of the five, not Stockfish's choice); ours writes
Stockfish's best move for both colours. The parser reads either; rewards rank moves by the
`E:` evals, never by trusting `B:`.

Parsers never raise: they return dataclasses recording which fields are present, well
formed and legal, so rewards can give partial credit to partial output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import chess

PADDED_WIDTHS = (89, 30, 40)  # FEN, moves, evals; longest legal FEN ~87 chars (chess.stackexchange.com/q/30004)
UCI_RE = re.compile(r"^[a-h][1-8][a-h][1-8][qrbn]?$")
# The six FEN fields by shape only (no board is built: cheap enough to check 7M dataset lines).
FEN_RE = re.compile(r"^(?:[pnbrqkPNBRQK1-8]{1,8}/){7}[pnbrqkPNBRQK1-8]{1,8} [wb] (?:-|[KQkq]{1,4}) (?:-|[a-h][36]) \d+ \d+$")
_MARK_RE = re.compile(r"(?:^|\s)([MEB]):")


def eval_str(pawns: float) -> str:
    """The dataset's eval spelling: Python's float repr (`-2.3`, `0.0`, `999.97`)."""
    return str(float(pawns))


def policy_prompt(fen: str, compact: bool = False) -> str:
    """`P: ` + FEN padded to 89 columns (padded; `M:` then starts at column 92) or one space (compact)."""
    return f"P: {fen} " if compact else f"P: {fen:{PADDED_WIDTHS[0]}}"


def policy_completion(moves: list[str], evals: list[float | str], best: str, compact: bool = False) -> str:
    """`M: … E: … B: …` with the original column padding, or single spaces when compact."""
    m = " ".join(moves)
    e = " ".join(v if isinstance(v, str) else eval_str(v) for v in evals)
    if compact:
        return f"M: {m} E: {e} B: {best}"
    return f"M: {m:{PADDED_WIDTHS[1]}}E: {e:{PADDED_WIDTHS[2]}}B: {best}"


def format_policy(fen: str, moves: list[str], evals: list[float | str], best: str, compact: bool = False) -> str:
    return policy_prompt(fen, compact) + policy_completion(moves, evals, best, compact)


def env_prompt(fen: str, uci: str, history: list[str]) -> str:
    """`A: {fen}+{uci}+{history}+`; `history` must already end with `uci` (<= 10 moves)."""
    return f"A: {fen}+{uci}+{' '.join(history)}+"


def env_completion(new_fen: str, reward: float, terminated: bool, truncated: bool) -> str:
    return f"{new_fen}+{float(reward)}+{int(terminated)}+{int(truncated)}"


def is_uci(text: str | None) -> bool:
    """Well-formed UCI move text (`e2e4`, `e7e8q`); `a1a1` and `0000` are not moves here."""
    return isinstance(text, str) and bool(UCI_RE.match(text)) and text[:2] != text[2:4]


def is_fen_shaped(text: str | None) -> bool:
    """Six well-formed FEN fields (a legal position is checked by `board_or_none`)."""
    return isinstance(text, str) and bool(FEN_RE.match(text))


def to_move(text: str | None) -> chess.Move | None:
    return chess.Move.from_uci(text) if is_uci(text) else None  # type: ignore[arg-type]


def board_or_none(fen: str | None) -> chess.Board | None:
    """A board for `fen`, or None when it does not parse or is not a valid position."""
    if not fen:
        return None
    try:
        board = chess.Board(fen)
    except ValueError:
        return None
    return board if board.is_valid() else None


def is_legal(board: chess.Board | None, uci: str | None) -> bool:
    move = to_move(uci)
    return board is not None and move is not None and move in board.legal_moves


def gives_mate(board: chess.Board | None, uci: str | None) -> bool:
    """`uci` is legal on `board` and checkmates at once (the board is left unchanged)."""
    if not is_legal(board, uci):
        return False
    after = board.copy(stack=False)  # type: ignore[union-attr]
    after.push(chess.Move.from_uci(uci))  # type: ignore[arg-type]
    return after.is_checkmate()


def _float_or_none(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


@dataclass
class PolicyParse:
    """What a policy completion holds. Lists keep raw tokens; `*_ok` lists say which are well formed."""

    fen: str | None = None
    board: chess.Board | None = field(default=None, repr=False)
    has_moves: bool = False
    has_evals: bool = False
    has_best: bool = False
    in_order: bool = False  # markers appear once each, as M: E: B:
    moves: list[str] = field(default_factory=list)
    evals: list[str] = field(default_factory=list)
    best: str | None = None
    trailing: str = ""  # anything after the best move (a run-on generation)

    @property
    def moves_ok(self) -> list[bool]:
        return [is_uci(m) for m in self.moves]

    @property
    def eval_values(self) -> list[float | None]:
        return [_float_or_none(e) for e in self.evals]

    @property
    def moves_legal(self) -> list[bool]:
        return [is_legal(self.board, m) for m in self.moves]

    @property
    def best_ok(self) -> bool:
        return is_uci(self.best)

    @property
    def best_legal(self) -> bool:
        return is_legal(self.board, self.best)

    @property
    def moves_well_formed(self) -> bool:
        return 1 <= len(self.moves) <= 5 and all(self.moves_ok) and len(set(self.moves)) == len(self.moves)

    @property
    def evals_well_formed(self) -> bool:
        return len(self.evals) == len(self.moves) >= 1 and all(v is not None for v in self.eval_values)

    @property
    def well_formed(self) -> bool:
        """All three sections present, in order, well formed, and nothing after the best move."""
        return (self.in_order and self.moves_well_formed and self.evals_well_formed
                and self.best_ok and not self.trailing)

    def candidates(self) -> dict[str, float]:
        """Well-formed (move -> eval) pairs, for ranking moves by the sample's evals."""
        if not self.evals_well_formed or not all(self.moves_ok):
            return {}
        return {m: float(v) for m, v in zip(self.moves, self.eval_values)}  # type: ignore[arg-type]


def parse_policy(completion: str, fen: str | None = None) -> PolicyParse:
    """Parse `M: … E: … B: …` (any whitespace). `completion` may also be a whole `P:` line;
    `fen` (a FEN or a `P:` prompt) enables the legality checks."""
    text = completion if isinstance(completion, str) else ""
    if text.lstrip().startswith("P:"):
        head = text.lstrip()[2:]
        cut = _MARK_RE.search(head)
        fen = fen or (head[: cut.start()] if cut else head)
        text = head[cut.start():] if cut else ""
    if fen is not None and fen.lstrip().startswith("P:"):
        fen = fen.lstrip()[2:]
    out = PolicyParse(fen=" ".join(fen.split()) if fen else None)
    out.board = board_or_none(out.fen)
    marks = [(m.group(1), m.start(1), m.end()) for m in _MARK_RE.finditer(text)]
    names = [name for name, _, _ in marks]
    out.in_order = names == ["M", "E", "B"] and not text[: marks[0][1]].strip()
    sections: dict[str, str] = {}
    for i, (name, _, end) in enumerate(marks):
        stop = marks[i + 1][1] if i + 1 < len(marks) else len(text)
        sections.setdefault(name, text[end:stop])
    if "M" in sections:
        out.has_moves, out.moves = True, sections["M"].split()
    if "E" in sections:
        out.has_evals, out.evals = True, sections["E"].split()
    if "B" in sections:
        tokens = sections["B"].split(maxsplit=1)
        out.has_best = bool(tokens)
        out.best = tokens[0] if tokens else None
        out.trailing = tokens[1].strip() if len(tokens) > 1 else ""
    return out


@dataclass
class EnvPrompt:
    """An `A:` prompt split into its parts; `ok` when the FEN is a valid position."""

    fen: str = ""
    move: str = ""
    history: list[str] = field(default_factory=list)
    complete: bool = False  # prefix and the three '+' separators present
    board: chess.Board | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.complete and self.board is not None


def parse_env_prompt(prompt: str) -> EnvPrompt:
    text = prompt.lstrip() if isinstance(prompt, str) else ""
    if not text.startswith("A:"):
        return EnvPrompt()
    parts = text[2:].split("+")
    if len(parts) < 4:
        return EnvPrompt(fen=parts[0].strip())
    fen = parts[0].strip()
    return EnvPrompt(fen=fen, move=parts[1].strip(), history=parts[2].split(), complete=True, board=board_or_none(fen))


@dataclass
class EnvParse:
    """A generated environment completion `fen+reward+terminated+truncated` (any whitespace)."""

    fields: list[str] = field(default_factory=list)  # up to 4 stripped raw fields
    trailing: str = ""  # text after the 4th field ('+' terminator allowed, not counted)
    prompt: EnvPrompt = field(default_factory=EnvPrompt)  # the parsed `A:` prompt

    @property
    def move_legal(self) -> bool:
        """Whether the prompt's move is legal in the prompt's position."""
        return is_legal(self.prompt.board, self.prompt.move)

    @property
    def fen(self) -> str | None:
        return self.fields[0] if self.fields and self.fields[0] else None

    @property
    def fen_ok(self) -> bool:
        return board_or_none(self.fen) is not None

    @property
    def reward(self) -> float | None:
        return _float_or_none(self.fields[1]) if len(self.fields) > 1 else None

    def flag(self, i: int) -> int | None:
        """terminated (i=2) / truncated (i=3) as 0/1, None when missing or not 0/1."""
        if len(self.fields) <= i or self.fields[i] not in ("0", "1"):
            return None
        return int(self.fields[i])

    @property
    def terminated(self) -> int | None:
        return self.flag(2)

    @property
    def truncated(self) -> int | None:
        return self.flag(3)

    @property
    def present(self) -> int:
        return sum(1 for f in self.fields if f)

    @property
    def well_formed(self) -> bool:
        return (len(self.fields) == 4 and self.fen_ok and self.reward is not None
                and self.terminated is not None and self.truncated is not None and not self.trailing)


def parse_env_completion(completion: str) -> EnvParse:
    """Split `fen+reward+terminated+truncated` on '+'; the 4th field ends at the first
    whitespace (run-on text goes to `trailing`); a closing '+' (later RookWorld tooling) is fine."""
    text = completion.strip() if isinstance(completion, str) else ""
    if not text:
        return EnvParse()
    parts = text.split("+", 4)
    fields = [p.strip() for p in parts[:4]]
    trailing = parts[4].strip() if len(parts) > 4 else ""
    if len(fields) == 4:
        last = fields[3].split(maxsplit=1)
        fields[3] = last[0] if last else ""
        trailing = (last[1] if len(last) > 1 else "") + (" " + trailing if trailing else "")
    return EnvParse(fields=fields, trailing=trailing.strip())


def parse_env(prompt: str, completion: str | None = None) -> EnvParse:
    """Parse an `A:` prompt and its completion; with one argument, split a whole `A:` line."""
    if completion is None:
        text = prompt if isinstance(prompt, str) else ""
        parts = text.split("+", 3)
        prompt, completion = ("+".join(parts[:3]) + "+", parts[3]) if len(parts) == 4 else (text, "")
    parsed = parse_env_completion(completion)
    parsed.prompt = parse_env_prompt(prompt)
    return parsed


def fen_fields(fen: str | None) -> list[str]:
    """The six space-separated FEN fields (placement, side, castling, ep, halfmove, fullmove)."""
    return (fen or "").split()[:6]

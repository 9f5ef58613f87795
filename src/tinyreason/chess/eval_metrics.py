"""Per-sample chess evaluation metrics: pure functions of (prompt, reference, completion).

Parsing is `tinyreason.chess.formats` (never raises); the environment ground truth is
`tinyreason.chess.arbiter.arbiter_completion`. Live engine figures (centipawn loss) live in
`tinyreason.chess.evaluate`, which adds them to these records.

Choices worth knowing (also in docs/chess_eval.md):
- Stockfish's best move is the reference candidate with the highest eval (evals are from the
  side to move), never the reference `B:` field: in the original RookWorld data `B:` for black
  is often not the engine's choice (182 of the 400 samples of rook_val_400). Moves tied at
  the top eval all count as best (e.g. five 0.0 evals in a dead draw).
- Eval errors are measured in pawns after clipping both evals to +-`rewards.EVAL_CLIP`, so a mate
  score (+-999.xx) counts as a large but finite error instead of swamping the mean. A move
  the completion lists more than once counts once, with its first numeric eval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tinyreason.chess.arbiter import arbiter_completion
from tinyreason.chess.formats import board_or_none, fen_fields, gives_mate, is_legal, parse_env, parse_policy
from tinyreason.chess.rewards import clip_eval

FEN_FIELD_NAMES = ("placement", "side", "castling", "ep", "halfmove", "fullmove")


def reference_best_moves(reference: str) -> set[str]:
    """The reference candidates with the top eval (Stockfish's best; ties all count)."""
    cands = parse_policy(reference).candidates()
    if not cands:
        return set()
    top = max(cands.values())
    return {m for m, v in cands.items() if abs(v - top) < 1e-9}


@dataclass
class PolicyRecord:
    """One policy sample's outcome. `chosen` is the generated `B:` move (None when absent)."""

    fen: str | None
    chosen: str | None
    format_valid: bool  # all of M:/E:/B: present, in order, well formed, nothing trailing
    best_legal: bool  # the chosen move is legal in the prompt position
    best_correct: bool  # the chosen move is Stockfish's best (top reference eval)
    in_top5: bool  # the chosen move is among the reference's candidates
    eval_errors: list[float] = field(default_factory=list)  # |pred - ref| pawns, one per shared candidate
    cp_loss: float | None = None  # filled by the live-engine pass (legal moves only)


def score_policy(prompt: str, reference: str, completion: str) -> PolicyRecord:
    """Score a generated policy completion against the reference sample's candidates."""
    pred = parse_policy(completion, fen=prompt)
    ref = parse_policy(reference, fen=prompt)
    ref_cands = ref.candidates()
    best = reference_best_moves(reference)
    chosen = pred.best if pred.has_best else None
    first_eval: dict[str, float] = {}  # a move written again (greedy repeats one) counts once
    for m, v in zip(pred.moves, pred.eval_values):
        if v is not None and m in ref_cands:
            first_eval.setdefault(m, v)
    errors = [abs(clip_eval(v) - clip_eval(ref_cands[m])) for m, v in first_eval.items()]
    return PolicyRecord(
        fen=pred.fen,
        chosen=chosen,
        format_valid=pred.well_formed,
        best_legal=pred.best_legal,
        best_correct=chosen is not None and chosen in best,
        in_top5=chosen is not None and chosen in ref_cands,
        eval_errors=errors,
    )


@dataclass
class EnvRecord:
    """One environment sample's outcome against the arbiter's ground truth."""

    exact: bool  # the whole completion (all four fields) matches
    fen_exact: bool
    fen_fields: dict[str, bool]  # each of the six FEN fields
    reward_ok: bool
    terminated_ok: bool
    truncated_ok: bool
    well_formed: bool
    illegal_move: bool  # the prompt's move is illegal (the arbiter truncates: FEN unchanged)


def score_env(prompt: str, completion: str) -> EnvRecord:
    """Score a generated `fen+reward+terminated+truncated` against `arbiter_completion(prompt)`.

    Raises UserError (from the arbiter) when the prompt itself is not a valid `A:` prompt.
    """
    truth = parse_env(prompt, arbiter_completion(prompt))
    pred = parse_env(prompt, completion)
    true_fields, pred_fields = fen_fields(truth.fen), fen_fields(pred.fen)
    pred_fields += [""] * (6 - len(pred_fields))
    per_field = {n: pred_fields[i] == true_fields[i] for i, n in enumerate(FEN_FIELD_NAMES)}
    fen_exact = pred.fen is not None and pred.fen.split() == (truth.fen or "").split()
    reward_ok = pred.reward is not None and abs(pred.reward - (truth.reward or 0.0)) < 1e-9
    term_ok = pred.terminated is not None and pred.terminated == truth.terminated
    trunc_ok = pred.truncated is not None and pred.truncated == truth.truncated
    return EnvRecord(
        exact=fen_exact and reward_ok and term_ok and trunc_ok and not pred.trailing,
        fen_exact=fen_exact,
        fen_fields=per_field,
        reward_ok=reward_ok,
        terminated_ok=term_ok,
        truncated_ok=trunc_ok,
        well_formed=pred.well_formed,
        illegal_move=bool(truth.truncated),
    )


@dataclass
class MateRecord:
    chosen: str | None
    legal: bool
    mates: bool  # the chosen move checkmates


def score_mate_in_one(prompt: str, completion: str) -> MateRecord:
    """Whether the generated `B:` move mates at once (any mating move counts, not only the reference's)."""
    pred = parse_policy(completion, fen=prompt)
    board = board_or_none(pred.fen)
    chosen = pred.best if pred.has_best else None
    return MateRecord(chosen=chosen, legal=is_legal(board, chosen), mates=gives_mate(board, chosen))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize_policy(records: list[PolicyRecord]) -> dict:
    """Rates over all samples; eval MAE over shared candidates; cp loss over legal chosen moves."""
    n = len(records)
    errors = [e for r in records for e in r.eval_errors]
    cp = [r.cp_loss for r in records if r.cp_loss is not None]
    return {
        "n": n,
        "format_valid_rate": _mean([float(r.format_valid) for r in records]),
        "legal_best_move_rate": _mean([float(r.best_legal) for r in records]),
        "best_move_accuracy": _mean([float(r.best_correct) for r in records]),
        "top5_rate": _mean([float(r.in_top5) for r in records]),
        "eval_mae": _mean(errors),
        "eval_mae_n": len(errors),
        "mean_cp_loss": _mean(cp),
        "cp_loss_n": len(cp),
    }


def summarize_env(records: list[EnvRecord]) -> dict:
    """Rates over all samples, and exact next-FEN apart for legal and illegal prompt moves: an
    illegal move must leave the FEN as it is, a different skill that the overall rate hides."""
    illegal = [r for r in records if r.illegal_move]
    legal = [r for r in records if not r.illegal_move]
    out = {
        "n": len(records),
        "exact_rate": _mean([float(r.exact) for r in records]),
        "fen_exact_rate": _mean([float(r.fen_exact) for r in records]),
        "fen_field_accuracy": _mean([sum(r.fen_fields.values()) / 6 for r in records]),
        "reward_accuracy": _mean([float(r.reward_ok) for r in records]),
        "terminated_accuracy": _mean([float(r.terminated_ok) for r in records]),
        "truncated_accuracy": _mean([float(r.truncated_ok) for r in records]),
        "well_formed_rate": _mean([float(r.well_formed) for r in records]),
    }
    for name in FEN_FIELD_NAMES:
        out[f"fen_{name}_accuracy"] = _mean([float(r.fen_fields[name]) for r in records])
    out["legal_move_fen_exact_rate"] = _mean([float(r.fen_exact) for r in legal])
    out["illegal_move_n"] = len(illegal)
    out["illegal_move_fen_exact_rate"] = _mean([float(r.fen_exact) for r in illegal])
    return out


def summarize_mate(records: list[MateRecord]) -> dict:
    return {
        "n": len(records),
        "mate_in_one_accuracy": _mean([float(r.mates) for r in records]),
        "legal_rate": _mean([float(r.legal) for r in records]),
    }


def as_dict(record) -> dict:
    return asdict(record)

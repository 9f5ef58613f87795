"""Verifiable rewards for the RookWorld tasks, with the TRL reward-function signature.

Each function is `fn(prompts, completions, **columns) -> list[float]`: TRL's GRPOTrainer
passes every dataset column as a keyword, so a `reference` column (the dataset's
ground-truth completion) reaches the functions unchanged, and they can be handed to TRL
as they are. Conversational completions (lists of messages) are read from their last
message. Each docstring gives the range.

Truth: policy moves are judged against the reference's candidates ranked by its `E:` evals
(never its `B:`, which the original data set wrote as the weakest move for black), or,
when the reference carries no candidates, by live Stockfish through a cached `EnginePool`
(`engine=` column/keyword, else the process-wide `engine.shared_pool()`).
Environment completions are judged against the arbiter (python-chess) on the prompt; the
reference is used only where the prompt's position cannot be parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tinyreason.chess.arbiter import ArbiterResult, step
from tinyreason.chess.formats import (
    EnvParse,
    PolicyParse,
    fen_fields,
    gives_mate,
    parse_env,
    parse_env_completion,
    parse_env_prompt,
    parse_policy,
)
from tinyreason.errors import UserError

EVAL_CLIP = 10.0  # pawns; mates (±999.xx) compare as ±10
CP_CLIP = int(EVAL_CLIP * 100)  # the same clip in centipawns, for live centipawn losses (as lichess)
EVAL_SCALE = 2.0  # pawns of error that bring a candidate's eval credit to 0
CP_LOSS_SCALE = 300.0  # centipawns lost that bring live best-move quality to 0


def _text(x: object) -> str:
    """Plain text of a completion/prompt (string, or TRL conversational list of messages)."""
    if isinstance(x, str):
        return x
    if isinstance(x, list) and x and isinstance(x[-1], dict):
        return str(x[-1].get("content", ""))
    return ""


def _refs(reference: Sequence[str] | None, n: int) -> list[str | None]:
    if reference is None:
        return [None] * n
    if len(reference) != n:
        raise UserError(f"reward: {len(reference)} references for {n} completions")
    return [_text(r) if r is not None else None for r in reference]


def _pool(engine):
    if engine is not None:
        return engine
    from tinyreason.chess.engine import shared_pool

    return shared_pool()


def _policy(prompt: object, completion: object) -> PolicyParse:
    return parse_policy(_text(completion), fen=_text(prompt))


def _candidates(prompt: object, reference: str | None, engine) -> tuple[dict[str, float], bool]:
    """(move -> eval in pawns, from_reference). Falls back to a live MultiPV-5 analysis."""
    if reference:
        cands = parse_policy(reference).candidates()
        if cands:
            return cands, True
    parsed = _policy(prompt, "")
    if parsed.board is None:
        raise UserError(f"reward: policy prompt without a valid FEN: {_text(prompt)[:100]!r}")
    lines = _pool(engine).analyse(parsed.board.fen(), multipv=5)
    return {c.move: c.pawns for c in lines}, False


def policy_format(prompts, completions, **_) -> list[float]:
    """[0, 1]: 0.2 each for a well-formed `M:` (1-5 distinct UCI moves), `E:` (one float per
    move), `B:` (a UCI move), the order M: E: B:, and nothing after the best move."""
    out = []
    for p, c in zip(prompts, completions):
        r = _policy(p, c)
        parts = [r.moves_well_formed, r.evals_well_formed, r.best_ok, r.in_order, r.has_best and not r.trailing]
        out.append(0.2 * sum(parts))
    return out


def _checked_policy(prompt: object, completion: object) -> PolicyParse:
    r = _policy(prompt, completion)
    if r.board is None:
        raise UserError(f"reward: policy prompt without a valid FEN: {_text(prompt)[:100]!r}")
    return r


def _live_quality(engine, r: PolicyParse, clip: int | None = None) -> float:
    """max(0, 1 - centipawn loss / 300) of r's legal best move by live Stockfish."""
    loss = _pool(engine).cp_loss(r.board.fen(), r.best, clip=clip)  # type: ignore[union-attr, arg-type]
    return max(0.0, 1.0 - loss / CP_LOSS_SCALE)


def policy_best_move(prompts, completions, reference=None, engine=None, **_) -> list[float]:
    """[-1, 1]: -1 when `B:` is missing, malformed or illegal. A legal move scores by its rank
    among the reference's candidates ordered by eval: 1 - (#strictly better)/n (1.0, 0.8, …,
    0.2 for five), 0.0 outside them; without reference candidates, by live Stockfish:
    max(0, 1 - centipawn loss / 300)."""
    refs = _refs(reference, len(completions))
    return [_best_move_credit(_checked_policy(p, c), ref, engine) for p, c, ref in zip(prompts, completions, refs)]


def _best_move_credit(r: PolicyParse, ref: str | None, engine) -> float:
    """`policy_best_move` of one parsed completion."""
    if not r.best_legal:
        return -1.0
    cands = parse_policy(ref).candidates() if ref else {}
    if not cands:
        return _live_quality(engine, r)
    mine = cands.get(r.best)
    better = sum(1 for v in cands.values() if mine is not None and v > mine)
    return 0.0 if mine is None else 1.0 - better / len(cands)


def policy_move_quality(prompts, completions, engine=None, **_) -> list[float]:
    """[-1, 1]: -1 when `B:` is missing, malformed or illegal; a legal move scores
    max(0, 1 - centipawn loss / 300) by live Stockfish, evals clipped to +-10 pawns as the
    eval's centipawn loss is. Dense where `policy_best_move` is not: it gives every legal move
    outside the reference's five candidates 0, a blunder as much as a sound move (off by
    default: weight 0; costs one engine analysis per distinct (position, move))."""
    checked = [_checked_policy(p, c) for p, c in zip(prompts, completions)]
    return [_live_quality(engine, r, clip=CP_CLIP) if r.best_legal else -1.0 for r in checked]


def policy_valid_best_move(prompts, completions, reference=None, engine=None, **_) -> list[float]:
    """[-1, 1]: `policy_best_move`, keeping its positive credit only for a well-formed answer
    (the eval's format-valid: distinct moves, one eval each, in order, nothing trailing).
    Small models repeat a candidate move under greedy decoding; `policy_format` charges such
    a list 0.04, this takes the whole best-move credit (off by default: weight 0)."""
    out = []
    for p, c, ref in zip(prompts, completions, _refs(reference, len(completions))):
        r = _checked_policy(p, c)
        best = _best_move_credit(r, ref, engine)
        out.append(best if best <= 0 or r.well_formed else 0.0)
    return out


def policy_mate(prompts, completions, **_) -> list[float]:
    """{0, 1}: 1 when `B:` is legal and checkmates at once (python-chess), as the eval's
    mate-in-one accuracy counts it; 0 otherwise. Singles out the mate, which
    `policy_move_quality` cannot: its evals are clipped at +-10 pawns, so a move that keeps a
    won position scores nearly as the mate does (off by default: weight 0)."""
    return [float(gives_mate(r.board, r.best)) for r in (_checked_policy(p, c) for p, c in zip(prompts, completions))]


def policy_legal_moves(prompts, completions, **_) -> list[float]:
    """[0, 1]: distinct legal moves among the `M:` moves / number of moves listed (repeats and
    illegal moves cost; 0 without moves). A dense legality signal for weak models, whose
    best move is rarely legal early on (off by default: weight 0)."""
    out = []
    for p, c in zip(prompts, completions):
        r = _policy(p, c)
        legal = {m for m, ok in zip(r.moves, r.moves_legal) if ok}
        out.append(len(legal) / len(r.moves) if r.moves else 0.0)
    return out


def policy_candidates(prompts, completions, reference=None, engine=None, **_) -> list[float]:
    """[0, 1]: |generated moves ∩ reference candidates| / max(#reference, #distinct generated)
    (listing extra or duplicate moves costs); live MultiPV 5 when the reference has none."""
    out = []
    for p, c, ref in zip(prompts, completions, _refs(reference, len(completions))):
        mine = set(_policy(p, c).moves)
        cands, _ = _candidates(p, ref, engine)
        out.append(len(mine & set(cands)) / max(len(cands), len(mine)) if cands else 0.0)
    return out


def policy_eval_error(prompts, completions, reference=None, engine=None, **_) -> list[float]:
    """[0, 1]: mean over the generated (move, eval) pairs of max(0, 1 - |eval - true| / 2 pawns),
    evals clipped to ±10 pawns; the true eval is the reference's (or live Stockfish's for that
    move); a missing or non-numeric eval, or one for a move the reference lacks, scores 0."""
    out = []
    for p, c, ref in zip(prompts, completions, _refs(reference, len(completions))):
        r = _policy(p, c)
        if not r.moves:
            out.append(0.0)
            continue
        cands, from_ref = _candidates(p, ref, engine)
        credit = []
        values = (r.eval_values + [None] * len(r.moves))[: len(r.moves)]
        for move, value, legal in zip(r.moves, values, r.moves_legal):
            true = cands.get(move)
            if true is None and not from_ref and legal:
                lines = _pool(engine).analyse(r.board.fen(), move=move)  # type: ignore[union-attr]
                true = lines[0].pawns if lines else None
            if value is None or true is None:
                credit.append(0.0)
                continue
            err = abs(clip_eval(value) - clip_eval(true))
            credit.append(max(0.0, 1.0 - err / EVAL_SCALE))
        out.append(sum(credit) / len(credit))
    return out


def clip_eval(v: float) -> float:
    """An eval in pawns clipped to +-EVAL_CLIP (rewards and evaluation compare evals this way)."""
    return max(-EVAL_CLIP, min(EVAL_CLIP, v))


# --- environment -------------------------------------------------------------------------


def _truth(prompt: object, reference: str | None) -> ArbiterResult:
    parsed = parse_env_prompt(_text(prompt))
    if parsed.ok:
        return step(parsed.board, parsed.move)  # type: ignore[arg-type]
    if reference:
        ref = parse_env(_text(prompt), reference)
        if ref.fen and ref.reward is not None and None not in (ref.terminated, ref.truncated):
            return ArbiterResult(ref.fen, ref.reward, bool(ref.terminated), bool(ref.truncated))
    raise UserError(f"reward: environment prompt without a valid position: {_text(prompt)[:100]!r}")


def _env_pairs(prompts, completions, reference) -> list[tuple[EnvParse, ArbiterResult]]:
    refs = _refs(reference, len(completions))
    return [(parse_env(_text(p), _text(c)), _truth(p, ref)) for p, c, ref in zip(prompts, completions, refs)]


def env_format(prompts, completions, **_) -> list[float]:
    """[0, 1]: 0.2 each for a valid-position FEN, a float reward, terminated 0/1, truncated
    0/1, and nothing after the 4th field (a closing '+' is fine)."""
    out = []
    for c in completions:
        r = parse_env_completion(_text(c))
        parts = [r.fen_ok, r.reward is not None, r.terminated is not None, r.truncated is not None,
                 len(r.fields) == 4 and not r.trailing]
        out.append(0.2 * sum(parts))
    return out


def env_fen_exact(prompts, completions, reference=None, **_) -> list[float]:
    """{0, 1}: the generated FEN equals the arbiter's exactly (whitespace-normalised)."""
    return [float(fen_fields(r.fen) == fen_fields(t.fen) and len(fen_fields(r.fen)) == 6)
            for r, t in _env_pairs(prompts, completions, reference)]


def env_fen_fields(prompts, completions, reference=None, **_) -> list[float]:
    """[0, 1]: share of the six FEN fields (placement, side, castling, en passant, halfmove,
    fullmove) equal to the arbiter's."""
    out = []
    for r, t in _env_pairs(prompts, completions, reference):
        mine, true = fen_fields(r.fen), fen_fields(t.fen)
        out.append(sum(1 for a, b in zip(mine, true) if a == b) / 6)
    return out


def env_fen_ranks(prompts, completions, reference=None, **_) -> list[float]:
    """[0, 1]: share of the 8 board ranks of the generated placement equal to the arbiter's
    (rank by rank; missing ranks count as wrong). A dense signal for the board, which
    `env_fen_fields` scores all-or-nothing (off by default: weight 0)."""
    out = []
    for r, t in _env_pairs(prompts, completions, reference):
        mine, true = fen_fields(r.fen), fen_fields(t.fen)
        ranks = mine[0].split("/") if mine else []
        out.append(sum(1 for a, b in zip(ranks, true[0].split("/")) if a == b) / 8 if len(ranks) <= 8 else 0.0)
    return out


def env_outcome(prompts, completions, reference=None, **_) -> list[float]:
    """[0, 1]: share of reward, terminated and truncated equal to the arbiter's."""
    out = []
    for r, t in _env_pairs(prompts, completions, reference):
        ok = [r.reward is not None and abs(r.reward - t.reward) < 1e-9,
              r.terminated == int(t.terminated), r.truncated == int(t.truncated)]
        out.append(sum(ok) / 3)
    return out


REWARD_FUNCS: dict[str, dict[str, Callable[..., list[float]]]] = {
    "policy": {"policy_format": policy_format, "policy_best_move": policy_best_move,
               "policy_candidates": policy_candidates, "policy_eval_error": policy_eval_error,
               "policy_legal_moves": policy_legal_moves, "policy_valid_best_move": policy_valid_best_move,
               "policy_move_quality": policy_move_quality, "policy_mate": policy_mate},
    "env": {"env_format": env_format, "env_fen_exact": env_fen_exact,
            "env_fen_fields": env_fen_fields, "env_outcome": env_outcome, "env_fen_ranks": env_fen_ranks},
}

DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "policy": {"policy_format": 0.2, "policy_best_move": 1.0, "policy_candidates": 0.3, "policy_eval_error": 0.2,
               "policy_legal_moves": 0.0, "policy_valid_best_move": 0.0, "policy_move_quality": 0.0,
               "policy_mate": 0.0},
    "env": {"env_format": 0.2, "env_fen_exact": 1.0, "env_fen_fields": 0.3, "env_outcome": 0.3, "env_fen_ranks": 0.0},
}


def score(task: str, prompts, completions, references, weights: dict[str, float] | None = None,
          engine=None) -> tuple[list[float], dict[str, list[float]]]:
    """Weighted sum of the task's rewards and each component by name (zero weights skipped)."""
    if task not in REWARD_FUNCS:
        raise UserError(f"unknown task '{task}' (policy or env)")
    weights = DEFAULT_WEIGHTS[task] if weights is None else weights
    unknown = sorted(set(weights) - set(REWARD_FUNCS[task]))
    if unknown:
        raise UserError(f"unknown {task} reward(s) {', '.join(unknown)} (known: {', '.join(REWARD_FUNCS[task])})")
    if len(prompts) != len(completions):
        raise UserError(f"reward: {len(prompts)} prompts for {len(completions)} completions")
    components: dict[str, list[float]] = {}
    total = [0.0] * len(completions)
    for name, w in weights.items():
        if w == 0:
            continue
        values = REWARD_FUNCS[task][name](prompts, completions, reference=references, engine=engine)
        components[name] = values
        total = [t + w * v for t, v in zip(total, values)]
    return total, components


__all__ = ["DEFAULT_WEIGHTS", "REWARD_FUNCS", "score"] + [
    n for fns in REWARD_FUNCS.values() for n in fns
]

"""Stockfish through python-chess: locating the binary, MultiPV analysis, a cached engine pool.

Determinism: with `Threads=1`, a node limit and a cleared hash (`ucinewgame`, sent by
`new_game()`), Stockfish returns the same analysis for the same sequence of positions, so
data generation is reproducible regardless of how games are spread over processes.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import chess
import chess.engine

from tinyreason.errors import UserError

MATE_SCORE = 100000  # centipawns given to a mate, as in the original data (evals read ±999.xx)
FALLBACK_PATHS = ("/usr/games/stockfish",)  # Debian/Ubuntu's package puts it outside PATH
_INFO = chess.engine.INFO_SCORE | chess.engine.INFO_PV  # parse only what we use


def find_stockfish(path: str | None = None) -> str:
    """Stockfish binary from `path` (config), $STOCKFISH, PATH or /usr/games; UserError if none."""
    if path:
        if Path(path).is_file() and os.access(path, os.X_OK):
            return str(path)
        found = shutil.which(path)
        if found:
            return found
        raise UserError(f"Stockfish binary not found at '{path}' (check the path or unset it)")
    candidates = [os.environ.get("STOCKFISH"), shutil.which("stockfish"), *FALLBACK_PATHS]
    for cand in candidates:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    raise UserError("no Stockfish binary found: install it (apt-get install stockfish) or set $STOCKFISH / stockfish=PATH")


def make_limit(nodes: int | None = None, time: float | None = None, depth: int | None = None) -> chess.engine.Limit:
    if nodes is None and time is None and depth is None:
        raise UserError("an engine limit is needed: set nodes, time or depth")
    return chess.engine.Limit(nodes=nodes, time=time, depth=depth)


def _limit_key(limit: chess.engine.Limit) -> tuple:
    return (limit.nodes, limit.time, limit.depth)


@dataclass(frozen=True)
class Candidate:
    """One MultiPV line: first move (UCI) and its score in centipawns for the side to move."""

    move: str
    cp: int

    @property
    def pawns(self) -> float:
        return self.cp / 100


class Engine:
    """One Stockfish process (single thread, fixed hash) with a MultiPV `analyse`.

    Must be closed (or used with `with`): python-chess drives it from a non-daemon thread, so
    an engine left open keeps the interpreter from exiting.
    """

    def __init__(self, path: str | None = None, hash_mb: int = 16):
        binary = find_stockfish(path)
        try:
            # Own process group: a Ctrl-C meant for us must not kill the engine under python-chess
            # (it would report the death from its event-loop thread); we quit it ourselves, and it
            # also exits on its own when our end of its stdin closes.
            self._engine = chess.engine.SimpleEngine.popen_uci(binary, setpgrp=True)
        except (OSError, chess.engine.EngineError) as e:
            raise UserError(f"cannot start Stockfish '{binary}': {e}") from None
        try:
            self._engine.configure({"Threads": 1, "Hash": hash_mb})
        except chess.engine.EngineError as e:  # an engine without these UCI options
            self.close()
            raise UserError(f"cannot configure Stockfish '{binary}': {e}") from None
        self._game: object = object()

    def new_game(self) -> None:
        """Clear the engine's hash and histories before the next search (ucinewgame)."""
        self._game = object()

    def analyse(self, board: chess.Board, limit: chess.engine.Limit, multipv: int = 1,
                root_moves: list[chess.Move] | None = None) -> list[Candidate]:
        """Best lines, best first; lines without a move (engine quirk) are dropped."""
        try:
            infos = self._engine.analyse(board, limit, multipv=multipv, game=self._game,
                                         root_moves=root_moves, info=_INFO)
        except (chess.engine.EngineTerminatedError, chess.engine.EngineError) as e:
            raise UserError(f"Stockfish failed while analysing {board.fen()}: {e or type(e).__name__}") from None
        if isinstance(infos, dict):
            infos = [infos]
        out = []
        for info in infos:
            if info.get("pv") and "score" in info:
                out.append(Candidate(info["pv"][0].uci(), info["score"].relative.score(mate_score=MATE_SCORE)))
        return out

    def close(self) -> None:
        try:
            self._engine.quit()
        except (chess.engine.EngineTerminatedError, chess.engine.EngineError, TimeoutError):
            pass

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EnginePool:
    """Several Stockfish processes shared by threads, with an LRU cache of analyses.

    Used for live evaluation in rewards: `best(fen)` and `cp_loss(fen, uci)`. Results are
    cached by (fen, limit, multipv, restricted move), so repeated prompts cost nothing.
    """

    def __init__(self, path: str | None = None, size: int = 2, nodes: int | None = 20000,
                 time: float | None = None, cache_size: int = 50000):
        self.limit = make_limit(nodes=nodes, time=time)
        self._idle: queue.Queue[Engine] = queue.Queue()
        self._engines: list[Engine] = []
        try:
            for _ in range(max(1, size)):
                self._engines.append(Engine(path))
        except UserError:
            self.close()  # do not leave the ones already started running
            raise
        for e in self._engines:
            self._idle.put(e)
        self._cache: OrderedDict[tuple, list[Candidate]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def analyse(self, fen: str, multipv: int = 1, move: str | None = None) -> list[Candidate]:
        key = (fen, _limit_key(self.limit), multipv, move)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.hits += 1
                return self._cache[key]
            self.misses += 1
        board = chess.Board(fen)
        engine = self._idle.get()
        try:
            engine.new_game()  # cache-independent result: same answer whichever engine runs it
            result = engine.analyse(board, self.limit, multipv, [chess.Move.from_uci(move)] if move else None)
        finally:
            self._idle.put(engine)
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def best(self, fen: str) -> Candidate | None:
        lines = self.analyse(fen)
        return lines[0] if lines else None

    def cp_loss(self, fen: str, uci: str, clip: int | None = None) -> float:
        """Centipawns lost by playing `uci` (legal) instead of the engine's best; >= 0.
        With `clip`, both scores are first clipped to +-clip (a missed mate then costs at most 2 * clip)."""
        best = self.best(fen)
        if best is None or best.move == uci:
            return 0.0
        lines = self.analyse(fen, move=uci)
        if not lines:
            return 0.0
        a, b = best.cp, lines[0].cp
        if clip is not None:
            a, b = max(-clip, min(clip, a)), max(-clip, min(clip, b))
        return float(max(0, a - b))

    def close(self) -> None:
        for e in self._engines:
            e.close()
        self._engines = []

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_shared: EnginePool | None = None
_shared_lock = threading.Lock()
_shared_settings: dict = {"path": None, "size": 2, "nodes": 20000}
_shared_started_with: dict = {}  # the settings the running pool was started with


def configure_shared_pool(path: str | None = None, size: int = 2, nodes: int = 20000) -> None:
    """Settings the shared pool is started with on first use (e.g. from a GRPO config).

    Nothing is started here, so a run whose references carry Stockfish's candidates never
    needs the binary. A pool already running with other settings (an earlier run in the same
    process: tests, notebooks) is closed, so the next use starts one with these; call it
    between runs, not while another thread's rewards use the pool.
    """
    global _shared
    with _shared_lock:
        settings = {"path": path, "size": size, "nodes": nodes}
        if _shared is not None and settings != _shared_started_with:
            _shared.close()
            _shared = None
        _shared_settings.update(settings)


def shared_pool(path: str | None = None, size: int | None = None, nodes: int | None = None) -> EnginePool:
    """The process-wide pool used by rewards when no `engine` is passed.

    It is closed when the main thread finishes. `atexit` would be too late: the interpreter
    first joins non-daemon threads, python-chess's engine threads among them, and would wait
    for them forever.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            settings = dict(_shared_settings)
            settings.update({k: v for k, v in (("path", path), ("size", size), ("nodes", nodes)) if v is not None})
            _shared = pool = EnginePool(settings["path"], size=settings["size"], nodes=settings["nodes"])
            _shared_started_with.clear()
            _shared_started_with.update(settings)

            def close_after_main() -> None:
                threading.main_thread().join()
                pool.close()

            threading.Thread(target=close_after_main, name="close-shared-engine-pool", daemon=True).start()
        return _shared

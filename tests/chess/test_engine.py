"""Stockfish discovery and the cached, thread-safe engine pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import chess
import pytest

from tinyreason.chess import engine as engine_mod
from tinyreason.chess.engine import Engine, EnginePool, find_stockfish, make_limit
from tinyreason.cli import main as cli_main
from tinyreason.errors import UserError


def test_find_stockfish_order_and_errors(monkeypatch, tmp_path, stockfish_path):
    assert find_stockfish(stockfish_path) == stockfish_path
    with pytest.raises(UserError, match="not found at '/no/such/stockfish'"):
        find_stockfish("/no/such/stockfish")
    monkeypatch.setenv("STOCKFISH", stockfish_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_stockfish() == stockfish_path
    monkeypatch.delenv("STOCKFISH")
    monkeypatch.setattr(engine_mod, "FALLBACK_PATHS", ())
    with pytest.raises(UserError, match="no Stockfish binary found"):
        find_stockfish()


def test_missing_stockfish_exits_2_from_the_cli(tmp_path, capsys):
    rc = cli_main(["chess", "datagen", "--out", str(tmp_path / "x.txt"), "--stockfish", "/no/such/stockfish"])
    assert rc == 2 and "Stockfish binary not found" in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()  # nothing half-written


def test_make_limit_needs_one():
    with pytest.raises(UserError):
        make_limit()
    assert make_limit(nodes=100).nodes == 100


@pytest.mark.slow
def test_engine_multipv_is_deterministic_with_nodes(stockfish_path):
    board = chess.Board()
    with Engine(stockfish_path) as a, Engine(stockfish_path) as b:
        lines = a.analyse(board, make_limit(nodes=2000), multipv=5)
        assert len(lines) == 5 and len({c.move for c in lines}) == 5
        assert all(chess.Move.from_uci(c.move) in board.legal_moves for c in lines)
        assert [c.cp for c in lines] == sorted((c.cp for c in lines), reverse=True)
        a.analyse(chess.Board("8/8/8/4k3/8/8/3R4/4K3 w - - 0 1"), make_limit(nodes=5000))  # pollute a's hash
        a.new_game()
        b.new_game()
        again = a.analyse(board, make_limit(nodes=2000), multipv=5)
        assert again == b.analyse(board, make_limit(nodes=2000), multipv=5)


def test_mate_scores_read_as_999(stockfish_path):
    with Engine(stockfish_path) as e:
        best = e.analyse(chess.Board("r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 2 3"), make_limit(nodes=2000))[0]
    assert best.move == "h5f7" and best.pawns == 999.99


def test_pool_cache_and_threads(stockfish_path):
    fens = [chess.STARTING_FEN, "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1",
            "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 2 3"]
    with EnginePool(stockfish_path, size=2, nodes=1500) as pool:
        with ThreadPoolExecutor(4) as ex:
            results = list(ex.map(pool.best, fens * 4))
        assert results[:3] == results[3:6] == results[9:12]
        assert pool.hits + pool.misses == 12 and pool.misses < 12  # concurrent first calls may both miss
        misses = pool.misses
        assert [pool.best(f) for f in fens] == results[:3] and pool.misses == misses
        assert pool.cp_loss(fens[2], "h5f7") == 0.0
        assert pool.cp_loss(fens[2], "h5h6") > 10000  # misses a mate in one
        assert 0 < pool.cp_loss(fens[2], "h5h6", clip=1000) <= 2000
        assert pool.cp_loss(chess.STARTING_FEN, "g1h3") >= 0.0


def test_a_binary_that_is_not_a_uci_engine_is_a_user_error():
    with pytest.raises(UserError, match="cannot start Stockfish '/bin/true'"):
        Engine("/bin/true")


"""Shard spans and PGN game reading for `chess datagen --shard` (no engine needed)."""

from __future__ import annotations

import chess.pgn
import pytest

from tinyreason.chess.gamesource import count_pgn_games, parse_shard, pgn_games, shard_span
from tinyreason.errors import UserError

# Game 2 has an illegal move, game 3 a broken FEN header, game 4 a comment with a blank line
# and a variation: games whose ends a skimming parser could place elsewhere than a full read.
PGN = """[Event "1"]

1. e4 e5 2. Nf3 Nc6 *

[Event "2"]

1. d4 d5 2. Ke3 Nf6 3. c4 *

[Event "3"]
[SetUp "1"]
[FEN "not a fen"]

1. e4 *

[Event "4"]

1. c4 { a comment

over lines } e5 (1... c5 2. Nc3) 2. Nc3 *

[Event "5"]

1. g3 d5 *
"""


@pytest.mark.parametrize("text,expected", [("0/1", (0, 1)), ("3/8", (3, 8)), (" 7 / 8 ", (7, 8))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["8/8", "1", "a/b", "-1/2", "0/0", "1/2/3", "", "1.0/2"])
def test_parse_shard_rejects(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


@pytest.mark.parametrize("total", [0, 1, 5, 7, 100])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_shard_spans_tile_the_games_in_order(total, n):
    spans = [shard_span(k, n, total) for k in range(n)]
    assert spans[0][0] == 0 and spans[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert max(b - a for a, b in spans) - min(b - a for a, b in spans) <= 1


def test_sharded_pgn_reads_equal_one_read(tmp_path):
    path = tmp_path / "g.pgn"
    path.write_text(PGN)
    with open(path) as f:
        games = 0
        while chess.pgn.read_game(f) is not None:
            games += 1
    assert count_pgn_games(str(path), None) == games == 5 and count_pgn_games(str(path), 3) == 3
    with pytest.raises(UserError, match="game 3: malformed FEN header"):  # read from the start: fatal
        list(pgn_games(str(path), 0, None))
    read = {start: [(i, g) for i, g, _ in pgn_games(str(path), start, None)] for start in (3, 4)}
    assert read[3] == [(3, ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", ["c2c4", "e7e5", "b1c3"])),
                       (4, ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", ["g2g3", "d7d5"]))]
    assert read[4] == read[3][1:] and [i for i, _, _ in pgn_games(str(path), 3, 4)] == [3]
    assert [g[1] for _, g, _ in pgn_games(str(path), 0, 2)] == [["e2e4", "e7e5", "g1f3", "b8c6"], ["d2d4", "d7d5"]]
    warnings = {i: w for i, _, w in pgn_games(str(path), 1, 2)}
    assert list(warnings) == [1] and "game 2:" in warnings[1] and "kept the 2 moves" in warnings[1]
    empty = tmp_path / "e.pgn"
    empty.write_text("")
    with pytest.raises(UserError, match="no games found"):
        count_pgn_games(str(empty), None)
    with pytest.raises(UserError, match="no games found"):
        list(pgn_games(str(empty), 0, None))

"""`tinyreason hrm eval` against the official evaluator's figures, ARC voting on official data,
and the same totals from 2 torchrun (gloo) processes as from one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyreason.cli import main as cli
from tinyreason.hrm.arc_vote import arc_vote
from tinyreason.puzzles.dataset import example_names, open_split, read_identifiers

OFFICIAL_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss")


def run_eval(fixtures, tmp_path, *extra) -> dict:
    out = tmp_path / "results.json"
    rc = cli(["hrm", "eval", "--checkpoint", str(fixtures / "hrm_official/rope_f32/step_1234"),
              "--data", str(fixtures / "hrm_datasets/sudoku-noaug"), "--out", str(out), *extra])
    assert rc == 0
    return json.loads(out.read_text())


def test_eval_matches_official_expected_json(fixtures, tmp_path):
    expected = json.loads((fixtures / "hrm_official/rope_f32/expected_eval_sudoku-noaug.json").read_text())
    # batch 4 -> 2 padding rows in the last batch, as in the official run behind the fixture
    report = run_eval(fixtures, tmp_path, "--batch-size", "4")
    agg = report["aggregate_metrics"]
    for key in OFFICIAL_KEYS:
        assert agg[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-7), key
    # the official q_halt_loss also counts BCE(q, 1) of batch padding rows (see metrics docstring)
    assert agg["q_halt_loss_official"] == pytest.approx(expected["q_halt_loss"], rel=1e-6)
    per = report["per_puzzle_metrics"]
    assert [p["puzzle_id"] for p in per] == [e["index"] for e in expected["per_example"]]
    for p, e in zip(per, expected["per_example"]):
        assert p["exact"] == e["exact"]
        assert p["accuracy"] == pytest.approx(e["accuracy"], abs=1e-7)
        assert p["q_halt_logit"] == pytest.approx(e["q_halt_logit"], abs=1e-5)
    assert agg["total_puzzles"] == 6 and agg["solve_rate"] == 0.0 and agg["average_steps"] == 4.0
    assert report["dataset"]["kind"] == "sudoku" and report["checkpoint"]["step"] == 1234
    assert set(report) >= {"aggregate_metrics", "per_puzzle_metrics", "checkpoint", "dataset", "config"}


def test_eval_refuses_a_dataset_of_another_vocabulary(fixtures, capsys):
    rc = cli(["hrm", "eval", "--checkpoint", str(fixtures / "hrm_official/learned_bf16"),
              "--data", str(fixtures / "hrm_datasets/sudoku-noaug")])
    assert rc == 2 and "vocab_size 12 but the dataset has 11" in capsys.readouterr().err


def test_arc_vote_on_official_augmented_test_split(fixtures):
    """Predicting each augmented label must de-augment to one answer per task: pass@1 = 1."""
    root = fixtures / "hrm_datasets/arc-aug3"
    split = open_split(root, "test")
    names = example_names(split, read_identifiers(root))
    labels = np.asarray(split.labels)
    out = arc_vote(names, np.asarray(split.inputs), labels, labels, np.zeros(len(split)))
    assert out["num_tasks"] == 3 and out["pass@1"] == 1.0
    assert all(t["tests"][0]["candidates"] == 1 for t in out["per_task"])
    wrong = np.where(labels >= 2, 2 + (labels - 1) % 10, labels)  # every colour c -> c+1 mod 10: all wrong
    assert arc_vote(names, np.asarray(split.inputs), wrong, labels, np.zeros(len(split)))["pass@2"] == 0.0


@pytest.mark.slow
def test_two_gloo_processes_give_the_same_totals(fixtures, tmp_path):
    single = run_eval(fixtures, tmp_path, "--batch-size", "2")
    out = tmp_path / "dist.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29531",
           "-m", "tinyreason.cli", "hrm", "eval", "--checkpoint", str(fixtures / "hrm_official/rope_f32/step_1234"),
           "--data", str(fixtures / "hrm_datasets/sudoku-noaug"), "--out", str(out), "--batch-size", "2", "--device", "cpu"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=120)
    sharded = json.loads(out.read_text())
    a, b = single["aggregate_metrics"], sharded["aggregate_metrics"]
    for key in OFFICIAL_KEYS + ("q_halt_loss", "solve_rate", "step_efficiency", "q_halt_mean"):
        assert b[key] == pytest.approx(a[key], rel=1e-6), key
    assert [p["puzzle_id"] for p in sharded["per_puzzle_metrics"]] == list(range(6))
    assert sharded["run"]["world_size"] == 2


def test_verifier_counts_a_different_valid_sudoku_as_solved(fixtures):
    """A puzzle with two solutions (an unavoidable rectangle blanked): the non-label one is solved, not exact."""
    from tinyreason.hrm.eval_loop import verify_rows
    from tinyreason.puzzles.sudoku import is_valid_solution
    from tinyreason.puzzles.verify import decode_sudoku, encode_sudoku

    solution = decode_sudoku(np.asarray(open_split(fixtures / "hrm_datasets/sudoku-noaug", "test").labels[0]))
    for r1, r2, c1, c2 in ((a, b, c, d) for a in range(9) for b in range(a + 1, 9) for c in range(9) for d in range(c + 1, 9)):
        other = solution.copy()
        other[[r1, r1, r2, r2], [c1, c2, c1, c2]] = solution[[r1, r1, r2, r2], [c2, c1, c2, c1]]
        if not np.array_equal(other, solution) and is_valid_solution(np.zeros((9, 9), dtype=int), other):
            break
    else:
        pytest.skip("no swappable rectangle in this grid")
    puzzle = solution.copy()
    puzzle[[r1, r1, r2, r2], [c1, c2, c1, c2]] = 0
    inputs, label, pred = encode_sudoku(puzzle)[None], encode_sudoku(solution)[None], encode_sudoku(other)[None]
    assert verify_rows("sudoku", inputs, pred, label, np.array([False])).tolist() == [True]
    broken = pred.copy()
    broken[0, 0] = 2 + (int(broken[0, 0]) - 1) % 9  # a duplicate digit: invalid
    assert verify_rows("sudoku", inputs, broken, label, np.array([False])).tolist() == [False]


def test_embedded_checkpoint_evaluates_by_name(tmp_path, capsys):
    out = tmp_path / "emb.json"
    assert cli(["hrm", "eval", "--checkpoint", "embedded:hrm-sudoku-tiny", "--data", "embedded:hrm-sudoku-tiny/data",
                "--limit", "32", "--out", str(out), "--halt", "adaptive"]) == 0
    agg = json.loads(out.read_text())["aggregate_metrics"]
    assert agg["total_puzzles"] == 32
    # Easy puzzles (77 givens, 4 blanks): copying the givens alone scores 77/81 = 0.951 and solves none;
    # the shipped model fills most blanks and solves a good share (model card: ~0.4 on all 200).
    assert agg["accuracy"] > (77 + 0.6 * 4) / 81 and agg["solve_rate"] >= 0.2
    assert cli(["hrm", "eval", "--checkpoint", "embedded:nope", "--data", "x"]) == 2
    assert "no embedded model 'nope'" in capsys.readouterr().err


def _tiny_arc_checkpoint(folder, num_puzzle_identifiers):
    import torch
    from hrm_test_utils import official_state_dict, tiny_arch, tiny_config, write_all_config
    from tinyreason.hrm.model import HRMACT

    torch.manual_seed(0)
    model = HRMACT(tiny_config(vocab_size=12, seq_len=900, num_puzzle_identifiers=num_puzzle_identifiers))
    write_all_config(folder, tiny_arch())
    torch.save(official_state_dict(model), folder / "step_1")
    return folder / "step_1"


def test_eval_merges_several_data_paths_and_votes_on_trm_test_puzzles(fixtures, tmp_path, capsys):
    """`--data A B` as TRM's data_paths (puzzle embeddings for both folders' identifiers); the ARC
    section takes TRM's test_puzzles.json tasks, only those evaluated under --limit."""
    trm = str(fixtures / "trm_datasets/arc-trm-aug3")
    ckpt = _tiny_arc_checkpoint(tmp_path / "run", 98)
    out = tmp_path / "r.json"
    assert cli(["hrm", "eval", "--checkpoint", str(ckpt), "--data", trm, trm, "--limit", "3", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads(out.read_text())
    assert report["dataset"]["path"] == [trm, trm] and report["config"]["data"] == [trm, trm]
    assert report["dataset"]["metadata"]["num_puzzle_identifiers"] == 98 and report["dataset"]["examples"] == 40
    assert report["arc"]["num_tasks"] == 1 and list(report["arc"]["submission"]) == ["48131b3c"]
    assert [p["puzzle"] for p in report["per_puzzle_metrics"]][1].startswith("48131b3c|||t")
    # a single path is text, as before; a folder of other identifiers does not merge
    assert cli(["hrm", "eval", "--checkpoint", str(ckpt), "--data", trm, "--limit", "1", "--out", str(out), "--device", "cpu"]) == 0
    assert json.loads(out.read_text())["config"]["data"] == trm
    other = str(fixtures / "trm_datasets/arc-trm-aug0")
    assert cli(["hrm", "eval", "--checkpoint", str(ckpt), "--data", trm, other, "--device", "cpu"]) == 2
    assert "num_puzzle_identifiers 13 differs from 49" in capsys.readouterr().err

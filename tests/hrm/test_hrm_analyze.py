"""`tinyreason hrm analyze` on a run folder of tiny official-format checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from hrm_test_utils import make_run

from tinyreason.cli import main
from tinyreason.errors import UserError
from tinyreason.hrm.analyze import AnalyzeConfig, analyze_run, relative_changes, write_markdown
from tinyreason.hrm.evalresults import read_eval_results


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    make_run(folder)  # steps 10..50, updates shrinking 0.5 -> 0.1 -> 0.001 -> 0.0005 (relative)
    return folder


def _analyze(run, out, *extra):
    assert main(["hrm", "analyze", str(run), "--out", str(out), *extra]) == 0
    return json.loads((out / "analysis.json").read_text())


def _analyze_fast(run, tmp_path, **kw):
    """The analysis without the CLI's PNG plots (matplotlib start-up dominates the CLI test)."""
    result = analyze_run(AnalyzeConfig(run_dir=str(run), out=str(tmp_path / "r"), **kw))
    write_markdown(result, tmp_path)
    return result


@pytest.mark.slow
def test_analyze_converged_run_writes_json_markdown_and_plots(run, tmp_path):
    out = tmp_path / "report"
    result = _analyze(run, out)
    rows = result["checkpoints"]
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50] and all(r["valid"] for r in rows)
    assert rows[0]["change"] == {} and rows[1]["change"]["model"] > 0.1 and rows[3]["change"]["model"] < 0.01
    assert rows[1]["change"]["puzzle_emb"] > 0.1 and [r["converged"] for r in rows] == [False, False, False, True, True]
    assert set(rows[0]["norms"]) >= {"H_level", "L_level", "embed_tokens", "lm_head", "q_head", "puzzle_emb", "H_init"}
    assert rows[0]["params"]["puzzle_embedding"] == 5 * 16
    assert result["verdict"] == "converged" and result["converged_since"] == 40
    assert "below 0.01 for the last 2 interval(s)" in result["rule"]
    assert result["recommended"] == 50 and "latest converged" in result["recommended_reason"]
    md = (out / "analysis.md").read_text()
    assert "**Verdict:** converged (since step 40)" in md and "Recommended checkpoint:** step 50" in md
    for png in ("norms.png", "change.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "config.yaml").exists()


def test_analyze_not_converged_and_invalid_checkpoint(run, tmp_path):
    sd = torch.load(run / "step_50", weights_only=True)
    sd["_orig_mod.model.inner.lm_head.weight"][0, 0] = float("nan")
    torch.save(sd, run / "step_60")
    (run / "step_70").write_bytes((run / "step_50").read_bytes()[:2000])  # truncated file
    result = _analyze_fast(run, tmp_path, change_threshold=0.0001)
    by_step = {r["step"]: r for r in result["checkpoints"]}
    assert not by_step[60]["valid"] and "NaN" in by_step[60]["errors"][0]
    assert not by_step[70]["valid"] and "truncated or corrupt" in by_step[70]["errors"][0]
    assert result["verdict"] == "not converged"
    assert result["recommended"] == 50 and "none has converged" in result["recommended_reason"]
    assert "## Problems" in (tmp_path / "analysis.md").read_text()


def test_analyze_recommends_best_by_eval_results(run, tmp_path):
    mapping = tmp_path / "scores.json"
    mapping.write_text(json.dumps({"step_10": 0.2, "20": 0.9, "30": 0.5}))
    result = _analyze_fast(run, tmp_path, eval_results=[str(mapping)])
    assert result["recommended"] == 20 and "highest exact_accuracy = 0.9" in result["recommended_reason"]
    files = []
    for step, loss in ((10, 3.0), (30, 1.0), (40, 2.0)):
        path = tmp_path / f"eval_{step}.json"
        path.write_text(json.dumps({"checkpoint": str(run / f"step_{step}"), "aggregate_metrics": {"lm_loss": loss, "exact_accuracy": 0.1}}))
        files.append(str(path))
    result = _analyze_fast(run, tmp_path, eval_results=files, metric="lm_loss", higher_is_better=False)
    assert result["recommended"] == 30 and result["checkpoints"][2]["lm_loss"] == 1.0


def test_eval_results_formats_and_errors(tmp_path):
    jsonl = tmp_path / "metrics.jsonl"
    jsonl.write_text('{"step": 5, "eval/exact_accuracy": 0.3}\n{"step": 6, "train/loss": 1}\n{"step": 7, "eval/exact_accuracy": 0.4}\n')
    assert read_eval_results([jsonl], "exact_accuracy") == {5: 0.3, 7: 0.4}
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps([{"step": 3, "aggregate_metrics": {"all": {"exact_accuracy": 0.7}}}]))
    assert read_eval_results([nested], "exact_accuracy") == {3: 0.7}
    compare = tmp_path / "compare.json"  # `tinyreason hrm compare` output: step, else the path's step_N
    compare.write_text(json.dumps({"comparison": {"run/step_4": {"solve_rate": 0.5, "step": 4, "path": "/x/run/step_4"},
                                                  "run/step_8": {"solve_rate": 0.6, "step": None, "path": "/x/run/step_8"}},
                                   "dataset": "d", "config": {}}))
    assert read_eval_results([compare], "solve_rate") == {4: 0.5, 8: 0.6}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_eval_results([bad], "exact_accuracy")
    with pytest.raises(UserError, match="no 'accuracy' result"):
        read_eval_results([jsonl], "accuracy")


def test_relative_change_excludes_puzzle_embeddings_from_model_total():
    prev = {"inner.lm_head.weight": torch.ones(2, 2), "inner.puzzle_emb.weights": torch.ones(3, 2)}
    cur = {"inner.lm_head.weight": torch.ones(2, 2) * 1.1, "inner.puzzle_emb.weights": torch.ones(3, 2) * 3}
    ch = relative_changes(prev, cur)
    assert ch["model"] == pytest.approx(0.1) and ch["lm_head"] == pytest.approx(0.1) and ch["puzzle_emb"] == pytest.approx(2.0)


def test_analyze_bad_run_dir_exit_2(tmp_path, capsys):
    assert main(["hrm", "analyze", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["hrm", "analyze", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no step_N checkpoints" in capsys.readouterr().err


def test_analyze_missing_all_config_and_no_valid_checkpoint_exit_2(tmp_path, capsys):
    run = tmp_path / "run"
    make_run(run, steps=(10,))
    (run / "all_config.yaml").rename(tmp_path / "all_config.yaml")
    assert main(["hrm", "analyze", str(run), "--out", str(tmp_path / "o")]) == 2
    assert "no all_config.yaml in" in capsys.readouterr().err and not (tmp_path / "o").exists()
    (run / "step_10").write_bytes((run / "step_10").read_bytes()[:500])
    result = analyze_run(AnalyzeConfig(run_dir=str(run), out=str(tmp_path / "o"), arch_config=str(tmp_path / "all_config.yaml")))
    assert result["verdict"] == "no valid checkpoints" and result["recommended"] is None
    assert "truncated or corrupt" in result["checkpoints"][0]["errors"][0]


def test_analyze_takes_an_embedded_run_by_name(tmp_path):
    result = _analyze_fast("embedded:trm-sudoku-tiny", tmp_path)
    assert result["family"] == "TRM"
    assert [r["step"] for r in result["checkpoints"]] == [750, 3000, 4500]
    assert all(r["valid"] for r in result["checkpoints"])

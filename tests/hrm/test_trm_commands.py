"""TRM checkpoints in every puzzle command: eval against the official TRM evaluation, validate,
predict, compare, an ensemble mixing HRM and TRM, analyze of a TRM run, one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from hrm_test_utils import make_run, reference

from tinyreason.cli import main
from tinyreason.hrm.analyze import AnalyzeConfig, analyze_run, write_markdown
from tinyreason.hrm.compare import CompareConfig, compare

OFFICIAL_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss")


@pytest.fixture
def trm_copy(fixtures, tmp_path):
    """A writable copy of the att_rope_f32 TRM fixture folder."""
    dst = tmp_path / "trm"
    shutil.copytree(fixtures / "trm_official" / "att_rope_f32", dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


def test_eval_matches_official_trm_evaluation(fixtures, tmp_path, capsys):
    expected = json.loads((fixtures / "trm_official/att_rope_f32/expected_eval_sudoku-noaug.json").read_text())
    out = tmp_path / "results.json"
    # batch 4 -> 2 padding rows in the last batch, as in the official run behind the fixture
    assert main(["hrm", "eval", "--checkpoint", str(fixtures / "trm_official/att_rope_f32/step_1234"),
                 "--data", str(fixtures / "hrm_datasets/sudoku-noaug"), "--out", str(out), "--batch-size", "4"]) == 0
    report = json.loads(out.read_text())
    agg = report["aggregate_metrics"]
    for key in OFFICIAL_KEYS:
        assert agg[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-7), key
    # TRM's loss head, like HRM's, sums BCE(q_halt, 1) over batch padding rows too
    assert agg["q_halt_loss_official"] == pytest.approx(expected["q_halt_loss"], rel=1e-6)
    per = report["per_puzzle_metrics"]
    assert len(per) == len(expected["per_example"]) == 6
    for p, e in zip(per, expected["per_example"]):
        assert p["exact"] == e["exact"]
        assert p["accuracy"] == pytest.approx(e["accuracy"], abs=1e-7)
        assert p["q_halt_logit"] == pytest.approx(e["q_halt_logit"], abs=1e-5)
    assert report["checkpoint"]["arch"]["name"].endswith("@TinyRecursiveReasoningModel_ACTV1")
    assert "TRM eval on sudoku-noaug/test" in capsys.readouterr().err  # the console writes to stderr


def test_validate_trm_and_wrong_family_configs(fixtures, capsys):
    trm, hrm = fixtures / "trm_official", fixtures / "hrm_official"
    assert main(["hrm", "validate", str(trm / "mlp_t_f32")]) == 0
    out = capsys.readouterr().out
    assert "TRM checkpoint" in out and "L_level.layers.1" in out and "valid: 398,274 numbers, 320 puzzle embeddings" in out
    cases = [
        (trm / "att_rope_f32", hrm / "rope_f32/all_config.yaml", "the checkpoint is a TRM (one L_level network, no H_level) but the config is an HRM"),
        (hrm / "rope_f32", trm / "att_rope_f32/all_config.yaml", "the checkpoint is an HRM (it has an H_level network) but the config is a TRM"),
        (trm / "mlp_t_f32", trm / "att_rope_f32/all_config.yaml", "TRM with mlp_t: a sequence-axis MLP in place of attention, but the config says mlp_t=false"),
    ]
    for ckpt, config, message in cases:
        assert main(["hrm", "validate", str(ckpt), "--arch-config", str(config)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_predict_round_trip(fixtures, tmp_path):
    src = fixtures / "trm_official" / "att_rope_f32"
    ref = reference(fixtures, "att_rope_f32", "trm_official")
    out = tmp_path / "pred.npz"
    assert main(["hrm", "predict", "--checkpoint", str(src), "--inputs", str(src / "reference_io.npz"), "--out", str(out)]) == 0
    with np.load(out) as z:
        assert np.abs(z["logits"] - ref["logits"][-1]).max() <= 1e-4 and (z["steps"] == 4).all()
        assert np.abs(z["q_halt_logits"] - ref["q_halt_logits"][-1]).max() <= 1e-4
    arch = yaml.safe_load((tmp_path / "pred.npz.config.yaml").read_text())["arch"]
    assert arch["name"].endswith("@TinyRecursiveReasoningModel_ACTV1") and arch["puzzle_emb_len"] == 16 and arch["mlp_t"] is False


def _members(fixtures) -> list[str]:
    return [str(fixtures / "hrm_official/rope_f32/step_1234"), str(fixtures / "trm_official/att_rope_f32/step_1234")]


def test_ensemble_mixing_hrm_and_trm(fixtures, tmp_path, capsys):
    members, data = _members(fixtures), str(fixtures / "hrm_datasets/sudoku-noaug")
    out = tmp_path / "ens.json"
    assert main(["hrm", "ensemble", "--checkpoints", *members, "--strategy", "vote", "--data", data, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [m["name"] for m in report["members"]] == ["rope_f32/step_1234", "att_rope_f32/step_1234"]
    assert report["aggregate_metrics"]["total_puzzles"] == 6 and report["aggregate_metrics"]["average_steps"] == 8  # 4 + 4
    trm_alone = report["members"][1]["aggregate_metrics"]
    assert trm_alone["accuracy"] == pytest.approx(0.11316872636477153, rel=1e-6)  # the official TRM figure
    assert "HRM+TRM ensemble" in capsys.readouterr().err


def test_compare_hrm_and_trm(fixtures):
    table = compare(CompareConfig(checkpoints=_members(fixtures), data=str(fixtures / "hrm_datasets/sudoku-noaug")))  # the CLI's table, no PNG
    assert list(table) == ["rope_f32/step_1234", "att_rope_f32/step_1234"]
    assert table["att_rope_f32/step_1234"]["accuracy"] == pytest.approx(0.11316872636477153, rel=1e-6)  # the official TRM figure
    assert table["rope_f32/step_1234"]["steps"] == 4 and table["att_rope_f32/step_1234"]["path"].endswith("step_1234")


def test_analyze_trm_run(tmp_path, fixtures):
    run = tmp_path / "run"
    make_run(run, trm=True)  # steps 10..50, updates shrinking 0.5 -> 0.0005 (relative)
    shutil.copy(fixtures / "hrm_official/rope_f32/step_1234", run / "step_60")  # an HRM file in a TRM run
    result = analyze_run(AnalyzeConfig(run_dir=str(run), out=str(tmp_path / "r")))
    rows = result["checkpoints"]
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50, 60] and [r["valid"] for r in rows] == [True] * 5 + [False]
    assert set(rows[0]["norms"]) >= {"L_level", "embed_tokens", "puzzle_emb", "H_init"} and "H_level" not in rows[0]["norms"]
    assert "the checkpoint is an HRM" in rows[5]["errors"][0]
    assert result["family"] == "TRM" and result["verdict"] == "converged" and result["recommended"] == 50
    write_markdown(result, tmp_path)
    assert (tmp_path / "analysis.md").read_text().startswith("# TRM run analysis")


def test_cli_one_line_errors(fixtures, trm_copy, tmp_path, capsys):
    sudoku = str(fixtures / "hrm_datasets/sudoku-noaug")
    assert main(["hrm", "eval", "--checkpoint", str(fixtures / "trm_official/att_learned_bf16"), "--data", sudoku]) == 2
    assert "vocab_size 12 but the dataset has 11" in capsys.readouterr().err
    cfg = yaml.safe_load((trm_copy / "all_config.yaml").read_text())
    for change, message in (
        ({"name": "recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1_singlez"}, "unsupported architecture"),
        ({"puzzle_emb_len": 2, "puzzle_emb_ndim": 200}, "puzzle_emb_len=2 positions of 64 cannot hold puzzle_emb_ndim=200"),
        ({"mlp_t": True}, "mlp_t=true needs seq_len"),
    ):
        (trm_copy / "all_config.yaml").write_text(yaml.safe_dump({**cfg, "arch": {**cfg["arch"], **change}}))
        assert main(["hrm", "predict", "--checkpoint", str(trm_copy), "--inputs", str(trm_copy / "reference_io.npz"), "--out", str(tmp_path / "o.npz")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    sd = torch.load(trm_copy / "step_1234", weights_only=True)
    sd.pop("_orig_mod.model.inner.L_level.layers.1.mlp.down_proj.weight")
    torch.save(sd, trm_copy / "step_1234")
    (trm_copy / "all_config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["hrm", "validate", str(trm_copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing key inner.L_level.layers.1.mlp.down_proj.weight" in err[0]

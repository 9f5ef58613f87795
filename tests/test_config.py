from pathlib import Path
from typing import Literal

import pytest
import yaml

from tinyreason.config import StrictModel, config_help, dump_config, load_config, parse_command
from tinyreason.errors import UserError


class Optim(StrictModel):
    lr: float = 1e-3
    betas: list[float] = [0.9, 0.95]


class Cfg(StrictModel):
    """A test config."""

    name: str = "run"
    steps: int = 10
    mode: Literal["a", "b"] = "a"
    out: Path | None = None
    files: list[str] = []
    resume: bool = False
    optim: Optim = Optim()
    weights: dict[str, dict[str, float]] = {}


def test_defaults_file_and_overrides_priority(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("steps: 5\noptim:\n  lr: 0.5\n")
    cfg = load_config(Cfg, f, {"optim.lr": "0.25", "name": "x"})
    assert cfg.steps == 5 and cfg.optim.lr == 0.25 and cfg.name == "x"
    assert cfg.optim.betas == [0.9, 0.95]


def test_text_fields_keep_raw_strings():
    # "no" and "1e3" would be a bool and a number in YAML; a str field keeps the text.
    cfg = load_config(Cfg, None, {"name": "no", "out": "1e3"})
    assert cfg.name == "no" and cfg.out == Path("1e3")


def test_null_on_an_optional_text_field_is_none():
    # `train_split=null` once gave the split the text "null"; a required str field keeps it
    for spelling in ("null", "~", "NULL"):
        cfg = load_config(Cfg, None, {"out": spelling, "name": spelling})
        assert cfg.out is None and cfg.name == spelling
    assert load_config(Cfg, None, {"out": "nullx"}).out == Path("nullx")


def test_unknown_key_is_one_line_error():
    with pytest.raises(UserError, match="unknown key 'optim.lrr'"):
        load_config(Cfg, None, {"optim.lrr": "1"})


def test_unknown_key_in_yaml(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("stepz: 3\n")
    with pytest.raises(UserError, match="unknown key 'stepz'"):
        load_config(Cfg, f)


def test_wrong_type_names_key_and_value():
    with pytest.raises(UserError) as e:
        load_config(Cfg, None, {"steps": "ten"})
    assert "steps" in str(e.value) and "'ten'" in str(e.value) and "\n" not in str(e.value)


def test_bad_literal():
    with pytest.raises(UserError, match="mode"):
        load_config(Cfg, None, {"mode": "c"})


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(Cfg, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(Cfg, bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(UserError, match="mapping"):
        load_config(Cfg, lst)


def test_parse_command_flags_lists_bools_and_positional(tmp_path):
    cfg = parse_command(
        Cfg, ["myname", "--steps", "7", "--files", "a", "b", "--resume", "optim.lr=0.1", "--optim.betas", "[0.8, 0.9]"],
        positional=("name",),
    )
    assert cfg.name == "myname" and cfg.steps == 7 and cfg.files == ["a", "b"]
    assert cfg.resume is True and cfg.optim.lr == 0.1 and cfg.optim.betas == [0.8, 0.9]


def test_parse_command_single_list_value_and_dashes():
    cfg = parse_command(Cfg, ["--files", "only"])
    assert cfg.files == ["only"]


def test_parse_command_config_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("steps: 3\n")
    assert parse_command(Cfg, ["--config", str(f), "steps=4"]).steps == 4
    assert parse_command(Cfg, ["--config", str(f)]).steps == 3


def test_parse_command_errors():
    with pytest.raises(UserError, match="unknown key 'bogus'"):
        parse_command(Cfg, ["--bogus", "1"])
    with pytest.raises(UserError, match="unexpected argument"):
        parse_command(Cfg, ["stray"])
    with pytest.raises(UserError, match="takes one value"):
        parse_command(Cfg, ["--steps", "1", "2"])


def test_dump_round_trip(tmp_path):
    cfg = load_config(Cfg, None, {"out": "x/y", "optim.lr": "0.3"})
    f = tmp_path / "dump.yaml"
    f.write_text(dump_config(cfg))
    assert load_config(Cfg, f) == cfg
    assert yaml.safe_load(dump_config(cfg))["optim"]["lr"] == 0.3


def test_help_lists_nested_fields(capsys):
    text = config_help(Cfg, "tinyreason x")
    assert "optim.lr" in text and "A test config." in text
    with pytest.raises(SystemExit):
        parse_command(Cfg, ["--help"])
    assert "steps" in capsys.readouterr().out


def test_dotted_keys_reach_into_dict_fields():
    cfg = parse_command(Cfg, ["weights.policy.best=2", "--weights.env.fen", "0.5"])
    assert cfg.weights == {"policy": {"best": 2.0}, "env": {"fen": 0.5}}
    with pytest.raises(UserError, match="weights.policy.best"):
        parse_command(Cfg, ["weights.policy.best=high"])


def test_text_or_list_of_text_keeps_one_value_as_its_text():
    """`data: str | list[str]` (hrm eval --data): one value is the text as given, several a list."""

    class Data(StrictModel):
        data: str | list[str] = "x"

    assert parse_command(Data, ["--data", "2024"]).data == "2024"
    assert parse_command(Data, ["data=true"]).data == "true"
    assert parse_command(Data, ["--data", "a", "7"]).data == ["a", "7"]
    assert parse_command(Data, ["data=[a, b]"]).data == ["a", "b"]


def test_duplicate_yaml_keys_are_errors(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("steps: 3\noptim:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(UserError, match=r"duplicate key 'lr' \(line 4\)"):
        parse_command(Cfg, ["--config", str(f)])
    f.write_text("base: &b {lr: 0.1}\noptim:\n  <<: *b\n  lr: 0.2\n")  # a merge key may be overridden
    from tinyreason.config import read_yaml

    assert read_yaml(f)["optim"] == {"lr": 0.2}
    with pytest.raises(UserError, match="duplicate key"):
        parse_command(Cfg, ["weights={a: {x: 1}, a: {y: 2}}"])


def test_a_config_file_that_is_not_utf8(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(UserError, match="not UTF-8"):
        parse_command(Cfg, ["--config", str(f)])


def test_a_number_is_not_turned_into_a_list_of_text():
    """`stop_strings=5` must not become ['5']: a list of text takes text, a list of numbers a number."""
    with pytest.raises(UserError, match=r"files takes a list of strings, got '5'"):
        parse_command(Cfg, ["files=5"])
    with pytest.raises(UserError, match="list of strings"):
        parse_command(Cfg, ["--files", "true"])
    assert parse_command(Cfg, ["files=a.txt"]).files == ["a.txt"]
    assert parse_command(Cfg, ['files=["5"]']).files == ["5"]
    assert parse_command(Cfg, ["--files", "5", "6"]).files == ["5", "6"]  # several values are text as given

"""Typed command configs: pydantic models loaded from YAML plus command-line overrides.

Every command has one config class. Its values come, in increasing priority, from the
class defaults, an optional YAML file (`--config FILE`), `--name value` flags and
`dotted.key=value` overrides. Unknown keys and wrong types raise `UserError` with one
line naming the key, so the CLI exits 2 instead of running with a silent default.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tinyreason.errors import UserError

C = TypeVar("C", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def _field_type(cls: type[BaseModel], dotted: str) -> Any:
    """Annotation of a dotted field path, or raise UserError naming the unknown key."""
    current: Any = cls
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if i > 0 and _dict_value(current) is not None:  # `weights.policy.x=1` into a dict field
            current = _dict_value(current)
            continue
        # A union of models (e.g. `arch`: HRM or TRM) takes a key any of them has.
        model = next((m for m in _models_in(current) if part in m.model_fields), None)
        if model is None:
            raise UserError(f"config error: unknown key '{'.'.join(parts[: i + 1])}'")
        current = model.model_fields[part].annotation
    return current


def _dict_value(annotation: Any) -> Any:
    """Value type of a dict-typed field (None when the field is not a dict)."""
    if typing.get_origin(annotation) is dict:
        args = typing.get_args(annotation)
        return args[1] if len(args) == 2 else Any
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if _dict_value(arg) is not None:
                return _dict_value(arg)
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every model class in an annotation (several for a union of models), in order."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _wants_text(annotation: Any) -> bool:
    """True when a field holds text (str, Path or string Literal): keep the raw CLI string.

    Otherwise the value is parsed as YAML, so `beta=0.1` is a float and `dims=[1,2]` a list.
    """
    if annotation in (str, Path):
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return all(isinstance(a, str) for a in args)
    if origin in (typing.Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        return bool(real) and all(_wants_text(a) for a in real)
    return False


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation) if a is not type(None))
    return False


def _list_item(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if _is_list(a))
    args = typing.get_args(annotation)
    return args[0] if args else Any


def _parse_value(annotation: Any, raw: str | list[str], key: str = "") -> Any:
    """A command-line value as the field wants it. One scalar where a list is expected becomes a
    one-item list (`train_data=a.txt`), except a number, bool or null for a list of text: that is
    refused rather than turned into its spelling (`stop_strings=5` is not ['5'])."""
    if isinstance(raw, list):
        item = _list_item(annotation)
        return [r if _wants_text(item) else _yaml_scalar(r) for r in raw]
    if raw in _YAML_NULLS and _allows_none(annotation):
        return None  # `train_split=null` on an optional text field is None, as in a YAML file
    if _wants_text(annotation):
        return raw
    value = _yaml_scalar(raw)
    if _is_list(annotation) and not isinstance(value, list):
        item = _list_item(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) and str in typing.get_args(annotation):
            return raw  # `str | list[str]`: one value is that text (`data=2024`)
        if _wants_text(item) and not isinstance(value, str):
            raise UserError(f"config error: {key} takes a list of strings, got {raw!r}; "
                            f"write {key}='[\"{raw}\"]' if you mean the text {raw!r}")
        return [raw if _wants_text(item) else value]
    return value


_YAML_NULLS = ("null", "Null", "NULL", "~")


def _allows_none(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


def _yaml_scalar(raw: str) -> Any:
    try:
        return load_yaml(raw) if raw != "" else ""
    except _DuplicateKey as e:
        raise UserError(f"config error: {raw!r} has a {e.problem}") from None
    except yaml.YAMLError:
        return raw


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping that holds one key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping holding one key twice (PyYAML keeps the last one
    silently, so a pasted duplicate would override the line above it unseen)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden by design
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, typing.Hashable) and key in seen:
            raise _DuplicateKey(
                None, None, f"duplicate key '{key}' (line {key_node.start_mark.line + 1})", key_node.start_mark)
        seen.add(key) if isinstance(key, typing.Hashable) else None
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml(text: str) -> Any:
    """yaml.safe_load, but a mapping with a duplicate key is a yaml.YAMLError (used for every config read)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if child is None else _as_dict(child)
            node[part] = child
        node = child
    node[parts[-1]] = value


def _as_dict(value: Any) -> dict:
    return value.model_dump() if isinstance(value, BaseModel) else dict(value)


def format_validation_error(err: ValidationError) -> str:
    """All errors of a pydantic ValidationError on one line: `key: message (got value)`."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
            continue
        got = e.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{loc}: {msg}{got_s}")
    return "config error: " + "; ".join(parts)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file holding a mapping (an empty file is {}), with one-line UserErrors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        loaded = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise UserError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise UserError(f"config file {path} must hold a mapping, got {type(loaded).__name__}")
    return loaded or {}


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> C:
    """Build `cls` from an optional YAML file and dotted overrides (already typed or raw text)."""
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    for key, raw in (overrides or {}).items():
        annotation = _field_type(cls, key)
        value = _parse_value(annotation, raw, key) if isinstance(raw, (str, list)) else raw
        _set_dotted(data, key, value)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise UserError(format_validation_error(e)) from None


def parse_command(
    cls: type[C],
    argv: list[str],
    positional: tuple[str, ...] = (),
    prog: str = "tinyreason",
) -> C:
    """Parse `[POSITIONAL…] [--config FILE] [--key v …] [dotted.key=value …]` into `cls`.

    `--key` takes the values up to the next `--flag` (none: true; several: a list);
    dashes in flag names become underscores, dots select nested fields.
    """
    if any(a in ("-h", "--help") for a in argv):
        print(config_help(cls, prog, positional))
        raise SystemExit(0)
    overrides: dict[str, Any] = {}
    config_path: str | None = None
    free: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok.startswith("--") and len(tok) > 2:
            name, eq, inline = tok[2:].partition("=")
            values: list[str] = [inline] if eq else []
            j = i + 1
            if not eq:
                while j < len(argv) and not (argv[j].startswith("--") and len(argv[j]) > 2):
                    if "=" in argv[j] and _is_key(cls, argv[j].split("=", 1)[0]):
                        break
                    values.append(argv[j])
                    j += 1
            key = name.replace("-", "_")
            if key == "config":
                if len(values) != 1:
                    raise UserError("--config takes exactly one YAML file")
                config_path = values[0]
            else:
                _field_type(cls, key)  # unknown flag -> clear error
                overrides[key] = "true" if not values else values[0] if len(values) == 1 else values
                if len(values) > 1 and not _is_list(_field_type(cls, key)):
                    raise UserError(f"--{name} takes one value, got {len(values)}: {' '.join(values)}")
            i = j
        elif "=" in tok and _is_key(cls, tok.split("=", 1)[0]):
            key, _, raw = tok.partition("=")
            overrides[key] = raw
            i += 1
        else:
            free.append(tok)
            i += 1
    if free:
        if not positional:
            raise UserError(f"unexpected argument '{free[0]}' (overrides are key=value or --key value)")
        if len(free) > len(positional) and not _is_list(_field_type(cls, positional[-1])):
            raise UserError(f"unexpected argument '{free[len(positional)]}'")
        for name, value in zip(positional, free):
            overrides.setdefault(name, value)
        if len(free) > len(positional):
            overrides[positional[-1]] = free[len(positional) - 1 :]
    return load_config(cls, config_path, overrides)


def _is_key(cls: type[BaseModel], dotted: str) -> bool:
    try:
        _field_type(cls, dotted)
        return True
    except UserError:
        return False


def config_help(cls: type[BaseModel], prog: str, positional: tuple[str, ...] = ()) -> str:
    """A help text listing every field (nested with dots), its type, default and description."""
    lines = [f"usage: {prog} {' '.join(p.upper() for p in positional)} [--config FILE] [--key value ...] [key=value ...]".replace("  ", " ")]
    doc = (cls.__doc__ or "").strip()
    if doc:
        lines += ["", doc]
    lines += ["", "options (YAML keys; nested keys with dots):"]
    lines += _field_lines(cls, "")
    return "\n".join(lines)


def _field_lines(cls: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in cls.model_fields.items():
        nested = _models_in(field.annotation)
        if nested and not _is_list(field.annotation):
            for model in nested:
                if len(nested) > 1:  # a union of models: say which one the next lines belong to
                    out.append(f"  {prefix}{name} as {model.__name__}: {(model.__doc__ or '').strip().splitlines()[0]}")
                out += _field_lines(model, f"{prefix}{name}.")
            continue
        ann = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        default = "required" if field.is_required() else f"default {field.default!r}"
        desc = f"  {field.description}" if field.description else ""
        out.append(f"  {prefix}{name} ({ann}, {default}){desc}")
    return out


def dump_config(cfg: BaseModel) -> str:
    """The resolved config as YAML (what every run writes next to its outputs)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)

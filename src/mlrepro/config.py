"""Typed experiment configs: a frozen dataclass per experiment is the only config object.

The command line is generated from it: `--key value` (or `--key=value`, dashes or underscores)
overrides a field; an unknown key or a value of the wrong type is a one-line `ConfigError`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

from .errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"comma-separated {_describe(typing.get_args(tp)[0])}s"
    return "none" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert `value` (a CLI string, or a JSON value from config.json) to the field's type."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"option --{key.replace('_', '-')} expects {_describe(tp)}, got {value!r}")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", ""))):
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(key, value, a)
            except ConfigError:
                pass
        raise bad
    if origin is Literal:
        for choice in typing.get_args(tp):
            if str(choice) == str(value):
                return choice
        raise bad
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp)
        parts = value.split(",") if isinstance(value, str) else list(value)
        try:
            return tuple(_coerce(key, p.strip() if isinstance(p, str) else p, item) for p in parts if p != "")
        except ConfigError:
            raise bad from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE:
            return True
        if str(value).lower() in _FALSE:
            return False
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        try:
            f = float(value)  # accepts "1e4"
        except (TypeError, ValueError):
            raise bad from None
        if f != int(f):
            raise bad
        return int(f)
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if tp is str:
        return str(value)
    raise ConfigError(f"option --{key}: unsupported field type {tp!r}")


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def parse_overrides(args: list[str]) -> dict[str, str]:
    """['--lr', '0.1', '--epochs=3', '--no-flag'] → {'lr': '0.1', 'epochs': '3', 'flag': 'false'}."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--") or len(a) == 2:
            raise ConfigError(f"unexpected argument {a!r}; options look like --key value")
        key, eq, value = a[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not (args[i + 1].startswith("--") and len(args[i + 1]) > 2):
                value = args[i + 1]
                i += 1
            elif key.startswith("no_"):
                key, value = key[3:], "false"
            else:
                value = "true"  # a bare --flag
        out[key] = value
        i += 1
    return out


def build_config(cls: type, presets: dict[str, dict] | None = None, preset: str | None = None,
                 overrides: dict[str, Any] | None = None, *, what: str = "experiment"):
    """`cls()` updated by `presets[preset]` then by `overrides` (strings or JSON values)."""
    presets = presets or {}
    types_ = field_types(cls)
    values: dict[str, Any] = {}
    if preset:
        if preset not in presets:
            valid = ", ".join(presets) or "(none)"
            raise ConfigError(f"unknown preset {preset!r} for {what}; valid: {valid}")
        values.update(presets[preset])
    for key, value in (overrides or {}).items():
        if key not in types_:
            valid = ", ".join("--" + k.replace("_", "-") for k in types_)
            raise ConfigError(f"unknown option --{key.replace('_', '-')} for {what}; valid: {valid}")
        values[key] = value
    coerced = {k: _coerce(k, v, types_[k]) for k, v in values.items()}
    try:
        return cls(**coerced)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {e}") from None


def config_help(cls: type) -> list[tuple[str, str, Any]]:
    """(option, type description, default) for each field, for `mlrepro list`/`--help`."""
    types_ = field_types(cls)
    return [("--" + f.name.replace("_", "-"), _describe(types_[f.name]), f.default)
            for f in dataclasses.fields(cls)]

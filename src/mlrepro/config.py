"""Typed experiment configs: a frozen dataclass per experiment is the only config object.

The command line is generated from it: `--key value` (or `--key=value`, dashes or underscores)
overrides a field; an unknown key, a value of the wrong type or out of its range is a one-line
`ConfigError`. Each field is declared with `opt(default, source, help, ge=..., ...)`, so its
source (blog / paper / ours), help text and allowed range live next to it and `mlrepro run EXP
--help` prints them.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Union

from .errors import ConfigError

_BOUNDS = ("ge", "gt", "le", "lt")


def opt(
    default: Any,
    source: str,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A Config field with its source ("blog", "paper Table 1", "ours", ...), one line of help and,
    for numbers, its allowed range (checked on every field value, and on each item of a tuple)."""
    if not source or not help:
        raise ValueError("opt(): every field needs a source and a help text")
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    return dataclasses.field(default=default, metadata={"source": source, "help": help, **bounds})


def _range_text(meta: Any) -> str:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return " and ".join(f"{words[k]} {meta[k]:g}" for k in _BOUNDS if k in meta)


def check_ranges(cfg: Any) -> None:
    """Raise ConfigError naming the option when a field's value lies outside its declared range."""
    for f in dataclasses.fields(cfg):
        meta = f.metadata
        if not any(k in meta for k in _BOUNDS):
            continue
        value = getattr(cfg, f.name)
        items = value if isinstance(value, tuple) else (value,)
        for v in items:
            if v is None or isinstance(v, (bool, str)):
                continue
            if (
                ("ge" in meta and not v >= meta["ge"])
                or ("gt" in meta and not v > meta["gt"])
                or ("le" in meta and not v <= meta["le"])
                or ("lt" in meta and not v < meta["lt"])
            ):
                raise ConfigError(
                    f"option --{f.name.replace('_', '-')} must be {_range_text(meta)}, "
                    f"got {value!r}"
                )


class ExperimentConfig:
    """Base of every experiment's frozen Config dataclass: checks each field's declared range, then
    `validate()`, the config's own checks across fields (raise ValueError or ConfigError)."""

    # Old field name -> new one: config.json files of earlier runs (and old flags) still load.
    renamed: ClassVar[dict[str, str]] = {}
    # Field whose default changed -> its default before: a config.json that does not record the
    # field was written before the field existed, and its run used the field's first default (a
    # new field defaults to what runs did without it). Resume and aggregate read it so.
    former_defaults: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        check_ranges(self)
        self.validate()

    def validate(self) -> None:
        """Checks that involve several fields; override in a Config."""


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
        if type(None) in args and (
            value is None or (isinstance(value, str) and value.lower() in ("none", ""))
        ):
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
            return tuple(
                _coerce(key, p.strip() if isinstance(p, str) else p, item) for p in parts if p != ""
            )
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
        if isinstance(value, bool):
            raise bad
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if math.isnan(f):  # NaN passes no range check and poisons everything downstream
            raise bad
        return f
    if tp is str:
        return str(value)
    raise ConfigError(f"option --{key}: unsupported field type {tp!r}")


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def parse_overrides(args: list[str]) -> dict[str, str]:
    """['--lr', '0.1', '--epochs=3', '--no-flag'] →
    {'lr': '0.1', 'epochs': '3', 'flag': 'false'}."""
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


def build_config(
    cls: type,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    what: str = "experiment",
):
    """`cls()` updated by `presets[preset]` then by `overrides` (strings or JSON values)."""
    presets = presets or {}
    types_ = field_types(cls)
    renamed = getattr(cls, "renamed", {})
    overrides = {renamed.get(k, k): v for k, v in (overrides or {}).items()}
    values: dict[str, Any] = {}
    if preset:
        if preset not in presets:
            valid = ", ".join(presets) or "(none)"
            raise ConfigError(f"unknown preset {preset!r} for {what}; valid: {valid}")
        for key, value in presets[preset].items():
            if key not in types_:
                raise ConfigError(
                    f"preset {preset!r} of {what} sets unknown option --{key.replace('_', '-')}"
                )
            values[key] = value
    for key, value in (overrides or {}).items():
        if key not in types_:
            valid = ", ".join("--" + k.replace("_", "-") for k in types_)
            raise ConfigError(
                f"unknown option --{key.replace('_', '-')} for {what}; valid: {valid}"
            )
        values[key] = value
    coerced = {k: _coerce(k, v, types_[k]) for k, v in values.items()}
    try:
        return cls(**coerced)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {e}") from None


@dataclasses.dataclass(frozen=True)
class OptionHelp:
    """What `mlrepro run EXP --help` prints for one Config field."""

    option: str  # --key-name
    type: str  # "int", "one of a, b", "comma-separated ints", ...
    default: Any
    source: str
    help: str
    range: str  # ">= 0", "" when unbounded


def config_help(cls: type) -> list[OptionHelp]:
    """One `OptionHelp` per field of a Config class, in declaration order."""
    types_ = field_types(cls)
    return [
        OptionHelp(
            "--" + f.name.replace("_", "-"),
            _describe(types_[f.name]),
            f.default,
            f.metadata.get("source", ""),
            f.metadata.get("help", ""),
            _range_text(f.metadata),
        )
        for f in dataclasses.fields(cls)
    ]

from dataclasses import dataclass
from typing import Literal

import pytest

from mlrepro.config import ExperimentConfig, build_config, config_help, opt, parse_overrides
from mlrepro.errors import ConfigError


@dataclass(frozen=True)
class Cfg:
    lr: float = 0.1
    epochs: int = 3
    name: str = "x"
    flag: bool = False
    hidden: tuple[int, ...] = (8, 8)
    solver: Literal["gd", "closed_form"] = "gd"
    limit: int | None = None

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")


def test_parse_overrides_forms():
    assert parse_overrides(
        ["--lr", "0.5", "--max-iter=3", "--flag", "--no-other", "--x", "-1"]
    ) == {"lr": "0.5", "max_iter": "3", "flag": "true", "other": "false", "x": "-1"}
    with pytest.raises(ConfigError, match="unexpected argument 'oops'"):
        parse_overrides(["oops"])


def test_build_config_coerces_types_and_applies_preset_then_overrides():
    cfg = build_config(
        Cfg,
        {"quick": {"epochs": 1, "lr": 0.3}},
        "quick",
        {"lr": "1e-3", "hidden": "4,5,6", "flag": "yes", "solver": "closed_form", "limit": "none"},
    )
    assert cfg == Cfg(
        lr=1e-3, epochs=1, hidden=(4, 5, 6), flag=True, solver="closed_form", limit=None
    )
    assert build_config(Cfg, overrides={"epochs": "1e1", "limit": "7"}).epochs == 10
    # JSON values from a config.json round-trip too (lists become tuples).
    assert build_config(Cfg, overrides={"hidden": [1, 2]}).hidden == (1, 2)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"lrr": "1"},
            r"unknown option --lrr for exp; valid: --lr, --epochs, --name, --flag, --hidden",
        ),
        ({"lr": "fast"}, r"option --lr expects float, got 'fast'"),
        ({"epochs": "2.5"}, r"option --epochs expects int, got '2.5'"),
        ({"flag": "maybe"}, r"option --flag expects bool"),
        ({"solver": "sgd"}, r"option --solver expects one of gd, closed_form, got 'sgd'"),
        ({"hidden": "4,x"}, r"option --hidden expects comma-separated ints"),
        ({"epochs": "0"}, r"exp: epochs must be >= 1"),
    ],
)
def test_bad_values_name_the_option_and_what_was_expected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(Cfg, overrides=overrides, what="exp")


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown preset 'fast' for exp; valid: quick"):
        build_config(Cfg, {"quick": {}}, "fast", what="exp")


def test_config_help_lists_every_field():
    rows = config_help(Cfg)
    assert [r.option for r in rows] == [
        "--lr",
        "--epochs",
        "--name",
        "--flag",
        "--hidden",
        "--solver",
        "--limit",
    ]
    assert (rows[0].option, rows[0].type, rows[0].default) == ("--lr", "float", 0.1)


@dataclass(frozen=True)
class Ranged(ExperimentConfig):
    lr: float = opt(0.1, "paper", "the step size", gt=0)
    widths: tuple[int, ...] = opt((8, 8), "ours", "layer widths", ge=1)
    frac: float = opt(0.5, "blog", "a fraction", ge=0, lt=1)
    limit: int | None = opt(None, "ours", "a cap", ge=0)

    renamed = {"lr_max": "lr"}


def test_field_ranges_sources_and_help_come_from_the_field():
    (lr, widths, frac, limit) = config_help(Ranged)
    assert (lr.source, lr.help, lr.range) == ("paper", "the step size", "> 0")
    assert frac.range == ">= 0 and < 1" and limit.range == ">= 0"
    with pytest.raises(ConfigError, match=r"option --lr must be > 0, got -0.1"):
        build_config(Ranged, overrides={"lr": "-0.1"})
    with pytest.raises(ConfigError, match=r"option --widths must be >= 1, got \(8, 0\)"):
        build_config(Ranged, overrides={"widths": "8,0"})
    with pytest.raises(ConfigError, match="option --frac must be >= 0 and < 1, got 1.0"):
        Ranged(frac=1.0)  # direct construction is checked too
    with pytest.raises(ConfigError, match="option --lr expects float, got 'nan'"):
        build_config(Ranged, overrides={"lr": "nan"})
    assert build_config(Ranged, overrides={"limit": "none"}).limit is None
    assert build_config(Ranged, overrides={"lr_max": "0.5"}).lr == 0.5  # an old name still loads
    with pytest.raises(ValueError, match="needs a source and a help text"):
        opt(1, "", "")


def test_a_preset_with_an_unknown_key_is_a_config_error():
    with pytest.raises(ConfigError, match="preset 'bad' of t sets unknown option --nope"):
        build_config(Ranged, {"bad": {"nope": 1}}, "bad", what="t")

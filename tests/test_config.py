from dataclasses import dataclass
from typing import Literal

import pytest

from mlrepro.config import build_config, config_help, parse_overrides
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
    assert parse_overrides(["--lr", "0.5", "--max-iter=3", "--flag", "--no-other", "--x", "-1"]) == {
        "lr": "0.5", "max_iter": "3", "flag": "true", "other": "false", "x": "-1"}
    with pytest.raises(ConfigError, match="unexpected argument 'oops'"):
        parse_overrides(["oops"])


def test_build_config_coerces_types_and_applies_preset_then_overrides():
    cfg = build_config(Cfg, {"quick": {"epochs": 1, "lr": 0.3}}, "quick",
                       {"lr": "1e-3", "hidden": "4,5,6", "flag": "yes", "solver": "closed_form",
                        "limit": "none"})
    assert cfg == Cfg(lr=1e-3, epochs=1, hidden=(4, 5, 6), flag=True, solver="closed_form", limit=None)
    assert build_config(Cfg, overrides={"epochs": "1e1", "limit": "7"}).epochs == 10
    # JSON values from a config.json round-trip too (lists become tuples).
    assert build_config(Cfg, overrides={"hidden": [1, 2]}).hidden == (1, 2)


@pytest.mark.parametrize("overrides,message", [
    ({"lrr": "1"}, r"unknown option --lrr for exp; valid: --lr, --epochs, --name, --flag, --hidden"),
    ({"lr": "fast"}, r"option --lr expects float, got 'fast'"),
    ({"epochs": "2.5"}, r"option --epochs expects int, got '2.5'"),
    ({"flag": "maybe"}, r"option --flag expects bool"),
    ({"solver": "sgd"}, r"option --solver expects one of gd, closed_form, got 'sgd'"),
    ({"hidden": "4,x"}, r"option --hidden expects comma-separated ints"),
    ({"epochs": "0"}, r"exp: epochs must be >= 1"),
])
def test_bad_values_name_the_option_and_what_was_expected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(Cfg, overrides=overrides, what="exp")


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown preset 'fast' for exp; valid: quick"):
        build_config(Cfg, {"quick": {}}, "fast", what="exp")


def test_config_help_lists_every_field():
    rows = config_help(Cfg)
    assert [r[0] for r in rows] == ["--lr", "--epochs", "--name", "--flag", "--hidden", "--solver", "--limit"]
    assert rows[0] == ("--lr", "float", 0.1)

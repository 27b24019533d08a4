"""One module per reproduced result, each ending in `EXPERIMENT = Experiment(...)` (see
`mlrepro.experiment`): its Config, presets, claim, headline metrics and `run(cfg, ctx)`.

Modules are imported on first use. An experiment's name is its module name with dashes.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import ConfigError
from ..experiment import Experiment

# The tour order of `mlrepro list` and `mlrepro demo`; modules not named here follow in
# alphabetical order.
_ORDER = [
    "linreg_line",
    "kmeans_cola",
    "mnist_mlp",
    "mnist_cnn",
    "fashion_mnist_cnn",
    "mnist_keras",
    "superconvergence",
    "dqn_vizdoom_basic",
    "dqn_vizdoom_defend",
]


def _discover() -> dict[str, str]:
    """Every module in this package, found without importing it."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    ordered = [m for m in _ORDER if m in found] + [m for m in found if m not in _ORDER]
    return {m.replace("_", "-"): m for m in ordered}


EXPERIMENTS: dict[str, str] = _discover()


def get_experiment(name: str) -> Experiment:
    """The experiment registered as `name`."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    module = importlib.import_module(f"{__name__}.{EXPERIMENTS[name]}")
    exp = getattr(module, "EXPERIMENT", None)
    if not isinstance(exp, Experiment) or exp.name != name:
        raise TypeError(
            f"{module.__name__} must end with EXPERIMENT = Experiment(name={name!r}, ...)"
        )
    return exp


def all_experiments() -> list[Experiment]:
    """Every registered experiment, in tour order."""
    return [get_experiment(name) for name in EXPERIMENTS]

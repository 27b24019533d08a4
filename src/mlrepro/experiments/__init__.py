"""One module per reproduced result: `Config`, `PRESETS`, `HEADLINE`, `CLAIM` and `run(cfg, ctx)`.

Modules are imported lazily so `mlrepro list` stays fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import ConfigError

EXPERIMENTS: dict[str, str] = {
    "linreg-line": "linreg_line",
    "kmeans-cola": "kmeans_cola",
    "mnist-mlp": "mnist_mlp",
    "mnist-cnn": "mnist_cnn",
    "fashion-mnist-cnn": "fashion_mnist_cnn",
    "mnist-keras": "mnist_keras",
    "superconvergence": "superconvergence",
    "dqn-vizdoom-basic": "dqn_vizdoom_basic",
    "dqn-vizdoom-defend": "dqn_vizdoom_defend",
}


def get_experiment(name: str) -> ModuleType:
    """The experiment module registered as `name`."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{EXPERIMENTS[name]}")


def summary(module: ModuleType) -> str:
    """First line of the experiment's docstring."""
    return (module.__doc__ or "").strip().splitlines()[0]

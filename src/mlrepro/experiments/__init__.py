"""One module per reproduced result: `Config`, `PRESETS`, `HEADLINE`, `CLAIM` and `run(cfg, ctx)`.

Modules are imported lazily so `mlrepro list` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ..errors import ConfigError

# The tour order of `mlrepro list` and `mlrepro demo`; modules not named here follow in
# alphabetical order. An experiment's name is its module name with dashes.
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
    """Every module in this package, found without importing it (keeps `mlrepro list` fast)."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    ordered = [m for m in _ORDER if m in found] + [m for m in found if m not in _ORDER]
    return {m.replace("_", "-"): m for m in ordered}


EXPERIMENTS: dict[str, str] = _discover()


def load_splits(ctx, name: str, *splits: str) -> list:
    """The given splits of a dataset from the run's data folder. A fall-back to the bundled sample
    is noted in the run's metrics, so a result is never mistaken for a full-data one."""
    from ..data import load_dataset

    out = []
    for split in splits:
        ds = load_dataset(name, split, ctx.data_dir)
        if ds.is_sample:
            ctx.note(f"used the bundled {len(ds)}-image {ds.name} {ds.split} sample; "
                     "point --data-dir or MLREPRO_DATA at the full data")
        out.append(ds)
    return out


def get_experiment(name: str) -> ModuleType:
    """The experiment module registered as `name`."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{EXPERIMENTS[name]}")


def summary(module: ModuleType) -> str:
    """First line of the experiment's docstring."""
    return (module.__doc__ or "").strip().splitlines()[0]

"""Hyperparameter search over any experiment's Config, built on Optuna.

`--storage sqlite:///study.db` puts the study in Optuna's RDB storage, so several processes or
machines can work on one study and an interrupted search continues where it stopped.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import field_types
from .io import atomic_write_json
from .errors import ConfigError
from .experiments import get_experiment
from .runner import run_experiment

SAMPLERS = ("random", "grid", "tpe")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # log | float | int | choice
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")

    def grid(self, n: int) -> list:
        """n evenly spaced values (geometric for log) for Optuna's GridSampler."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return sorted({round(v) for v in np.linspace(self.low, self.high, n)})
        space = np.geomspace if self.kind == "log" else np.linspace
        return [float(v) for v in space(self.low, self.high, n)]


def parse_param(text: str) -> Param:
    """'lr=log:1e-4:1', 'dropout=float:0:0.5', 'width=int:16:128', 'opt=choice:sgd,adam'."""
    name, eq, spec = text.partition("=")
    kind, _, rest = spec.partition(":")
    bad = ConfigError(f"--param {text!r}: expected NAME=log:LOW:HIGH, NAME=float:LOW:HIGH, "
                      "NAME=int:LOW:HIGH or NAME=choice:A,B,...")
    if not eq or not name or kind not in ("log", "float", "int", "choice") or not rest:
        raise bad
    name = name.strip().replace("-", "_")
    if kind == "choice":
        return Param(name, kind, choices=tuple(c for c in rest.split(",") if c))
    try:
        low, high = (float(v) for v in rest.split(":"))
    except ValueError:
        raise bad from None
    if not low < high or (kind == "log" and low <= 0):
        raise ConfigError(f"--param {text!r}: need LOW < HIGH" + (" and LOW > 0 for log" if kind == "log" else ""))
    return Param(name, kind, low, high)


def run_search(name: str, params: list[Param], *, trials: int, sampler: str = "tpe",
               storage: str | None = None, study_name: str | None = None, seed: int = 0,
               preset: str | None = None, overrides: dict | None = None,
               out: str | os.PathLike = "runs", device: str = "auto", data_dir: str | None = None,
               verbose: bool = False):
    """Run (or continue) a study of `trials` completed trials; returns the Optuna study."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("search needs Optuna: pip install 'mlrepro[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exp = get_experiment(name)
    valid = field_types(exp.config)
    for p in params:
        if p.name not in valid:
            raise ConfigError(f"--param {p.name}: not an option of {name}; valid: "
                              + ", ".join(k.replace("_", "-") for k in valid))
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler: unknown {sampler!r}; valid: {', '.join(SAMPLERS)}")
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    metric, direction = exp.objective()
    study_name = study_name or f"{name}-{sampler}"
    previous = 0
    if storage:
        try:
            # Opened once here, so a bad URL or an unreachable database is one line, before any trial.
            storage = optuna.storages.RDBStorage(storage)
        except Exception as e:  # noqa: BLE001 - SQLAlchemy and the DB drivers raise many kinds
            raise ConfigError(f"--storage: cannot open {storage!r} ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:200]})") from None
        try:
            previous = len(optuna.load_study(study_name=study_name, storage=storage).trials)
        except KeyError:
            pass
    # A resumed study must not replay the same random stream: offset the seed by the trials so far.
    sampler_seed = seed + previous
    if sampler == "grid":
        per_axis = max(2, round(trials ** (1 / len(params))))
        samp = optuna.samplers.GridSampler({p.name: p.grid(per_axis) for p in params}, seed=sampler_seed)
    elif sampler == "random":
        samp = optuna.samplers.RandomSampler(seed=sampler_seed)
    else:
        samp = optuna.samplers.TPESampler(seed=sampler_seed)
    study = optuna.create_study(study_name=study_name, storage=storage,
                                sampler=samp, direction=direction, load_if_exists=True)
    root = Path(out) / "search" / study.study_name

    def objective(trial):
        values = {p.name: p.suggest(trial) for p in params}
        run_dir, metrics = run_experiment(name, preset=preset, overrides={**(overrides or {}), **values},
                                          seed=seed, out=root, device=device, data_dir=data_dir,
                                          verbose=verbose)
        trial.set_user_attr("run_dir", str(run_dir.path))
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            raise optuna.TrialPruned(f"{metric} is {value}")
        return value

    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if done < trials:
        study.optimize(objective, n_trials=trials - done)
    atomic_write_json(root / "study.json", {
        "experiment": name, "sampler": sampler, "metric": metric, "direction": direction,
        "best_value": study.best_value, "best_params": study.best_params,
        "trials": [{"number": t.number, "params": t.params, "value": t.value, "state": t.state.name,
                    "run_dir": t.user_attrs.get("run_dir")} for t in study.trials]})
    return study

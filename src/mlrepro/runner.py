"""Runs experiments: one seed into a run folder, several seeds into `results/EXP.json`."""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import build_config
from .engine import Checkpoint, History, Learner, ProgressBar, RunDir, RunLogger
from .engine.rundir import atomic_write_json
from .engine.runtime import hardware_info, init_distributed, resolve_device, seed_everything
from .errors import ConfigError
from .experiments import get_experiment


@dataclass
class RunContext:
    """What an experiment's `run(cfg, ctx)` gets besides its config."""

    run_dir: RunDir
    seed: int
    device: torch.device
    data_dir: str | None = None
    resume: bool = False
    verbose: bool = True
    config: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rank: int = 0  # under torchrun: this process's rank among world_size (data shard, who writes)
    world_size: int = 1
    resume_from: RunDir | None = None  # where the checkpoint is (default run_dir)

    @property
    def is_main(self) -> bool:
        """Only the main process writes the run folder, checkpoints and results."""
        return self.rank == 0

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    def note(self, msg: str) -> None:
        """A remark that belongs in metrics.json (e.g. 'used the bundled MNIST sample')."""
        if msg not in self.notes:  # printed once at the end of the run (see cli.py)
            self.notes.append(msg)

    def fit(self, learner: Learner, train_data, epochs: int, *, val_data=None,
            callbacks=(), checkpoint_every: int = 1) -> History:
        """`learner.fit` with the run folder's history, checkpoints and progress bar; resumes if asked."""
        if self.resume:
            source = self.resume_from or self.run_dir
            state = source.load_checkpoint(map_location=learner.device)
            if state is not None:
                learner.load_state_dict(state)
                self.log(f"resumed from {source.checkpoint_path} after epoch {learner.epoch}")
        cbs = []
        if self.is_main:
            cbs += [RunLogger(self.run_dir), Checkpoint(self.run_dir, self.config, every=checkpoint_every)]
        if self.verbose:
            cbs.append(ProgressBar())
        return learner.fit(train_data, epochs, val_data=val_data, callbacks=[*cbs, *callbacks])


def _command(argv: list[str] | None) -> str:
    return "mlrepro " + shlex.join(argv) if argv is not None else shlex.join(sys.argv)


def run_experiment(name: str | None = None, *, overrides: dict[str, Any] | None = None,
                   preset: str | None = None, seed: int = 0, out: str | os.PathLike = "runs",
                   device: str = "auto", data_dir: str | None = None, resume: str | None = None,
                   verbose: bool = True, argv: list[str] | None = None) -> tuple[RunDir, dict]:
    """Run one seed of an experiment (or resume a run folder); returns (run_dir, metrics).

    Under torchrun every process runs this; processes other than rank 0 keep their (identical)
    records in a temporary folder that is deleted at the end.
    """
    rank, world, local_rank = init_distributed()
    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
    if resume:
        run_dir = RunDir(resume)
        if not (run_dir.path / "config.json").exists():
            raise ConfigError(f"--resume: {resume} is not a run folder (no config.json)")
        saved = run_dir.read_config()
        if name and name != saved["experiment"]:
            raise ConfigError(f"--resume: {resume} is a run of {saved['experiment']}, not {name}")
        name, seed, preset = saved["experiment"], saved["seed"], saved.get("preset")
        data_dir = data_dir or saved.get("data_dir")  # the same data as the interrupted run
        exp = get_experiment(name)
        cfg = build_config(exp.Config, overrides=saved["config"], what=name)
        record = saved
    else:
        if not name:
            raise ConfigError("run: name an experiment (see `mlrepro list`) or give --resume RUN_DIR")
        exp = get_experiment(name)
        cfg = build_config(exp.Config, exp.PRESETS, preset, overrides, what=name)
        run_dir = RunDir.new(out, name, seed) if rank == 0 else None
        record = {
            "experiment": name, "preset": preset, "seed": seed, "config": dataclasses.asdict(cfg),
            "command": _command(argv), "data_dir": data_dir, "mlrepro": __version__,
            "hardware": hardware_info(dev), **({"processes": world} if world > 1 else {}),
        }
    resume_from = None
    if rank != 0:
        resume_from, run_dir = (run_dir if resume else None), RunDir(tempfile.mkdtemp(prefix="mlrepro-rank"))
        verbose = False
    if not resume or rank != 0:
        run_dir.write_config(record)
        record = run_dir.read_config()  # plain JSON types only, as the checkpoint must hold
    seed_everything(seed)
    ctx = RunContext(run_dir, seed, dev, data_dir, resume=bool(resume), verbose=verbose,
                     config=record, rank=rank, world_size=world, resume_from=resume_from)
    start = time.perf_counter()
    try:
        metrics = dict(exp.run(cfg, ctx))
    finally:
        if rank != 0:
            shutil.rmtree(run_dir.path, ignore_errors=True)
    metrics["wall_time_s"] = time.perf_counter() - start
    if ctx.notes:
        metrics["notes"] = ctx.notes
    if rank == 0:
        run_dir.write_metrics(metrics)
    return run_dir, metrics


def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def aggregate(name: str, preset: str | None, runs: list[tuple[RunDir, dict]], *,
              command: str, wall_time_s: float) -> dict:
    """Mean ± std over seeds of every numeric metric, with the context needed to trust it."""
    exp = get_experiment(name)
    def is_num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    # Headline keys are always reported; a metric that is null in some runs (e.g. "epochs to reach a
    # target" when the target was not reached) is averaged over the runs that have it.
    keys = list(getattr(exp, "HEADLINE", ())) + [k for _, m in runs for k, v in m.items() if is_num(v)]
    metrics = {}
    for k in dict.fromkeys(keys):
        values = [float(m[k]) for _, m in runs if is_num(m.get(k))]
        metrics[k] = _mean_std(values) if values else {"mean": None, "std": None, "values": []}
        metrics[k]["missing"] = len(runs) - len(values)
    notes = sorted({n for _, m in runs for n in m.get("notes", [])})
    config = runs[0][0].read_config()
    return {
        "experiment": name, "preset": preset or "default", "claim": getattr(exp, "CLAIM", ""),
        "headline": list(getattr(exp, "HEADLINE", ())), "n": len(runs),
        "seeds": [rd.read_config()["seed"] for rd, _ in runs], "metrics": metrics,
        "config": config["config"], "hardware": config["hardware"], "torch": str(torch.__version__),
        "wall_time_s": wall_time_s, "command": command, "date": time.strftime("%Y-%m-%d"),
        "run_dirs": [str(rd.path) for rd, _ in runs], "notes": notes,
    }


def results_path(results_dir: str | os.PathLike, name: str, preset: str | None) -> Path:
    suffix = "" if preset in (None, "default") else f".{preset}"
    return Path(results_dir) / f"{name}{suffix}.json"


def run_seeds(name: str, seeds: list[int], *, results_dir: str | os.PathLike = "results",
              preset: str | None = None, argv: list[str] | None = None, **kw) -> tuple[Path, dict]:
    """Run `name` once per seed and write the mean ± std summary to results/NAME[.PRESET].json."""
    start = time.perf_counter()
    runs = [run_experiment(name, seed=s, preset=preset, argv=argv, **kw) for s in seeds]
    path = results_path(results_dir, name, preset)
    if init_distributed()[0] != 0:
        return path, {}  # under torchrun only rank 0 writes the summary
    summary = aggregate(name, preset, runs, command=_command(argv),
                        wall_time_s=time.perf_counter() - start)
    atomic_write_json(path, summary)
    return path, summary


def aggregate_runs(run_dirs: list[str | os.PathLike], *, results_dir: str | os.PathLike = "results",
                   argv: list[str] | None = None) -> tuple[Path, dict]:
    """The `run_seeds` summary from finished run folders (e.g. seeds run as parallel processes).

    The runs must be one experiment, preset and config apart from the seed, each seed once.
    `wall_time_s` is the sum of the runs' own wall times (they may have run side by side).
    """
    if not run_dirs:
        raise ConfigError("aggregate: give at least one run folder")
    runs, records = [], []
    for d in run_dirs:
        rd = RunDir(d)
        if not (rd.path / "config.json").exists():
            raise ConfigError(f"aggregate: {d} is not a run folder (no config.json)")
        if not (rd.path / "metrics.json").exists():
            raise ConfigError(f"aggregate: {d} has not finished (no metrics.json); "
                              f"continue it with `mlrepro run --resume {d}`")
        records.append(rd.read_config())
        runs.append((rd, rd.read_metrics()))
    first = records[0]
    for d, rec in zip(run_dirs[1:], records[1:]):
        for key in ("experiment", "preset", "config"):
            if rec.get(key) != first.get(key):
                raise ConfigError(f"aggregate: {d} differs from {run_dirs[0]} in its {key} "
                                  f"({rec.get(key)!r} vs {first.get(key)!r}); aggregate like runs only")
    seeds = [rec["seed"] for rec in records]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"aggregate: seeds repeat ({seeds}); give each seed's run folder once")
    name, preset = first["experiment"], first.get("preset")
    summary = aggregate(name, preset, runs, command=_command(argv),
                        wall_time_s=sum(float(m.get("wall_time_s", 0.0)) for _, m in runs))
    summary["run_commands"] = [rec.get("command") for rec in records]
    path = results_path(results_dir, name, preset)
    atomic_write_json(path, summary)
    return path, summary


def lr_find_experiment(name: str, *, overrides: dict[str, Any] | None = None, preset: str | None = None,
                       seed: int = 0, out: str | os.PathLike = "runs", device: str = "auto",
                       data_dir: str | None = None, verbose: bool = True, argv: list[str] | None = None,
                       **sweep) -> tuple[RunDir, Any]:
    """The LR range test on an experiment's model and data; writes plots/lr_find.png and lr_find.json."""
    from .engine.lr_finder import lr_find

    exp = get_experiment(name)
    if not hasattr(exp, "setup"):
        raise ConfigError(f"lr-find: experiment {name} does not train a network with the engine")
    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    cfg = build_config(exp.Config, exp.PRESETS, preset, overrides, what=name)
    run_dir = RunDir.new(Path(out) / "lr-find", name, seed)
    run_dir.write_config({"experiment": name, "preset": preset, "seed": seed, "task": "lr-find",
                          "sweep": sweep, "config": dataclasses.asdict(cfg), "command": _command(argv),
                          "hardware": hardware_info(dev)})
    seed_everything(seed)
    ctx = RunContext(run_dir, seed, dev, data_dir, verbose=verbose)
    s = exp.setup(cfg, ctx)
    try:
        result = lr_find(s.learner, s.train, **sweep)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    result.plot(run_dir.plot_path("lr_find.png"), f"LR range test: {name}")
    atomic_write_json(run_dir.path / "lr_find.json", {"lrs": result.lrs, "losses": result.losses,
                                                      "raw_losses": result.raw_losses})
    run_dir.write_metrics({"suggestion": result.suggestion, "default": result.default,
                           "suggestions": result.suggestions, "stopped_early": result.stopped_early,
                           "steps": len(result.lrs)})
    return run_dir, result

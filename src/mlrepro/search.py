"""Hyperparameter search over any experiment's Config, built on Optuna.

`--storage sqlite:///study.db` puts the study in Optuna's RDB storage, so several processes or
machines can work on one study and an interrupted search continues where it stopped.
`--workers N` starts N processes on one study (in RUNS/search/STUDY/study.db unless `--storage`
names one); each trial is a run folder, RUNS/search/STUDY/trial-NNNN/, and with `--track mlflow`
an MLflow child run of the search's parent run. A trial interrupted with its run folder
checkpointed is resumed, with the same parameters, when the search continues.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import field_types
from .errors import ConfigError, MlreproError, RunInterrupted
from .experiments import get_experiment
from .io import atomic_write_json
from .runner import check_writable, run_experiment
from .tracking import Tracker, guarded, tracker_from_spec

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
    bad = ConfigError(
        f"--param {text!r}: expected NAME=log:LOW:HIGH, NAME=float:LOW:HIGH, "
        "NAME=int:LOW:HIGH or NAME=choice:A,B,..."
    )
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
        raise ConfigError(
            f"--param {text!r}: need LOW < HIGH" + (" and LOW > 0 for log" if kind == "log" else "")
        )
    return Param(name, kind, low, high)


def open_storage(url: str, option: str = "--storage"):
    """Optuna's RDB storage at `url`, opened once here so that a bad URL or an unreachable database
    is one line before any trial; SQLite waits for a lock (several workers) instead of failing."""
    import optuna

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as e:  # noqa: BLE001 - SQLAlchemy and the DB drivers raise many kinds
        raise ConfigError(
            f"{option}: cannot open {url!r} ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
        ) from None


def _sampler(kind: str, params: list[Param], trials: int, seed: int, parallel: bool):
    import optuna

    if kind == "grid":
        per_axis = max(2, round(trials ** (1 / len(params))))
        return optuna.samplers.GridSampler({p.name: p.grid(per_axis) for p in params}, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: parallel workers see running trials as bad, so they spread out.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)


def _fresh(path: Path) -> Path:
    """`path`, or path-2, path-3… when it exists (an in-memory study numbers its trials from 0)."""
    out, i = path, 1
    while out.exists():
        i += 1
        out = path.with_name(f"{path.name}-{i}")
    return out


def _enqueue_interrupted(study) -> int:
    """Queue again, with the same parameters, each failed trial whose run folder was checkpointed
    but did not finish (Ctrl-C, a killed worker): the new trial resumes that folder."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    taken = {t.user_attrs.get("resumes") for t in trials}
    n = 0
    for t in trials:
        run = t.user_attrs.get("run_dir")
        if t.state != TrialState.FAIL or not run or t.number in taken:
            continue
        folder = Path(run)
        if (
            (folder / "config.json").is_file()
            and not (folder / "metrics.json").exists()
            and any(folder.glob("checkpoint*.pt"))
        ):
            study.enqueue_trial(t.params, user_attrs={"resumes": t.number, "resume_dir": run})
            n += 1
    return n


def _optimize(study, job: dict, n_trials: int, track: Tracker | None) -> None:
    """Run `n_trials` trials of `study` in this process, each into its own run folder."""
    import optuna

    root = Path(job["root"])
    how = (
        f"run the same command again to continue the search in {root}"
        if job["storage"]
        else "this search kept no study to continue (--storage or --workers keeps one)"
    )

    def objective(trial):
        values = {p.name: p.suggest(trial) for p in job["params"]}
        trial.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")
        common = {
            "device": job["device"],
            "data_dir": job["data_dir"],
            "verbose": job["verbose"],
            "track": track,
            "how_to_continue": how,
        }
        resume = trial.user_attrs.get("resume_dir")
        if resume and not (Path(resume) / "metrics.json").exists():
            trial.set_user_attr("run_dir", resume)
            _, metrics = run_experiment(resume=resume, **common)
        else:
            path = _fresh(root / f"trial-{trial.number:04d}")
            trial.set_user_attr("run_dir", str(path.absolute()))
            _, metrics = run_experiment(
                job["name"],
                preset=job["preset"],
                overrides={**job["overrides"], **values},
                seed=job["seed"],
                run_path=path,
                **common,
            )
        value = metrics.get(job["metric"])
        if value is None or not math.isfinite(value):
            raise optuna.TrialPruned(f"{job['metric']} is {value}")
        return value

    # Processes on other machines work on the same study: stop once it has its trials done or
    # under way (each process also runs at most its share here).
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    study.optimize(
        objective,
        n_trials=n_trials,
        callbacks=[optuna.study.MaxTrialsCallback(job["trials"], states=states)],
    )


def _worker(conn, job: dict, n_trials: int, index: int) -> None:
    """One `--workers` process: its share of the trials, on the study in RDB storage."""
    import optuna
    import torch

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(job["threads"])
    try:
        track = None
        if job["track"] is not None:
            track = guarded(tracker_from_spec(job["track"]))
            track.start_group(job["root"], "", {}, owner=False)  # the launcher's parent run
        seed = job["seed"] + job["previous"] + 1_000_003 * index
        study = optuna.load_study(
            study_name=job["study"],
            storage=open_storage(job["storage"]),
            sampler=_sampler(job["sampler"], job["params"], job["trials"], seed, parallel=True),
        )
        _optimize(study, job, n_trials, track)
        conn.send(("ok", None))
    except KeyboardInterrupt:
        conn.send(("interrupted", None))
    except MlreproError as e:
        conn.send(("error", e))
    except Exception as e:  # noqa: BLE001 - reported by the launcher as one line
        conn.send(("error", MlreproError(f"search worker {index}: {type(e).__name__}: {e}")))
    finally:
        conn.close()


def _run_workers(job: dict, todo: int, workers: int) -> None:
    """Start `workers` processes on the study, `todo` trials shared between them; wait for all.
    Ctrl-C stops them all (the search continues when the command is run again)."""
    ctx = multiprocessing.get_context("spawn")  # no forked torch or SQLite state
    shares = [todo // workers + (i < todo % workers) for i in range(workers)]
    procs = []
    for i, n in enumerate(shares):
        if n == 0:
            continue
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_worker, args=(send, job, n, i), name=f"mlrepro-search-{i}")
        p.start()
        send.close()
        procs.append((p, recv))
    results = []
    try:
        for p, recv in procs:
            try:
                results.append(recv.recv())
            except EOFError:  # the process died without a word (killed, out of memory)
                p.join()
                results.append(
                    (
                        "error",
                        MlreproError(
                            f"search worker {p.name} ended with exit "
                            f"code {p.exitcode} before reporting"
                        ),
                    )
                )
            p.join()
    except KeyboardInterrupt:
        results.append(("interrupted", None))
    finally:
        deadline = time.monotonic() + 30
        for p, _ in procs:  # a Ctrl-C reaches the workers too; give them time to stop cleanly
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join()
    if any(kind == "interrupted" for kind, _ in results):
        raise RunInterrupted(f"run the same command again to continue the search in {job['root']}")
    errors = [e for kind, e in results if kind == "error"]
    if errors:
        raise errors[0]


def run_search(
    name: str,
    params: list[Param],
    *,
    trials: int,
    sampler: str = "tpe",
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    preset: str | None = None,
    overrides: dict | None = None,
    out: str | os.PathLike = "runs",
    device: str = "auto",
    data_dir: str | None = None,
    verbose: bool = False,
    workers: int = 1,
    threads: int | None = None,
    track: Tracker | None = None,
):
    """Run (or continue) a study until it has `trials` completed trials; returns the Optuna study.

    `workers` > 1 runs the trials in that many processes on one study in RDB storage (`storage`, by
    default RUNS/search/STUDY/study.db), each process with `threads` torch threads (default: the
    CPUs shared out). `track` (a `tracking.Tracker`) makes the search a parent run and each trial
    a child run.
    """
    try:
        import optuna
    except ImportError:
        raise ConfigError("search needs Optuna: pip install 'mlrepro[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures reach the user as one line
    exp = get_experiment(name)
    valid = field_types(exp.config)
    for p in params:
        if p.name not in valid:
            raise ConfigError(
                f"--param {p.name}: not an option of {name}; valid: "
                + ", ".join(k.replace("_", "-") for k in valid)
            )
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler: unknown {sampler!r}; valid: {', '.join(SAMPLERS)}")
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    metric, direction = exp.objective()
    study_name = study_name or f"{name}-{sampler}"
    root = check_writable(Path(out) / "search" / study_name, "--out")
    if workers > 1 and not storage:
        root.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(root / 'study.db').as_posix()}"
    url, previous = storage, 0
    if storage:
        storage = open_storage(storage)
        with contextlib.suppress(KeyError):  # a new study
            previous = len(optuna.load_study(study_name=study_name, storage=storage).trials)
    # A resumed study must not replay the same random stream: offset the seed by the trials so far.
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction=direction,
        sampler=_sampler(sampler, params, trials, seed + previous, parallel=workers > 1),
        load_if_exists=True,
    )
    complete = optuna.trial.TrialState.COMPLETE
    todo = trials - sum(t.state == complete for t in study.get_trials(deepcopy=False))
    tracker = guarded(track)
    if tracker is not None and todo > 0:
        root.mkdir(parents=True, exist_ok=True)
        tracker.start_group(
            root,
            f"search {study_name}",
            {
                "experiment": name,
                "preset": preset,
                "group": "search",
                "config": {
                    "params": {p.name: p.kind for p in params},
                    "sampler": sampler,
                    "trials": trials,
                    "workers": workers,
                },
            },
        )
    job = {
        "name": name,
        "params": params,
        "preset": preset,
        "overrides": dict(overrides or {}),
        "seed": seed,
        "device": device,
        "data_dir": data_dir,
        "verbose": verbose,
        "metric": metric,
        "root": str(root),
        "study": study_name,
        "sampler": sampler,
        "trials": trials,
        "previous": previous,
        "storage": url,
        "track": tracker.spec() if tracker else None,
        "threads": threads or max(1, (os.cpu_count() or 1) // workers),
    }
    try:
        if todo > 0:
            if storage is not None:
                _enqueue_interrupted(study)
            if workers == 1:
                _optimize(study, job, todo, tracker)
            else:
                _run_workers(job, todo, workers)
    except BaseException as e:
        if tracker is not None and todo > 0:
            tracker.end_group(status="KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    trials_done = study.get_trials(deepcopy=False)
    best = study.best_trial if any(t.state == complete for t in trials_done) else None
    summary = {
        "experiment": name,
        "sampler": sampler,
        "metric": metric,
        "direction": direction,
        "best_value": best.value if best else None,
        "best_params": best.params if best else {},
        "best_run_dir": best.user_attrs.get("run_dir") if best else None,
        "workers": workers,
        "trials": [
            {
                "number": t.number,
                "params": t.params,
                "value": t.value,
                "state": t.state.name,
                "run_dir": t.user_attrs.get("run_dir"),
            }
            for t in trials_done
        ],
    }
    atomic_write_json(root / "study.json", summary)
    if tracker is not None and todo > 0:
        tracker.end_group({**summary, "path": str(root / "study.json")})
    return study

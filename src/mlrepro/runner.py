"""Runs experiments: one seed into a run folder, several seeds into a resumable sweep folder.

The evidence rules live here. A run folder exists only once its config validated, and a start that
fails before anything was trained leaves nothing behind. A run records the data folder it was given
and what it read (format, files, checksums, sample or not); `--resume` reads the same data or stops.
A finished run's metrics are never rewritten. A sweep's summary is written next to its runs; it
becomes a results file only where a results folder is named, never from the bundled samples, and
never over an existing results file without `force`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .engine import RunDir
from .engine.runtime import hardware_info, init_distributed, resolve_device, seed_everything
from .errors import ConfigError, DataError, RunInterrupted
from .experiment import Experiment, RunContext, content_of
from .experiments import get_experiment
from .io import atomic_write_json, to_json
from .tracking import Tracker, guarded, tracker_for_resume

SWEEP = "sweep.json"
SUMMARY = "summary.json"


def _command(argv: list[str] | None) -> str:
    return "mlrepro " + shlex.join(argv) if argv is not None else shlex.join(sys.argv)


# --- paths: checked before anything is trained, created only when needed ---


# What an output file of each kind starts with (a file that exists is replaced only if it is one).
_LOOKS_LIKE: dict[str, tuple[str, Callable[[Path, bytes], bool]]] = {
    "png": ("a PNG image", lambda p, head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    "gif": ("a GIF", lambda p, head: head[:6] in (b"GIF87a", b"GIF89a")),
    "onnx": ("an .onnx model", lambda p, head: p.suffix == ".onnx"),
    "labels": (
        "a file of cluster labels (one integer a line)",
        lambda p, head: (
            all(line.strip().lstrip(b"-").isdigit() for line in head.split(b"\n")[:-1])
            and bool(head)
        ),
    ),
}


def check_replaceable(path: str | os.PathLike, option: str, kind: str) -> None:
    """ConfigError when `path` is an existing file that is not an output of this `kind` ("png",
    "gif", "onnx", "labels"): an output option never replaces, say, a data file named by mistake.
    An earlier output of the same kind is replaced (a plot drawn again). Reads 64 KiB at most."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return
    what, looks_like = _LOOKS_LIKE[kind]
    with open(p, "rb") as f:
        head = f.read(1 << 16)
    if not looks_like(p, head):
        raise ConfigError(
            f"{option}: {path} exists and is not {what}; not replacing it "
            "(delete it or name another file)"
        )


def check_writable(path: str | os.PathLike, option: str) -> Path:
    """`path` as a folder that exists and is writable, or could be created; ConfigError naming the
    option otherwise. Creates nothing."""
    p = Path(path).expanduser().absolute()
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == p else f"lies under the file {probe}"
        raise ConfigError(f"{option}: {path} {what}; expected a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}: cannot write to {probe} (permission denied)")
    return p


def open_run_dir(path: str | os.PathLike, option: str) -> RunDir:
    """An existing run folder (one with config.json); ConfigError otherwise. Creates nothing."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{option}: {path} does not exist")
    if not p.is_dir():
        raise ConfigError(f"{option}: {path} is a file; expected a run folder")
    if not (p / "config.json").is_file():
        raise ConfigError(f"{option}: {path} is not a run folder (no config.json)")
    return RunDir(p)


def device_option(name: str) -> torch.device:
    """The device a `--device` value names; ConfigError naming the option when it can't be used."""
    try:
        return resolve_device(name)
    except ValueError as e:
        raise ConfigError(f"--device: {e}") from None


def named_data_dir(data_dir: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """(the data folder the user named, where it was named): the argument, else $MLREPRO_DATA."""
    if data_dir is not None:
        return str(Path(data_dir).expanduser().absolute()), "--data-dir"
    env = os.environ.get("MLREPRO_DATA") or None
    if env is not None:
        return str(Path(env).expanduser().absolute()), "MLREPRO_DATA"
    return None, None


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.__class__.__name__}: {e})") from None


def used_sample(record: dict, metrics: dict | None = None) -> bool:
    """Whether a run read any bundled sample (its recorded provenance, or an older run's note)."""
    data = record.get("data") or {}
    if any(bool(p.get("sample")) for p in data.values() if isinstance(p, dict)):
        return True
    return any("bundled" in n for n in (metrics or {}).get("notes", []))


# --- one run ---


def first_missing(path: str | os.PathLike) -> Path | None:
    """The topmost folder of `path` that does not exist yet (what creating it would make), or
    None."""
    p, top = Path(path).absolute(), None
    while not p.exists():
        top, p = p, p.parent
    return top


@contextlib.contextmanager
def _started(run_dir: RunDir, made: Path | None, how_to_continue: str) -> Iterator[None]:
    """Remove what a failed start made (`made`: the topmost folder it created) while nothing was
    trained yet; on Ctrl-C, say how to continue."""
    try:
        yield
    except BaseException as e:
        kept = bool(run_dir.checkpoints()) or (run_dir.path / "metrics.json").exists()
        if made is not None and not kept:
            shutil.rmtree(made, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt) and not isinstance(e, RunInterrupted):
            raise RunInterrupted(
                how_to_continue if kept else "nothing was trained yet, so nothing was kept"
            ) from None
        raise


def run_experiment(
    name: str | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    preset: str | None = None,
    seed: int = 0,
    out: str | os.PathLike = "runs",
    device: str = "auto",
    data_dir: str | None = None,
    resume: str | None = None,
    verbose: bool = True,
    argv: list[str] | None = None,
    track: Tracker | None = None,
    run_path: str | os.PathLike | None = None,
    full_data_only: bool = False,
    how_to_continue: str | None = None,
    keep_checkpoints: str = "last",
) -> tuple[RunDir, dict]:
    """Run one seed of an experiment (or resume a run folder); returns (run_dir, metrics).

    `run_path` fixes the run folder (a sweep's s<seed>/) instead of a new timestamped one;
    `full_data_only` refuses the bundled samples (runs that will become a results row).
    `keep_checkpoints`: "last" keeps one checkpoint per stage, slimmed to the model once the run has
    finished; "all" also keeps every epoch's full checkpoint.
    `track` (TensorBoard, MLflow: `tracking.make_tracker`) watches the run; a resumed run continues
    the trackers its folder names unless `track` is given.
    Under torchrun every process runs this; processes other than rank 0 keep their (identical)
    records in a temporary folder that is deleted at the end.
    """
    rank, world, local_rank = init_distributed()
    dev = device_option(device)
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if keep_checkpoints not in ("last", "all"):
        raise ConfigError(f"--keep-checkpoints must be last or all, got {keep_checkpoints!r}")
    made = None
    if resume:
        run_dir = open_run_dir(resume, "--resume")
        saved = run_dir.read_config()
        if name and name != saved.get("experiment"):
            raise ConfigError(
                f"--resume: {resume} is a run of {saved.get('experiment')}, not {name}"
            )
        if (run_dir.path / "metrics.json").exists():
            raise ConfigError(
                f"--resume: {resume} has finished (metrics.json exists); its metrics "
                "are evidence and are not rewritten"
            )
        name, seed, preset = saved["experiment"], saved["seed"], saved.get("preset")
        exp = get_experiment(name)
        exp.check_requirements()
        cfg = exp.recorded_config(saved["config"])
        # The same data as the interrupted run: its folder (or none), whatever the shell says now;
        # an explicit --data-dir may point at a moved copy (checked file by file on loading).
        if data_dir is None:
            data_dir = saved.get("data_dir")
            if data_dir is None and os.environ.get("MLREPRO_DATA"):
                raise ConfigError(
                    f"--resume: {resume} ran without a data folder, but MLREPRO_DATA "
                    "is set now; unset it to resume on the same data"
                )
        else:
            data_dir = str(Path(data_dir).expanduser().absolute())
        record = saved
    else:
        if not name:
            raise ConfigError(
                "run: name an experiment (see `mlrepro list`) or give --resume RUN_DIR"
            )
        exp = get_experiment(name)
        exp.check_requirements()
        cfg = exp.make_config(preset, overrides)
        data_dir, named_by = named_data_dir(data_dir)
        if data_dir is not None and not Path(data_dir).is_dir():
            raise ConfigError(f"{named_by}: {data_dir} is not a folder")
        if rank == 0:
            if run_path is not None:
                check_writable(Path(run_path).parent, "--out")
                made = first_missing(run_path)
                run_dir = RunDir.create(run_path)
            else:
                check_writable(out, "--out")
                made = first_missing(Path(out) / name)
                run_dir = RunDir.new(out, name, seed, tag=task_tag(exp, cfg))
                made = made or run_dir.path
        record = {
            "experiment": name,
            "preset": preset,
            "seed": seed,
            "config": dataclasses.asdict(cfg),
            "command": _command(argv),
            "data_dir": data_dir,
            "data_dir_from": named_by,
            "mlrepro": __version__,
            "hardware": hardware_info(dev),
            **({"processes": world} if world > 1 else {}),
        }
    if resume and track is None:
        track = tracker_for_resume(run_dir.path)  # checked (the store opens) before training
    tracker = guarded(track) if rank == 0 else None
    resume_from = None
    if rank != 0:
        resume_from = run_dir if resume else None
        run_dir = RunDir(tempfile.mkdtemp(prefix="mlrepro-rank"))
        verbose = False
    how = how_to_continue or f"continue with `mlrepro run --resume {run_dir.path}`"
    with _started(run_dir, made, how):
        if not resume or rank != 0:
            run_dir.write_config(record)
            record = run_dir.read_config()  # plain JSON types only, as the checkpoint must hold
        seed_everything(seed)
        ctx = RunContext(
            run_dir,
            seed,
            dev,
            data_dir,
            resume=bool(resume),
            verbose=verbose,
            config=record,
            rank=rank,
            world_size=world,
            resume_from=resume_from,
            full_data_only=full_data_only,
            keep_checkpoints=keep_checkpoints == "all",
        )
        if tracker is not None:
            ctx.tracker = tracker
            tracker.start(run_dir.path, record, resume=bool(resume), note=ctx.note)
        start = time.perf_counter()
        try:
            metrics = dict(exp.run(cfg, ctx))
        except BaseException as e:
            if tracker is not None:
                tracker.close("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            if rank != 0:
                shutil.rmtree(run_dir.path, ignore_errors=True)
    metrics["wall_time_s"] = time.perf_counter() - start
    # What stretches wall times: the threads this run used and the machine's load while it ran.
    metrics["threads"] = torch.get_num_threads()
    metrics["load_avg_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if ctx.notes:
        metrics["notes"] = ctx.notes
    metrics["data"] = ctx.config.get("data", {})
    if rank == 0:
        run_dir.write_metrics(metrics)
    if tracker is not None:  # after metrics.json: the evidence is written first
        tracker.finish(metrics, exp.headline)  # the writers work while the checkpoints slim
    if rank == 0 and keep_checkpoints == "last":
        run_dir.slim_checkpoints()
    if tracker is not None:
        tracker.close("FINISHED")
    return run_dir, metrics


# --- several seeds ---


def _mean_std(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def aggregate(
    exp: Experiment,
    preset: str | None,
    runs: list[tuple[RunDir, dict]],
    *,
    command: str,
    wall_time_s: float,
    tag: str | None = None,
) -> dict:
    """Mean ± std over seeds of every numeric metric, with the context needed to trust it."""

    def is_num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    # Headline keys are always reported; a metric that is null in some runs (e.g. "epochs to reach a
    # target" when the target was not reached) is averaged over the runs that have it.
    keys = list(exp.headline) + [k for _, m in runs for k, v in m.items() if is_num(v)]
    metrics = {}
    for k in dict.fromkeys(keys):
        values = [float(m[k]) for _, m in runs if is_num(m.get(k))]
        metrics[k] = _mean_std(values) if values else {"mean": None, "std": None, "values": []}
        metrics[k]["missing"] = len(runs) - len(values)
    notes = sorted({n for _, m in runs for n in m.get("notes", [])})
    records = [rd.read_config() for rd, _ in runs]
    return {
        "experiment": exp.name,
        "preset": preset or "default",
        **({"tag": tag} if tag else {}),
        "claim": exp.claim,
        "headline": list(exp.headline),
        "n": len(runs),
        "seeds": [r["seed"] for r in records],
        "metrics": metrics,
        "config": _with_new_fields(records[0]),
        "hardware": records[0]["hardware"],
        "torch": str(torch.__version__),
        "wall_time_s": wall_time_s,
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "run_dirs": [str(rd.path) for rd, _ in runs],
        "data_dir": records[0].get("data_dir"),
        "data": records[0].get("data", {}),
        "sample": any(used_sample(r, m) for r, (_, m) in zip(records, runs)),
        "notes": notes,
    }


def results_path(
    results_dir: str | os.PathLike, name: str, preset: str | None, tag: str | None = None
) -> Path:
    """RESULTS_DIR/NAME[.TAG][.PRESET].json: `tag` (`Experiment.folder_tag`, e.g. a ViZDoom
    scenario) keeps the results of one experiment on different tasks apart."""
    suffix = "" if preset in (None, "default") else f".{preset}"
    return Path(results_dir) / f"{name}{f'.{tag}' if tag else ''}{suffix}.json"


def task_tag(exp: Experiment, cfg: Any) -> str | None:
    """The task this config runs (`Experiment.folder_tag`, e.g. a ViZDoom scenario), which names
    run folders, sweep folders and results files; None where the experiment has one task."""
    return exp.folder_tag(cfg) if exp.folder_tag else None


def _differences(old: dict, new: dict) -> list[str]:
    """How an existing results file differs from what would replace it (preset, config, data,
    seeds); a file without a data record differs in its data."""
    out = []
    if old.get("preset") != new.get("preset"):
        out.append(f"preset {old.get('preset')!r} vs {new.get('preset')!r}")
    changed = sorted(
        k
        for k in set(old.get("config", {})) | set(new.get("config", {}))
        if old.get("config", {}).get(k) != new.get("config", {}).get(k)
    )
    if changed:
        out.append("config (" + ", ".join(changed[:4]) + ("…" if len(changed) > 4 else "") + ")")
    if "data" not in old:
        out.append("data (the existing file records none)")
    elif "data" in new and content_of(old["data"]) != content_of(new["data"]):
        out.append("data")
    if "seeds" in new and old.get("seeds") != new["seeds"]:
        out.append(f"seeds {old.get('seeds')} vs {new['seeds']}")
    return out


def check_results_target(path: Path, planned: dict, force: bool) -> None:
    """Refuse, before anything runs, to write a results file that cannot be written or that would
    replace existing evidence without `force`."""
    check_writable(path.parent, "--results-dir")
    if path.is_dir():
        raise ConfigError(f"--results-dir: {path} is a folder; expected a results file there")
    if not path.exists() or force:
        return
    old = _read_json(path, "the existing results file")
    diff = _differences(old, planned)
    why = "it differs in " + "; ".join(diff) if diff else "it was measured with the same settings"
    raise ConfigError(
        f"{path} exists ({why}); results are evidence: pass --force to replace it, or "
        "name another --results-dir"
    )


def _write_results(path: Path, summary: dict, force: bool) -> None:
    if summary["sample"]:
        raise DataError(
            f"{path}: not written, the runs used the bundled data samples (results rows "
            "come from the full data only; point --data-dir or MLREPRO_DATA at it)"
        )
    check_results_target(path, summary, force)
    atomic_write_json(path, summary)


def sweep_dir(
    out: str | os.PathLike,
    name: str,
    preset: str | None,
    cfg: Any,
    seeds: list[int],
    data_dir: str | None,
    tag: str | None = None,
) -> Path:
    """The folder of the sweep these settings define: the same command finds it again. `tag`
    (`Experiment.folder_tag`) leads the folder's name: sweep-TAG-PRESET-DIGEST."""
    spec = json.dumps(
        {
            "experiment": name,
            "preset": preset,
            "config": dataclasses.asdict(cfg),
            "seeds": seeds,
            "data_dir": data_dir,
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(spec.encode()).hexdigest()[:10]
    return Path(out) / name / f"sweep-{tag + '-' if tag else ''}{preset or 'default'}-{digest}"


def run_seeds(
    name: str,
    seeds: list[int],
    *,
    results_dir: str | os.PathLike | None = None,
    force: bool = False,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    out: str | os.PathLike = "runs",
    data_dir: str | None = None,
    argv: list[str] | None = None,
    **kw,
) -> tuple[Path, dict]:
    """Run `name` once per seed into a sweep folder and write the mean ± std summary there
    (summary.json), and to RESULTS_DIR/NAME[.TAG][.PRESET].json when `results_dir` is given.

    Running the same sweep again continues it: finished seeds are kept, an interrupted one resumes.
    """
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(
            f"--seeds must be distinct integers >= 0, got {','.join(map(str, seeds))}"
        )
    exp = get_experiment(name)
    exp.check_requirements()
    cfg = exp.make_config(preset, overrides)
    named, _ = named_data_dir(data_dir)
    tag = task_tag(exp, cfg)
    folder = sweep_dir(out, name, preset, cfg, seeds, named, tag=tag)
    command = _command(argv)
    target = results_path(results_dir, name, preset, tag) if results_dir is not None else None
    if target is not None:
        check_results_target(
            target,
            {"preset": preset or "default", "config": dataclasses.asdict(cfg), "seeds": seeds},
            force,
        )
    check_writable(folder, "--out")
    rank = init_distributed()[0]
    made = first_missing(folder)
    if rank == 0 and not (folder / SWEEP).exists():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            folder / SWEEP,
            {
                "experiment": name,
                "preset": preset,
                "seeds": seeds,
                "config": dataclasses.asdict(cfg),
                "data_dir": named,
                "command": command,
            },
        )
    start = time.perf_counter()
    how = f"run the same command again to continue the sweep in {folder}"
    tracker = kw["track"] = guarded(kw.get("track")) if rank == 0 else None
    if tracker is not None:  # an MLflow parent run, continued when the sweep is
        tracker.start_group(
            folder,
            f"{name} {folder.name}",
            {
                "experiment": name,
                "preset": preset,
                "config": dataclasses.asdict(cfg),
                "command": command,
                "group": "sweep",
            },
        )
    runs = []
    try:
        for s in seeds:
            path = folder / f"s{s}"
            if (path / "metrics.json").exists():
                rd = RunDir(path)
                runs.append((rd, rd.read_metrics()))
                print(f"seed {s}: finished earlier ({path})", file=sys.stderr)
            elif (path / "config.json").exists():
                runs.append(
                    run_experiment(
                        resume=str(path),
                        argv=argv,
                        data_dir=data_dir,
                        full_data_only=target is not None,
                        how_to_continue=how,
                        **kw,
                    )
                )
            else:
                runs.append(
                    run_experiment(
                        name,
                        seed=s,
                        preset=preset,
                        overrides=overrides,
                        out=out,
                        data_dir=data_dir,
                        argv=argv,
                        run_path=path,
                        full_data_only=target is not None,
                        how_to_continue=how,
                        **kw,
                    )
                )
    except BaseException as e:
        if tracker is not None:
            tracker.end_group(status="KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        if made is not None and not any(
            folder.glob("s[0-9]*")
        ):  # a failed start: leave nothing behind
            shutil.rmtree(made, ignore_errors=True)
        raise
    if rank != 0:
        return folder / SUMMARY, {}  # under torchrun only rank 0 writes the summary
    summary = aggregate(
        exp, preset, runs, command=command, wall_time_s=time.perf_counter() - start, tag=tag
    )
    summary["sweep_dir"] = str(folder)
    atomic_write_json(folder / SUMMARY, summary)
    if tracker is not None:
        tracker.end_group({**summary, "path": str(folder / SUMMARY)})
    if target is not None:
        _write_results(target, summary, force)
        return target, summary
    return folder / SUMMARY, summary


def _with_new_fields(record: dict) -> Any:
    """A run's config with the fields its experiment gained after the run at their defaults (with
    the run's preset applied), or at their `former_defaults` where a default has changed since,
    and fields renamed since under their new names.

    A field added to a Config defaults to what runs did before it existed (so that results stay
    valid), so a run made before the field and one made after it with that value are like runs.
    Fields the run recorded are kept as recorded, whatever today's default."""
    config = record.get("config")
    if not isinstance(config, dict):
        return config
    try:
        exp = get_experiment(record.get("experiment", "?"))
        base = exp.make_config(record.get("preset"), {})
    except (ConfigError, ValueError, TypeError):
        return config
    renamed = getattr(exp.config, "renamed", {})
    if any(k in renamed for k in config):  # a field renamed since, under its name of today
        config = {renamed.get(k, k): v for k, v in config.items()}
    former = getattr(exp.config, "former_defaults", {})
    full = {**json.loads(to_json(base.__dict__, None)), **former}
    defaults = {k: v for k, v in full.items() if k not in config}
    return {**defaults, **config} if defaults else config


def aggregate_runs(
    run_dirs: list[str | os.PathLike],
    *,
    results_dir: str | os.PathLike = "results",
    force: bool = False,
    argv: list[str] | None = None,
) -> tuple[Path, dict]:
    """The `run --seeds` summary from finished run folders (e.g. seeds run as parallel processes),
    written to RESULTS_DIR/NAME[.TAG][.PRESET].json under the same rules.

    The runs must be one experiment, preset and config apart from the seed, each seed once.
    `wall_time_s` is the sum of the runs' own wall times (they may have run side by side).
    """
    if not run_dirs:
        raise ConfigError("aggregate: give at least one run folder")
    runs, records = [], []
    for d in run_dirs:
        rd = open_run_dir(d, "aggregate")
        if not (rd.path / "metrics.json").exists():
            raise ConfigError(
                f"aggregate: {d} has not finished (no metrics.json); "
                f"continue it with `mlrepro run --resume {d}`"
            )
        records.append(rd.read_config())
        runs.append((rd, rd.read_metrics()))
    first = records[0]
    first_config = _with_new_fields(first)
    for d, rec in zip(run_dirs[1:], records[1:]):
        for key in ("experiment", "preset", "config"):
            mine, theirs = rec.get(key), first.get(key)
            if key == "config":
                mine, theirs = _with_new_fields(rec), first_config
            if mine != theirs:
                raise ConfigError(
                    f"aggregate: {d} differs from {run_dirs[0]} in its {key} "
                    f"({mine!r} vs {theirs!r}); aggregate like runs only"
                )
        if content_of(rec.get("data")) != content_of(first.get("data")):
            raise ConfigError(
                f"aggregate: {d} read other data than {run_dirs[0]}; aggregate like runs only"
            )
    seeds = [rec["seed"] for rec in records]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"aggregate: seeds repeat ({seeds}); give each seed's run folder once")
    exp = get_experiment(first["experiment"])
    tag = task_tag(exp, exp.recorded_config(first["config"]))
    summary = aggregate(
        exp,
        first.get("preset"),
        runs,
        command=_command(argv),
        wall_time_s=sum(float(m.get("wall_time_s", 0.0)) for _, m in runs),
        tag=tag,
    )
    summary["run_commands"] = [rec.get("command") for rec in records]
    path = results_path(results_dir, exp.name, first.get("preset"), tag)
    _write_results(path, summary, force)
    return path, summary


# --- the LR range test on an experiment's setup ---


def lr_find_experiment(
    name: str,
    *,
    overrides: dict[str, Any] | None = None,
    preset: str | None = None,
    seed: int = 0,
    out: str | os.PathLike = "runs",
    device: str = "auto",
    data_dir: str | None = None,
    verbose: bool = True,
    argv: list[str] | None = None,
    **sweep,
) -> tuple[RunDir, Any]:
    """The LR range test on an experiment's model and data; writes plots/lr_find.png and
    lr_find.json."""
    from .engine.lr_finder import lr_find
    from .plotting import plot_lr_find

    exp = get_experiment(name)
    if exp.setup is None:
        raise ConfigError(
            f"lr-find: experiment {name} has no setup (a learner and its data) to sweep"
        )
    dev = device_option(device)
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    cfg = exp.make_config(preset, overrides)
    data_dir, named_by = named_data_dir(data_dir)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"{named_by}: {data_dir} is not a folder")
    check_writable(Path(out) / "lr-find", "--out")
    made = first_missing(Path(out) / "lr-find" / name)
    run_dir = RunDir.new(Path(out) / "lr-find", name, seed)
    made = made or run_dir.path
    record = {
        "experiment": name,
        "preset": preset,
        "seed": seed,
        "task": "lr-find",
        "sweep": sweep,
        "config": dataclasses.asdict(cfg),
        "command": _command(argv),
        "data_dir": data_dir,
        "data_dir_from": named_by,
        "hardware": hardware_info(dev),
    }
    with _started(run_dir, made, "an LR range test is quick: run it again"):
        run_dir.write_config(record)
        seed_everything(seed)
        ctx = RunContext(run_dir, seed, dev, data_dir, verbose=verbose, config=record)
        s = exp.setup(cfg, ctx)
        try:
            result = lr_find(s.learner, s.train, progress=verbose, **sweep)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        plot_lr_find(result, run_dir.plot_path("lr_find.png"), f"LR range test: {name}")
        atomic_write_json(
            run_dir.path / "lr_find.json",
            {"lrs": result.lrs, "losses": result.losses, "raw_losses": result.raw_losses},
        )
        run_dir.write_metrics(
            {
                "suggestion": result.suggestion,
                "default": result.default,
                "suggestions": result.suggestions,
                "stopped_early": result.stopped_early,
                "steps": len(result.lrs),
                "data": ctx.config.get("data", {}),
            }
        )
    return run_dir, result

"""Watch and compare runs in TensorBoard and MLflow.

A `Tracker` receives a run's events from the three places that produce them: a `Learner`'s
callbacks (every step's loss and LR, every epoch's logs), `RunContext.epochs` (a loop of its own,
such as DQN's) and the runner (the run's start, its end-of-run metrics and figures, and the sweep or
search that groups it). The run folder stays the evidence; a tracker is a view of it:

- `TensorBoardTracker`: event files in RUN/tensorboard/ (one sub-folder per stage), per-step
  `step/loss` and `step/lr`, per-epoch `epoch/<key>` at the global step, the headline as hparams and
  plots/*.png as images.
- `MLflowTracker`: the flattened config as params, per-epoch `epoch/<key>` with the epoch as step,
  every end-of-run metric, config.json, metrics.json, history.jsonl and plots/ as artifacts, tags for
  experiment, preset, seed, data provenance and git commit; a sweep or a search is a parent run.

A resumed run continues where it stopped: the MLflow run id is kept in RUN/tracking.json, and
TensorBoard purges the steps after the checkpoint, so no step is logged twice. A tracker that fails
mid-run (`Trackers`) stops with one warning, recorded in the run's notes; the run goes on.

As a library::

    tb = TensorBoardTracker("logs/mlp")
    learner.fit(train, 5, callbacks=[tb])   # or MLflowTracker("sqlite:///mlflow.db", experiment="mlp")
    tb.close()
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .engine import Callback, Learner
from .errors import ConfigError
from .io import atomic_write_json

KINDS = ("tensorboard", "mlflow")
STATE = "tracking.json"  # in a run folder (and a sweep or search folder): what was tracked where
EXTRA = "pip install 'mlrepro[track]'"


# --- what a run is, as params and tags ---


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; tuples and lists as JSON text, other values unchanged."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(list(value))
        else:
            out[name] = value
    return out


def numbers(values: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, float]:
    """The finite-or-not real numbers among `values` (bools, None, text and nesting left out)."""
    out = {}
    for key, value in values.items():
        if key in skip or isinstance(value, bool):
            continue
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


@functools.cache
def git_commit(path: str | os.PathLike | None = None) -> tuple[str, bool] | None:
    """(HEAD, dirty) of the git checkout that tracks `path` (default: this package's source), or None
    where the source is not a checked-out file (an installed wheel) or git is missing."""
    target = Path(path) if path is not None else Path(__file__).with_name("__init__.py")
    where = target if target.is_dir() else target.parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                              timeout=10, check=False)

    try:
        if git("ls-files", "--error-unmatch", "--", str(target)).returncode != 0:
            return None
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        status = git("status", "--porcelain", "--untracked-files=no", "--", str(where))
        return head.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None


def run_tags(record: Mapping[str, Any]) -> dict[str, str]:
    """MLflow tags of a run from its config.json record: experiment, preset, seed, data, code."""
    tags = {"mlrepro.experiment": str(record.get("experiment")),
            "mlrepro.preset": str(record.get("preset") or "default"),
            "mlrepro.seed": str(record.get("seed")),
            "mlrepro.version": str(record.get("mlrepro", ""))}
    if record.get("command"):
        tags["mlflow.source.name"] = str(record["command"])[:5000]
    tags.update(data_tags(record))
    code = git_commit()
    if code is not None:
        tags["mlflow.source.git.commit"] = code[0]
        tags["mlrepro.git_dirty"] = str(code[1]).lower()
    return tags


def data_tags(record: Mapping[str, Any]) -> dict[str, str]:
    """Where a run's data came from (config.json's "data"): the folder, each split's format, and
    whether any bundled sample served."""
    data = record.get("data") or {}
    if not data:
        return {}
    tags = {"mlrepro.data_dir": str(record.get("data_dir") or "bundled samples"),
            "mlrepro.data_sample": str(any(bool(p.get("sample")) for p in data.values()
                                           if isinstance(p, Mapping))).lower()}
    for split, prov in data.items():
        if isinstance(prov, Mapping):
            tags[f"mlrepro.data.{split}.format"] = str(prov.get("format") or prov.get("source"))
    return tags


# --- the interface every tracker implements ---


class Tracker(Callback):
    """A run's events, as a tracker sees them; subclasses override what they record.

    The runner calls `start` and `finish`/`close` (and `start_group`/`end_group` around a sweep or a
    search); `RunContext` feeds `begin_stage`/`log_epoch` from its loops and adds `callback(stage)`
    to a `Learner`'s callbacks. Passed straight to `Learner.fit`, a tracker is that callback.
    """

    kind = ""

    # --- the run ---
    def start(self, run_dir: Path, record: dict, *, resume: bool = False, note=None) -> None:
        """A run starts (or continues, `resume`) in `run_dir`; `record` is its config.json."""

    def begin_stage(self, stage: str | None, step: int) -> None:
        """Training of `stage` (re)starts after `step`: anything logged later is superseded."""

    def log_steps(self, stage: str | None, rows: Sequence[tuple[int, Mapping[str, float]]]) -> None:
        """Per-step values, `(global_step, {"loss": …, "lr": …})`, sent once per epoch."""

    def log_epoch(self, stage: str | None, step: int, row: Mapping[str, Any]) -> None:
        """One epoch's history row (its "epoch" key is the epoch, 1-based); `step` is the global
        step it ended on (the epoch itself in loops without steps)."""

    def finish(self, metrics: Mapping[str, Any], headline: Sequence[str] = ()) -> None:
        """The run's end-of-run metrics (metrics.json), after its figures were drawn."""

    def close(self, status: str = "FINISHED") -> None:
        """The run ends: FINISHED, KILLED (interrupted) or FAILED."""

    # --- a sweep or a search ---
    def start_group(self, folder: Path, name: str, record: Mapping[str, Any], *,
                    owner: bool = True) -> None:
        """Runs that follow belong to the group kept in `folder` (created or continued); only its
        `owner` ends it (search workers join their launcher's group)."""

    def end_group(self, summary: Mapping[str, Any] | None = None, status: str = "FINISHED") -> None:
        """The group ends; `summary` holds its metrics (summary.json, study.json)."""

    # --- state kept in the run folder, and how to rebuild this tracker elsewhere ---
    def state(self) -> dict:
        return {}

    def spec(self) -> dict:
        """Arguments that rebuild this tracker in another process (`tracker_from_spec`)."""
        return {"kind": self.kind}

    # --- as an engine callback ---
    def callback(self, stage: str | None = None) -> Callback:
        """The `Learner` callback that feeds this tracker a stage's steps and epochs."""
        return TrackingCallback(self, stage)

    @functools.cached_property
    def _own_callback(self) -> Callback:
        return self.callback(None)

    def on_fit_begin(self, learner: Learner) -> None:
        self._own_callback.on_fit_begin(learner)

    def on_batch_begin(self, learner: Learner) -> None:
        self._own_callback.on_batch_begin(learner)

    def on_batch_end(self, learner: Learner, logs: dict) -> None:
        self._own_callback.on_batch_end(learner, logs)

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        self._own_callback.on_epoch_end(learner, logs)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.close("FINISHED" if kind is None else
                   "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")


class TrackingCallback(Callback):
    """Feeds a tracker from `Learner.fit`: each step's loss and LR, kept as tensors and sent once per
    epoch (one device sync per epoch, not per step), then the epoch's logs."""

    def __init__(self, tracker: Tracker, stage: str | None = None):
        self.tracker, self.stage = tracker, stage
        self._steps: list[tuple[int, torch.Tensor, float | None]] = []
        self._lr: float | None = None

    def on_fit_begin(self, learner: Learner) -> None:
        self._steps = []
        self.tracker.begin_stage(self.stage, learner.global_step)

    def on_batch_begin(self, learner: Learner) -> None:
        # The LR this step trains with (a per-batch scheduler steps inside train_step).
        opt = learner.optimizer
        self._lr = float(opt.param_groups[0]["lr"]) if opt is not None else None

    def on_batch_end(self, learner: Learner, logs: dict) -> None:
        self._steps.append((learner.global_step, torch.as_tensor(logs["loss"]).detach(), self._lr))

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        if self._steps:
            losses = torch.stack([loss.float().reshape(()) for _, loss, _ in self._steps]).tolist()
            rows = [(step, {"loss": loss} if lr is None else {"loss": loss, "lr": lr})
                    for (step, _, lr), loss in zip(self._steps, losses)]
            self._steps = []
            self.tracker.log_steps(self.stage, rows)
        self.tracker.log_epoch(self.stage, learner.global_step, logs)


# --- TensorBoard ---


def _import_tensorboard():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(f"--track tensorboard needs tensorboard: {EXTRA}") from None
    return SummaryWriter


class TensorBoardTracker(Tracker):
    """TensorBoard event files: per-step loss and LR, per-epoch logs, the headline as hparams and the
    run's figures as images. In a run, the event files go to RUN/tensorboard/ (a stage's to
    RUN/tensorboard/STAGE/); `log_dir` sets the folder for library use."""

    kind = "tensorboard"

    def __init__(self, log_dir: str | os.PathLike | None = None, *, flush_secs: int = 30):
        self.SummaryWriter = _import_tensorboard()
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.flush_secs = flush_secs
        self.run_dir: Path | None = None
        self.hparams: dict[str, Any] = {}
        self._writers: dict[str | None, Any] = {}
        self._last: dict[str | None, int] = {}  # the last step written, per stage

    def start(self, run_dir: Path, record: dict, *, resume: bool = False, note=None) -> None:
        self.close()
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / "tensorboard"
        self.hparams = {"experiment": record.get("experiment"),
                        "preset": record.get("preset") or "default", "seed": record.get("seed"),
                        **flatten(record.get("config", {}))}

    def _writer(self, stage: str | None, purge_after: int | None = None):
        w = self._writers.get(stage)
        if w is None:
            if self.log_dir is None:
                raise ValueError("TensorBoardTracker: give a log_dir (or start it on a run folder)")
            folder = self.log_dir if stage is None else self.log_dir / stage
            # purge_step: TensorBoard hides what an interrupted run logged after its checkpoint.
            purge = purge_after + 1 if purge_after else None
            w = self.SummaryWriter(str(folder), purge_step=purge, flush_secs=self.flush_secs)
            self._writers[stage] = w
            self._last[stage] = purge_after or 0
        return w

    def begin_stage(self, stage: str | None, step: int) -> None:
        self._writer(stage, purge_after=step)

    def log_steps(self, stage, rows) -> None:
        w = self._writer(stage)
        for step, values in rows:
            for key, value in values.items():
                w.add_scalar(f"step/{key}", value, step)
        if rows:
            self._last[stage] = max(self._last.get(stage, 0), rows[-1][0])

    def log_epoch(self, stage, step, row) -> None:
        w = self._writer(stage)
        for key, value in numbers(row, skip=("epoch",)).items():
            w.add_scalar(f"epoch/{key}", value, step)
        self._last[stage] = max(self._last.get(stage, 0), step)

    def finish(self, metrics, headline=()) -> None:
        from torch.utils.tensorboard.summary import hparams

        w = self._writer(None)
        step = max(self._last.values(), default=0)
        final = numbers(metrics)
        shown = {k: final[k] for k in headline if k in final} or final
        if self.hparams:
            params = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                      for k, v in self.hparams.items()}
            for summary in hparams(params, {f"final/{k}": v for k, v in shown.items()}):
                w.file_writer.add_summary(summary, step)
        for key, value in final.items():
            w.add_scalar(f"final/{key}", value, step)
        if self.run_dir is not None:
            for png in sorted((self.run_dir / "plots").glob("*.png")):
                w.file_writer.add_summary(_image_summary(f"plots/{png.stem}", png), step)

    def close(self, status: str = "FINISHED") -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}

    def state(self) -> dict:
        return {"log_dir": str(self.log_dir)} if self.log_dir is not None else {}


def _image_summary(tag: str, png: Path):
    """An image summary holding the PNG file's own bytes (no decoding and re-encoding)."""
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    with Image.open(png) as im:  # reads the header only
        width, height = im.size
        channels = len(im.getbands())
    image = Summary.Image(height=height, width=width, colorspace=channels,
                          encoded_image_string=png.read_bytes())
    return Summary(value=[Summary.Value(tag=tag, image=image)])


# --- MLflow ---


def _import_mlflow():
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(f"--track mlflow needs mlflow: {EXTRA}") from None
    # Store set-up chatter ("Creating initial MLflow database tables…") is not the run's output.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient


def default_mlflow_uri(out: str | os.PathLike = "runs") -> str:
    """The SQLite store in the runs root, `sqlite:///RUNS/mlflow.db` (absolute)."""
    return f"sqlite:///{(Path(out).expanduser().absolute() / 'mlflow.db').as_posix()}"


def resolve_mlflow_uri(uri: str | None = None, out: str | os.PathLike = "runs") -> tuple[str, str]:
    """(tracking URI, where it was named): the argument, else $MLFLOW_TRACKING_URI, else the SQLite
    store in the runs root."""
    if uri:
        return uri, "--mlflow-uri"
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env, "MLFLOW_TRACKING_URI"
    return default_mlflow_uri(out), "--mlflow-uri"


@contextlib.contextmanager
def _one_try() -> Iterator[None]:
    """HTTP calls without MLflow's retries (minutes of back-off against a server that is down)."""
    keys = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _one_line(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text[:limit]}"


class MLflowTracker(Tracker):
    """MLflow runs: params, per-epoch metrics, end-of-run metrics, artifacts and tags.

    Args:
        uri: the tracking URI (`sqlite:///…`, `http://host:5000`, `postgresql://…`); None: MLflow's
            own default ($MLFLOW_TRACKING_URI, else ./mlflow.db).
        experiment: the MLflow experiment for library use; in a run, the mlrepro experiment's name.
        option: what named the URI, for the error message of a store that can't be opened.
    """

    kind = "mlflow"

    def __init__(self, uri: str | None = None, *, experiment: str | None = None,
                 option: str = "--mlflow-uri"):
        MlflowClient = _import_mlflow()
        import mlflow

        self.option = option
        try:
            with _one_try():
                self.uri = uri or mlflow.get_tracking_uri()
                self.client = MlflowClient(tracking_uri=self.uri)
                self.client.search_experiments(max_results=1)  # reaches the store: fails here
        except Exception as e:  # noqa: BLE001 - MLflow, SQLAlchemy and HTTP raise many kinds
            raise ConfigError(f"{option}: cannot open {uri!r} ({_one_line(e)})") from None
        self.experiment = experiment
        self.run_id: str | None = None
        self.parent_id: str | None = None
        self._group_owner = False
        self._reset()

    def _reset(self) -> None:
        self.run_id, self.run_dir, self.record = None, None, {}
        self._resume, self._note = False, None
        self._last: dict[str, int] = {}  # the last step logged per metric (a resumed run skips them)
        self._started = False

    # --- experiments and runs ---
    def _artifact_root(self) -> str | None:
        """Artifacts of a SQLite store go next to its file (MLflow's default is ./mlruns)."""
        if not self.uri.startswith("sqlite:///"):
            return None
        path = Path(self.uri[len("sqlite:///"):]).expanduser().absolute()
        return (path.parent / "mlartifacts").as_uri()

    def _experiment_id(self, name: str | None) -> str:
        if name is None:
            return "0"  # MLflow's Default experiment
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        root = self._artifact_root()
        try:
            return self.client.create_experiment(name, artifact_location=f"{root}/{name}" if root
                                                 else None)
        except Exception:
            found = self.client.get_experiment_by_name(name)  # created meanwhile by another process
            if found is None:
                raise
            return found.experiment_id

    def _continue(self, run_id: str) -> bool:
        """Continue an existing run: mark it running and learn which steps it logged already."""
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        if run.info.lifecycle_stage != "active":
            return False
        if run.info.status != "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        for key in run.data.metrics:
            history = self.client.get_metric_history(run_id, key)
            self._last[key] = max((m.step for m in history), default=-1)
        return True

    def _ensure_run(self) -> str:
        """The MLflow run: created on the first thing logged, so a run that fails before it trained
        leaves none; a resumed run continues the one its folder names."""
        if self.run_id is not None:
            return self.run_id
        saved = _read_state(self.run_dir).get(self.kind, {}) if self.run_dir else {}
        if self._resume and saved.get("run_id") and saved.get("tracking_uri") == self.uri \
                and self._continue(saved["run_id"]):
            self.run_id = saved["run_id"]
            return self.run_id
        name = self.record.get("experiment") or self.experiment
        tags = run_tags(self.record) if self.record else {}
        if self.run_dir is not None:
            tags["mlrepro.run_dir"] = str(self.run_dir)
        if self.parent_id is not None:
            tags["mlflow.parentRunId"] = self.parent_id
        run_name = self.run_dir.name if self.run_dir is not None else None
        if self.run_dir is not None and self.parent_id is None:
            run_name = f"{name} {self.run_dir.name}"
        run = self.client.create_run(self._experiment_id(name), run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        if self.record.get("config"):
            self._log_params(self.run_id, self.record["config"])
        if self.run_dir is not None:
            _write_state(self.run_dir, self.kind, {"tracking_uri": self.uri,
                                                   "experiment_id": run.info.experiment_id,
                                                   "run_id": self.run_id})
        return self.run_id

    def _log_params(self, run_id: str, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in flatten(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=params[i:i + 100])

    def _log_metrics(self, run_id: str, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        todo = [Metric(k, v, now, step) for k, v in values.items() if step > self._last.get(k, -1)]
        for i in range(0, len(todo), 1000):
            self.client.log_batch(run_id, metrics=todo[i:i + 1000])
        for m in todo:
            self._last[m.key] = step

    # --- the run ---
    def start(self, run_dir: Path, record: dict, *, resume: bool = False, note=None) -> None:
        self._reset()
        self.run_dir, self.record = Path(run_dir).absolute(), record
        self._resume, self._note = resume, note

    def log_epoch(self, stage, step, row) -> None:
        prefix = "epoch/" if stage is None else f"{stage}/epoch/"
        epoch = int(row.get("epoch", step))
        values = {prefix + k: v for k, v in numbers(row, skip=("epoch",)).items()}
        self._log_metrics(self._ensure_run(), values, epoch)

    def finish(self, metrics, headline=()) -> None:
        run_id = self._ensure_run()
        from mlflow.entities import RunTag

        self._log_metrics(run_id, numbers(metrics), 0)
        record = dict(self.record)
        if metrics.get("data"):
            record["data"] = metrics["data"]
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in data_tags(record).items()])
        if self.run_dir is not None:
            for name in ("config.json", "metrics.json", "history.jsonl"):
                if (self.run_dir / name).is_file():
                    self.client.log_artifact(run_id, str(self.run_dir / name))
            if (self.run_dir / "plots").is_dir():
                self.client.log_artifacts(run_id, str(self.run_dir / "plots"), "plots")

    def close(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)
        self._reset()

    # --- groups ---
    def start_group(self, folder, name, record, *, owner=True) -> None:
        folder = Path(folder).absolute()
        saved = _read_state(folder).get(self.kind, {})
        self._group_owner = owner
        self.parent_id = None
        if (saved.get("run_id") and saved.get("tracking_uri") == self.uri
                and (not owner or self._continue(saved["run_id"]))):
            self.parent_id = saved["run_id"]
            return
        if not owner:
            return
        tags = {"mlrepro.experiment": str(record.get("experiment")),
                "mlrepro.preset": str(record.get("preset") or "default"),
                "mlrepro.group": str(record.get("group", "sweep")), "mlrepro.run_dir": str(folder)}
        if record.get("command"):
            tags["mlflow.source.name"] = str(record["command"])[:5000]
        code = git_commit()
        if code is not None:
            tags["mlflow.source.git.commit"] = code[0]
        run = self.client.create_run(self._experiment_id(record.get("experiment")), run_name=name,
                                     tags=tags)
        self.parent_id = run.info.run_id
        if record.get("config"):
            self._log_params(self.parent_id, record["config"])
        _write_state(folder, self.kind, {"tracking_uri": self.uri,
                                         "experiment_id": run.info.experiment_id,
                                         "run_id": self.parent_id})

    def end_group(self, summary=None, status="FINISHED") -> None:
        parent, self.parent_id = self.parent_id, None
        if parent is None or not self._group_owner:
            return
        if summary:
            values = {}
            for key, m in (summary.get("metrics") or {}).items():  # a sweep: mean ± std per metric
                if isinstance(m, Mapping) and m.get("mean") is not None:
                    values[key] = float(m["mean"])
                    values[f"{key}_std"] = float(m.get("std") or 0.0)
            if isinstance(summary.get("best_value"), (int, float)):  # a search
                values[f"best_{summary.get('metric', 'value')}"] = float(summary["best_value"])
            self._log_metrics(parent, values, 0)
            path = summary.get("path")
            if path and Path(path).is_file():
                self.client.log_artifact(parent, str(path))
        self.client.set_terminated(parent, status=status)

    def spec(self) -> dict:
        return {"kind": self.kind, "uri": self.uri, "option": self.option}

    def state(self) -> dict:
        return {"tracking_uri": self.uri, "run_id": self.run_id} if self.run_id else {}


# --- several trackers, guarded ---


class Trackers(Tracker):
    """Several trackers as one. A tracker that raises mid-run is dropped with one warning (printed,
    and recorded in the run's notes): tracking never costs a run its evidence."""

    def __init__(self, trackers: Iterable[Tracker]):
        self.trackers = list(trackers)
        self.kind = ",".join(t.kind for t in self.trackers)
        self._note = None

    def _each(self, method: str, *args, **kw) -> None:
        for t in list(self.trackers):
            try:
                getattr(t, method)(*args, **kw)
            except Exception as e:  # noqa: BLE001 - any failure of a tracker must spare the run
                self.trackers.remove(t)
                msg = f"{t.kind} tracking stopped ({method}): {_one_line(e)}"
                print(f"mlrepro: warning: {msg}", file=sys.stderr, flush=True)
                if self._note is not None:
                    self._note(msg)
                with contextlib.suppress(Exception):
                    t.close("FAILED")

    def start(self, run_dir, record, *, resume=False, note=None) -> None:
        self._note = note
        self._each("start", run_dir, record, resume=resume, note=note)
        _write_state(run_dir, "track", [t.spec() for t in self.trackers])

    def begin_stage(self, stage, step) -> None:
        self._each("begin_stage", stage, step)

    def log_steps(self, stage, rows) -> None:
        self._each("log_steps", stage, rows)

    def log_epoch(self, stage, step, row) -> None:
        self._each("log_epoch", stage, step, row)

    def finish(self, metrics, headline=()) -> None:
        self._each("finish", metrics, headline)

    def close(self, status="FINISHED") -> None:
        self._each("close", status)
        self._note = None

    def start_group(self, folder, name, record, *, owner=True) -> None:
        self._each("start_group", folder, name, record, owner=owner)

    def end_group(self, summary=None, status="FINISHED") -> None:
        self._each("end_group", summary, status)

    def spec(self) -> dict:
        return {"kind": "trackers", "trackers": [t.spec() for t in self.trackers]}


# --- building trackers: from the command line, from a run folder, in another process ---


def guarded(track: Tracker | None) -> Trackers | None:
    """`track` as a `Trackers` (whose failures warn instead of ending the run), or None."""
    return track if track is None or isinstance(track, Trackers) else Trackers([track])


def parse_kinds(text: str | Sequence[str] | None) -> list[str]:
    """'tensorboard,mlflow' as a list of tracker kinds; ConfigError naming the valid ones."""
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    kinds = [k.strip().lower() for k in items if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ConfigError(f"--track: unknown {bad[0] if bad else text!r}; valid: {', '.join(KINDS)} "
                          "(or both, comma-separated)")
    return list(dict.fromkeys(kinds))


def make_tracker(track: str | Sequence[str] | None, *, mlflow_uri: str | None = None,
                 out: str | os.PathLike = "runs") -> Trackers | None:
    """The trackers `--track` names, checked before anything trains: a missing extra or a store
    that can't be opened is a ConfigError. None when no tracker is named."""
    kinds = parse_kinds(track)
    if mlflow_uri and "mlflow" not in kinds:
        raise ConfigError("--mlflow-uri goes with --track mlflow")
    trackers: list[Tracker] = []
    for kind in kinds:
        if kind == "tensorboard":
            trackers.append(TensorBoardTracker())
        else:
            uri, option = resolve_mlflow_uri(mlflow_uri, out)
            trackers.append(MLflowTracker(uri, option=option))
    return Trackers(trackers) if trackers else None


def tracker_from_spec(spec: Mapping[str, Any]) -> Tracker:
    """Rebuild a tracker from `Tracker.spec()` (a search worker, a resumed run)."""
    kind = spec.get("kind")
    if kind == "trackers":
        return Trackers(tracker_from_spec(s) for s in spec["trackers"])
    if kind == "tensorboard":
        return TensorBoardTracker()
    if kind == "mlflow":
        return MLflowTracker(spec.get("uri"), option=spec.get("option", "--mlflow-uri"))
    raise ConfigError(f"tracking: unknown tracker {kind!r} in a saved spec")


def tracker_for_resume(run_dir: str | os.PathLike) -> Trackers | None:
    """The trackers a run folder was tracked with (its tracking.json), to continue them."""
    specs = _read_state(Path(run_dir)).get("track")
    if not specs:
        return None
    return Trackers(tracker_from_spec(s) for s in specs)


def _read_state(folder: Path | None) -> dict:
    if folder is None:
        return {}
    try:
        return json.loads((Path(folder) / STATE).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(folder: Path, key: str, value: Any) -> None:
    state = _read_state(folder)
    if state.get(key) != value:
        atomic_write_json(Path(folder) / STATE, {**state, key: value})


__all__ = ["KINDS", "MLflowTracker", "TensorBoardTracker", "Tracker", "Trackers", "TrackingCallback",
           "default_mlflow_uri", "guarded", "make_tracker", "parse_kinds", "resolve_mlflow_uri",
           "tracker_for_resume", "tracker_from_spec"]

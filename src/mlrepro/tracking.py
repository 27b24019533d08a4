"""Watch and compare runs in TensorBoard and MLflow.

A `Tracker` receives a run's events from the three places that produce them: a `Learner`'s
callbacks (every step's loss and LR, every epoch's logs), `RunContext.epochs` (a loop of its own,
such as DQN's) and the runner (the run's start, its end-of-run metrics and figures, and the sweep or
search that groups it). The run folder stays the evidence; a tracker is a view of it:

- `TensorBoardTracker`: event files in RUN/tensorboard/ (one sub-folder per stage), per-step
  `step/loss` and `step/lr`, per-epoch `epoch/<key>` at the global step, the headline as hparams and
  plots/*.png as images. Its writes run in a writer process beside the run
  (`mlrepro.tensorboard_writer`, served by `mlrepro.writer_process`).
- `MLflowTracker`: the flattened config as params, per-epoch `epoch/<key>` with the epoch as
  step, every end-of-run metric, config.json, metrics.json, history.jsonl and plots/ as artifacts,
  tags for experiment, preset, seed, data provenance and git commit; a sweep or a search is a
  parent run. Its MLflow calls run in a writer process beside the run (`mlrepro.mlflow_writer`,
  served by `mlrepro.writer_process`).

A resumed run continues where it stopped: the MLflow run id is kept in RUN/tracking.json, and
TensorBoard purges the steps after the checkpoint, so no step is logged twice. A tracker that fails
mid-run (`Trackers`) stops with one warning, recorded in the run's notes; the run goes on.

As a library::

    tb = TensorBoardTracker("logs/mlp")
    learner.fit(train, 5, callbacks=[tb])  # or MLflowTracker("sqlite:///m.db", experiment="mlp")
    tb.close()
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .engine import Callback, Learner
from .errors import ConfigError
from .io import to_json
from .mlflow_writer import (
    EXTRA,
    STATE,
    MLflowWriter,
    check_uri,
    data_tags,
    default_mlflow_uri,
    flatten,
    git_commit,
    one_line,
    read_state,
    resolve_mlflow_uri,
    run_tags,
    write_state,
)
from .mlflow_writer import numbers as _numbers
from .writer_process import TENSORBOARD_SPEC, WriterPipe, mlflow_spec, open_pipe

KINDS = ("tensorboard", "mlflow")


# --- what a run is, as params and tags ---


def numbers(values: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, float]:
    """The real numbers among `values`, one-element tensors included (bools, None, text out)."""
    return _numbers(
        {
            k: v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v
            for k, v in values.items()
        },
        skip,
    )


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
    def start_group(
        self, folder: Path, name: str, record: Mapping[str, Any], *, owner: bool = True
    ) -> None:
        """Runs that follow belong to the group kept in `folder` (created or continued); only its
        `owner` ends it (search workers join their launcher's group)."""

    def end_group(self, summary: Mapping[str, Any] | None = None, status: str = "FINISHED") -> None:
        """The group ends; `summary` holds its metrics (summary.json, study.json)."""

    # --- how to rebuild this tracker in another process ---
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
        self.close(
            "FINISHED"
            if kind is None
            else "KILLED"
            if issubclass(kind, KeyboardInterrupt)
            else "FAILED"
        )


class TrackingCallback(Callback):
    """Feeds a tracker from `Learner.fit`: each step's loss and LR, kept as tensors and sent once
    per epoch (one device sync per epoch, not per step), then the epoch's logs."""

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
            rows = [
                (step, {"loss": loss} if lr is None else {"loss": loss, "lr": lr})
                for (step, _, lr), loss in zip(self._steps, losses)
            ]
            self._steps = []
            self.tracker.log_steps(self.stage, rows)
        self.tracker.log_epoch(self.stage, learner.global_step, logs)


# --- trackers whose calls run in a writer process ---


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # a module set to None in sys.modules
        return False


class _PipedTracker(Tracker):
    """A tracker whose calls run in a writer process (`writer_process.WriterPipe`, shared by the
    trackers of one command) or, with `background=False`, in this process. Only `close` and the
    group calls wait for the writer; a failure of an earlier call surfaces at the next one."""

    _pipe: WriterPipe | None = None
    _writer: Any = None

    def _call(self, op: str, *args, reply: bool = False, **kw) -> Any:
        if self._writer is not None:
            return getattr(self._writer, op)(*args, **kw)
        assert self._pipe is not None
        return self._pipe.call(self.kind, op, *args, reply=reply, **kw)

    def shutdown(self) -> None:
        """Stop the writer process, and so every tracker that shares it (also done when they are
        all garbage, and when Python exits)."""
        if self._pipe is not None:
            self._pipe.stop()


# --- TensorBoard ---


class TensorBoardTracker(_PipedTracker):
    """TensorBoard event files: per-step loss and LR, per-epoch logs, the headline as hparams and
    the run's figures as images. In a run, the event files go to RUN/tensorboard/ (a stage's to
    RUN/tensorboard/STAGE/); `log_dir` sets the folder for library use.

    The files are written by `tensorboard_writer.TensorBoardWriter` with TensorBoard's own event
    writer (the one `torch.utils.tensorboard.SummaryWriter` wraps), in a writer process beside the
    run, started here: the training process never imports TensorBoard, and only `close` waits.
    `background=False` writes from this process.
    """

    kind = "tensorboard"

    def __init__(
        self,
        log_dir: str | os.PathLike | None = None,
        *,
        flush_secs: int = 30,
        background: bool = True,
    ):
        if not _installed("tensorboard"):
            raise ConfigError(f"--track tensorboard needs tensorboard: {EXTRA}")
        self.log_dir = Path(log_dir) if log_dir is not None else None
        if not background:
            from .tensorboard_writer import TensorBoardWriter

            self._writer = TensorBoardWriter(log_dir, flush_secs=flush_secs)
            return
        spec = {**TENSORBOARD_SPEC, "flush_secs": flush_secs}
        if log_dir is not None:
            spec["log_dir"] = str(Path(log_dir).absolute())
        self._pipe = open_pipe(spec)

    def start(self, run_dir, record, *, resume=False, note=None) -> None:
        self.log_dir = Path(run_dir) / "tensorboard"
        self._call("start", str(Path(run_dir).absolute()), _plain(record), resume=resume)

    def begin_stage(self, stage, step) -> None:
        self._call("begin_stage", stage, int(step))

    def log_steps(self, stage, rows) -> None:
        self._call("log_steps", stage, [(int(s), numbers(v)) for s, v in rows])

    def log_epoch(self, stage, step, row) -> None:
        self._call("log_epoch", stage, int(step), numbers(row, skip=("epoch",)))

    def finish(self, metrics, headline=()) -> None:
        self._call("finish", numbers(metrics), list(headline))

    def close(self, status="FINISHED") -> None:
        self._call("close", status, reply=True)


# --- MLflow ---


class MLflowTracker(_PipedTracker):
    """MLflow runs: the flattened config as params, per-epoch `epoch/<key>` metrics with the epoch
    as step, every end-of-run metric, config.json, metrics.json, history.jsonl and plots/ as
    artifacts, tags for experiment, preset, seed, data and git commit; a sweep or a search as a
    parent run.

    The MLflow calls run in a writer process of their own (`mlrepro.writer_process`), started here:
    the training process never imports MLflow, and only `close` and the group calls wait for it.
    A SQLite or HTTP URI is checked here at once; any other is opened by the writer before this
    returns. Failures of the writer surface at the next call (`Trackers` turns them into a warning).

    Args:
        uri: the tracking URI (`sqlite:///…`, `http://host:5000`, `postgresql://…`); None: MLflow's
            own default ($MLFLOW_TRACKING_URI, else ./mlflow.db).
        experiment: the MLflow experiment for library use; in a run, the mlrepro experiment's name.
        option: what named the URI, for the message of a store that can't be opened.
        background: False makes the MLflow calls in this process (`MLflowWriter` itself).
    """

    kind = "mlflow"

    def __init__(
        self,
        uri: str | None = None,
        *,
        experiment: str | None = None,
        option: str = "--mlflow-uri",
        background: bool = True,
    ):
        if not _installed("mlflow"):
            raise ConfigError(f"--track mlflow needs mlflow: {EXTRA}")
        self.uri, self.option = uri, option
        if not background:
            self._writer = MLflowWriter(uri, experiment=experiment, option=option)
            self.uri = self._writer.uri
            return
        checked = uri is not None and check_uri(uri, option)
        self._pipe = open_pipe(mlflow_spec(uri, experiment, option))
        if not checked:
            self.uri = self._pipe.wait(self.kind, 0)["uri"]

    # --- the run ---
    def start(self, run_dir, record, *, resume=False, note=None) -> None:
        self._call("start", str(run_dir), _plain(record), resume=resume)

    def log_epoch(self, stage, step, row) -> None:
        self._call("log_epoch", stage, step, {**numbers(row), "epoch": row.get("epoch", step)})

    def finish(self, metrics, headline=()) -> None:
        self._call("finish", _plain(metrics), list(headline))

    def close(self, status="FINISHED") -> None:
        self._call("close", status, reply=True)

    def start_group(self, folder, name, record, *, owner=True) -> None:
        self._call("start_group", str(folder), name, _plain(record), owner=owner, reply=True)

    def end_group(self, summary=None, status="FINISHED") -> None:
        self._call("end_group", _plain(summary) if summary else None, status, reply=True)

    def spec(self) -> dict:
        return {"kind": self.kind, "uri": self.uri, "option": self.option}


def _plain(value: Any) -> Any:
    """JSON-ready (tensors and numpy numbers as Python numbers), as run folders write it."""
    return json.loads(to_json(value, None))


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
                msg = f"{t.kind} tracking stopped ({method}): {one_line(e)}"
                print(f"mlrepro: warning: {msg}", file=sys.stderr, flush=True)
                if self._note is not None:
                    self._note(msg)
                with contextlib.suppress(Exception):
                    t.close("FAILED")

    def start(self, run_dir, record, *, resume=False, note=None) -> None:
        self._note = note
        self._each("start", run_dir, record, resume=resume, note=note)
        write_state(run_dir, "track", [t.spec() for t in self.trackers])

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
        raise ConfigError(
            f"--track: unknown {bad[0] if bad else text!r}; valid: "
            f"{', '.join(KINDS)} (or both, comma-separated)"
        )
    return list(dict.fromkeys(kinds))


def make_tracker(
    track: str | Sequence[str] | None,
    *,
    mlflow_uri: str | None = None,
    out: str | os.PathLike = "runs",
) -> Trackers | None:
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
    specs = read_state(Path(run_dir)).get("track")
    if not specs:
        return None
    return Trackers(tracker_from_spec(s) for s in specs)


__all__ = [
    "KINDS",
    "STATE",
    "MLflowTracker",
    "MLflowWriter",
    "TensorBoardTracker",
    "Tracker",
    "Trackers",
    "TrackingCallback",
    "data_tags",
    "default_mlflow_uri",
    "flatten",
    "git_commit",
    "guarded",
    "make_tracker",
    "numbers",
    "parse_kinds",
    "resolve_mlflow_uri",
    "run_tags",
    "tracker_for_resume",
    "tracker_from_spec",
]

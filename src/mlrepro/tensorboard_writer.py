"""The TensorBoard side of tracking, importable without torch.

`TensorBoardWriter` writes a tracked run's event files with TensorBoard's own record format and
protobufs, the ones `torch.utils.tensorboard.SummaryWriter` writes. It needs no torch, so
`writer_process.main` can serve it in a writer process beside the run (`tracking.TensorBoardTracker`
does): importing TensorBoard (0.15-0.3 s of CPU) and every write then happen off the training
process, which sends one line a call.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .mlflow_writer import EXTRA, flatten, numbers


def _import_tensorboard():
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2  # noqa: F401
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        raise ConfigError(f"--track tensorboard needs tensorboard: {EXTRA}") from None
    return RecordWriter, event_pb2, summary_pb2


_file_ids = itertools.count()


class _EventFile:
    """One event file, named and framed as TensorBoard's `EventFileWriter` does it, written in the
    calling thread. `EventFileWriter` hands each record to a thread of its own so that a slow
    filesystem does not block training; in the writer process (`TensorBoardTracker`) that thread
    only added GIL hand-offs, 10-15 ms at a run's close, which the run waits for. Records are
    buffered and flushed every `flush_secs` and at close, as there."""

    def __init__(self, folder: Path, flush_secs: float, record_writer, event_pb2) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
            f"{os.getpid()}.{next(_file_ids)}"
        )
        self._file = open(folder / name, "wb")  # noqa: SIM115 - closed by close()
        self._records = record_writer(self._file)
        self._flush_secs = flush_secs
        self._next_flush = 0.0  # the first record is flushed at once, as there
        self.add_event(
            event_pb2.Event(
                wall_time=time.time(),
                file_version="brain.Event:2",
                source_metadata=event_pb2.SourceMetadata(writer="mlrepro"),
            )
        )

    def add_event(self, event) -> None:
        self._records.write(event.SerializeToString())
        if time.monotonic() >= self._next_flush:
            self._file.flush()
            self._next_flush = time.monotonic() + self._flush_secs

    def close(self) -> None:
        self._file.close()


class TensorBoardWriter:
    """TensorBoard event files of a run: per-step `step/<key>`, per-epoch `epoch/<key>` at the
    global step, the headline as hparams (the HParams dashboard), `final/<key>` and the run's
    figures as images. In a run the files go to RUN/tensorboard/ (a stage's to
    RUN/tensorboard/STAGE/); `log_dir` sets the folder for library use.

    A stage that (re)starts after step N purges what an earlier, interrupted process logged after
    N, as `SummaryWriter(purge_step=N + 1)` does: a resumed run's curves have no step twice.
    """

    kind = "tensorboard"

    def __init__(self, log_dir: str | os.PathLike | None = None, *, flush_secs: int = 30):
        self._RecordWriter, self._event_pb2, self._summary_pb2 = _import_tensorboard()
        import PIL.Image  # noqa: F401 - what `finish` needs, imported while the run trains
        import PIL.PngImagePlugin  # noqa: F401 - else imported by the first Image.open (10-30 ms)

        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.flush_secs = flush_secs
        self.run_dir: Path | None = None
        self.hparams: dict[str, Any] = {}
        self._writers: dict[str | None, Any] = {}
        self._last: dict[str | None, int] = {}  # the last step written, per stage

    # --- events ---
    def _writer(self, stage: str | None, purge_after: int | None = None):
        w = self._writers.get(stage)
        if w is None:
            if self.log_dir is None:
                raise ValueError("TensorBoardTracker: give a log_dir (or start it on a run folder)")
            folder = self.log_dir if stage is None else self.log_dir / stage
            w = _EventFile(folder, self.flush_secs, self._RecordWriter, self._event_pb2)
            if (
                purge_after
            ):  # what SummaryWriter(purge_step=…) writes: TensorBoard drops later steps
                Event, SessionLog = self._event_pb2.Event, self._event_pb2.SessionLog
                step = purge_after + 1
                w.add_event(Event(step=step, file_version="brain.Event:2"))
                w.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))
            self._writers[stage] = w
            self._last[stage] = purge_after or 0
        return w

    def _add(self, stage: str | None, step: int, summary) -> None:
        event = self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
        self._writer(stage).add_event(event)

    def _scalars(self, stage: str | None, step: int, values: Mapping[str, float]) -> None:
        Summary = self._summary_pb2.Summary
        if values:
            value = [Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()]
            self._add(stage, step, Summary(value=value))

    # --- the run ---
    def start(self, run_dir: str | os.PathLike, record: dict, *, resume: bool = False) -> None:
        self.close()
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / "tensorboard"
        self.hparams = {
            "experiment": record.get("experiment"),
            "preset": record.get("preset") or "default",
            "seed": record.get("seed"),
            **flatten(record.get("config", {})),
        }

    def begin_stage(self, stage: str | None, step: int) -> None:
        self._writer(stage, purge_after=step)

    def log_steps(self, stage: str | None, rows: Sequence[tuple[int, Mapping[str, float]]]) -> None:
        for step, values in rows:
            self._scalars(stage, step, {f"step/{k}": v for k, v in values.items()})
        if rows:
            self._last[stage] = max(self._last.get(stage, 0), int(rows[-1][0]))

    def log_epoch(self, stage: str | None, step: int, row: Mapping[str, Any]) -> None:
        values = numbers(row, skip=("epoch",))
        self._scalars(stage, step, {f"epoch/{k}": v for k, v in values.items()})
        self._last[stage] = max(self._last.get(stage, 0), int(step))

    def finish(self, metrics: Mapping[str, Any], headline: Sequence[str] = ()) -> None:
        step = max(self._last.values(), default=0)
        final = numbers(metrics)
        shown = {k: final[k] for k in headline if k in final} or final
        if self.hparams:
            for summary in self._hparams(shown):
                self._add(None, step, summary)
        self._scalars(None, step, {f"final/{k}": v for k, v in final.items()})
        if self.run_dir is not None:
            for png in sorted((self.run_dir / "plots").glob("*.png")):
                self._add(None, step, self._image(f"plots/{png.stem}", png))

    def close(self, status: str = "FINISHED") -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}

    # --- summaries ---
    def _hparams(self, shown: Mapping[str, float]) -> list:
        """The HParams dashboard's three summaries: the experiment (which hparams and metrics),
        the session's hparams, its end (the metrics themselves are the `final/` scalars). Built as
        `torch.utils.tensorboard.summary.hparams` builds them (TensorBoard's own `hparams.summary`
        helpers import TensorFlow), except that bools stay bools."""
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        Summary = self._summary_pb2.Summary
        start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        infos = []
        for key, value in self.hparams.items():
            if value is None:
                continue
            if isinstance(value, bool):
                kind = api_pb2.DATA_TYPE_BOOL
                start.hparams[key].bool_value = value
            elif isinstance(value, (int, float)):
                kind = api_pb2.DATA_TYPE_FLOAT64
                start.hparams[key].number_value = float(value)
            else:
                kind = api_pb2.DATA_TYPE_STRING
                start.hparams[key].string_value = str(value)
            infos.append(api_pb2.HParamInfo(name=key, type=kind))
        experiment = api_pb2.Experiment(
            hparam_infos=infos,
            metric_infos=[
                api_pb2.MetricInfo(name=api_pb2.MetricName(tag=f"final/{k}")) for k in shown
            ],
        )
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
        return [
            Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data))])
            for tag, data in (
                (metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
                (
                    metadata.SESSION_START_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_start_info=start),
                ),
                (
                    metadata.SESSION_END_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_end_info=end),
                ),
            )
        ]

    def _image(self, tag: str, png: Path):
        """An image summary holding the PNG file's own bytes (no decoding and re-encoding)."""
        from PIL import Image

        Summary = self._summary_pb2.Summary
        with Image.open(png) as im:  # reads the header only
            width, height = im.size
            channels = len(im.getbands())
        image = Summary.Image(
            height=height, width=width, colorspace=channels, encoded_image_string=png.read_bytes()
        )
        return Summary(value=[Summary.Value(tag=tag, image=image)])

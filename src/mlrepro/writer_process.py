"""The writer process of both trackers, importable without torch.

`main()` serves an `mlflow_writer.MLflowWriter`, a `tensorboard_writer.TensorBoardWriter` or both
over a pipe (JSON lines in, JSON lines out) in a process of its own; `WriterPipe` is the training
process's end of it. `tracking.MLflowTracker` and `tracking.TensorBoardTracker` use one, so that
importing MLflow (≈ 2 s of CPU with its SQL store) and TensorBoard (0.2-0.3 s), opening the store
and every write happen beside the training process instead of in it: where a core is free,
tracking costs the run the messages only. The trackers of one command share one process: with
one per tracker, three processes competed for two cores while the run started, and the run lost
a quarter of a second (+8 % of a quick run, docs/results.md).

Run:   python -m mlrepro.writer_process '[{"kind": "mlflow", "uri": "sqlite:///runs/mlflow.db"}]'
       python -m mlrepro.writer_process '[{"kind": "tensorboard", "log_dir": "logs"}]'
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import itertools
import json
import os
import select
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, MlreproError
from .mlflow_writer import MLflowWriter, check_uri, one_line, resolve_mlflow_uri


def mlflow_spec(uri: str | None, experiment: str | None = None, option: str = "--mlflow-uri"):
    """The spec of an MLflow writer."""
    return {"kind": "mlflow", "uri": uri, "experiment": experiment, "option": option}


TENSORBOARD_SPEC = {"kind": "tensorboard", "log_dir": None, "flush_secs": 30}  # a run's writer


def _key(spec: Mapping[str, Any]) -> str:
    return json.dumps(dict(spec), sort_keys=True)


class WriterPipe:
    """The training process's end of a writer process that serves one writer per spec (`main`).

    Requests go out without waiting, except where `call(..., reply=True)` asks. The writer's
    replies and failures come back tagged with the writer's kind: a failure of a call that was not
    waited for is raised by the next call to the same kind. The process ends when the pipe is
    garbage, at `stop`, or when Python exits.
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]]):
        self.specs = [dict(s) for s in specs]
        src = str(Path(__file__).resolve().parents[1])  # the writer imports this very mlrepro
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - the writer's stderr, kept open
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlrepro.writer_process", json.dumps(self.specs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )  # Ctrl-C reaches the run, which then closes its tracked runs
        self._ids = itertools.count(1)
        self._buf = b""  # what was read of the writer's output past the last full line
        self._pending: dict[str, list[dict]] = {}  # messages read, by kind, not yet seen
        self._used = {"used": False}  # whether a call went out (`stop_writer`)
        self.stop = weakref.finalize(self, stop_writer, self.proc, self._log, self._used)

    def _read(self, timeout: float | None) -> dict | None:
        """The writer's next message, or None when none came within `timeout` seconds."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:  # raw reads: a buffered reader would hide lines from select
            if not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if chunk:
                self._buf += chunk
                continue
            self.proc.wait()
            self._log.seek(0)
            tail = self._log.read().decode(errors="replace").strip().splitlines()[-1:]
            raise MlreproError(
                f"the tracking writer ended (exit code {self.proc.returncode})"
                + (f": {tail[0][:200]}" if tail else "")
            )
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def _next(self, kind: str, timeout: float | None) -> dict | None:
        """The next message for `kind` (others are kept for their own kind)."""
        while not self._pending.get(kind):
            msg = self._read(timeout)
            if msg is None:
                return None
            self._pending.setdefault(msg.get("to", ""), []).append(msg)
        return self._pending[kind].pop(0)

    @staticmethod
    def _raise(msg: dict) -> None:
        if msg.get("config"):
            raise ConfigError(msg["error"])
        raise MlreproError(msg["error"])

    def wait(self, kind: str, ident: int) -> Any:
        """The value of `kind`'s reply `ident` (0: the writer's opening); a failure raises."""
        while True:
            msg = self._next(kind, None)
            assert msg is not None
            if "error" in msg:
                self._raise(msg)
            if msg.get("id") == ident:
                return msg.get("value")

    def call(self, kind: str, op: str, *args, reply: bool = False, **kw) -> Any:
        """`op(*args, **kw)` on the writer of `kind`: its value with `reply`, else None at once."""
        while (msg := self._next(kind, 0)) is not None:  # a failure of an earlier call
            if "error" in msg:
                self._raise(msg)
        ident = next(self._ids) if reply else None
        self._used["used"] = True
        request = {"to": kind, "op": op, "args": args, "kw": kw, "id": ident}
        try:
            self.proc.stdin.write(json.dumps(request, default=str).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            self._read(None)  # the writer is gone: say why
            raise
        return self.wait(kind, ident) if reply else None


def open_pipe(spec: Mapping[str, Any]) -> WriterPipe:
    """A pipe to a writer for `spec`: the one `start_early` started for it, else a new one."""
    return take_early(spec) or WriterPipe([spec])


# Writer processes started before the command imported torch: spec key -> its pipe, until taken.
_early: dict[str, WriterPipe] = {}


def start_early(
    track: str | None, mlflow_uri: str | None = None, out: str | os.PathLike = "runs"
) -> None:
    """Start the writer process of `--track … --mlflow-uri …` now, before the command imports
    torch (≈ 2 s), so that its own start-up (importing MLflow and opening the store: ≈ 2.5 s of
    CPU; importing TensorBoard: 0.2-0.3 s) runs beside it instead of after it; the run's trackers
    then take it over (`open_pipe`), one process for both.

    Never raises and never starts a writer the tracker would refuse: an unknown kind, a missing
    extra or a bad URI is left to the tracker, which reports it as before. A process nobody takes
    is stopped when Python exits."""
    kinds = [k.strip().lower() for k in (track or "").split(",")]
    specs: list[dict] = []
    try:
        if "mlflow" in kinds and importlib.util.find_spec("mlflow") is not None:
            uri, option = resolve_mlflow_uri(mlflow_uri, out)
            if check_uri(uri, option):  # else a store only the writer can check: not early
                specs.append(mlflow_spec(uri, None, option))
        if "tensorboard" in kinds and importlib.util.find_spec("tensorboard") is not None:
            specs.append(dict(TENSORBOARD_SPEC))
    except (ConfigError, ValueError, OSError):
        pass
    specs = [s for s in specs if _key(s) not in _early]
    if specs:
        if not _early:
            atexit.register(_stop_early)
        pipe = WriterPipe(specs)
        for spec in specs:
            _early[_key(spec)] = pipe


def take_early(spec: Mapping[str, Any]) -> WriterPipe | None:
    """The pipe `start_early` started for this spec (once), if its process still runs."""
    pipe = _early.pop(_key(spec), None)
    if pipe is not None and pipe.proc.poll() is not None:
        return None  # it ended (the store could not be opened): a new one says why
    return pipe


def _stop_early() -> None:
    while _early:
        _early.popitem()[1].stop()


# Writer processes told to exit and not waited for: reaped as they end (`stop_writer`).
_exiting: list[subprocess.Popen] = []


def stop_writer(proc: subprocess.Popen, log, used: Mapping[str, bool] | None = None) -> None:
    """End a writer process. One that wrote for a run is told to exit and not waited for: every
    call that had to be waited for was, so it only has to exit, which takes ~10 ms that the run
    need not spend. One that never wrote (an early start nobody took) is killed: it may still be
    importing MLflow, and it has nothing to finish."""
    _exiting[:] = [p for p in _exiting if p.poll() is None]
    if used is not None and not used.get("used"):
        proc.kill()
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.write(b'{"op": "exit"}\n')
    for f in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError, ValueError):
            f.close()
    log.close()
    if used is not None and used.get("used"):
        _exiting.append(proc)
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the writer process ---


def _open_writer(spec: Mapping[str, Any]) -> tuple[Any, dict]:
    """The writer a spec names, and what its first reply says of it."""
    if spec.get("kind", "mlflow") == "tensorboard":
        from .tensorboard_writer import TensorBoardWriter

        tb = TensorBoardWriter(spec.get("log_dir"), flush_secs=spec.get("flush_secs", 30))
        return tb, {"log_dir": spec.get("log_dir")}
    writer = MLflowWriter(
        spec.get("uri"),
        experiment=spec.get("experiment"),
        option=spec.get("option", "--mlflow-uri"),
    )
    return writer, {"uri": writer.uri}


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a writer per spec (a JSON list of specs; one spec alone is a list of one) on
    stdin/stdout: one JSON request a line, `{"to": kind, "op", "args", "kw", "id"}`; a reply
    `{"to", "id", "ok", "value"}` for each request with an id, and `{"to", "id": null, "error"}`
    for a failure of one without. The first line out for each writer says whether it opened (id
    0). Ends on "exit" or end of input (the training process is gone: a run left open is marked
    KILLED)."""
    specs = json.loads((sys.argv[1:] if argv is None else argv)[0])
    specs = [specs] if isinstance(specs, Mapping) else specs
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not break the protocol

    def send(**msg) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    writers: dict[str, Any] = {}
    for spec in specs:
        kind = spec.get("kind", "mlflow")
        try:
            writers[kind], opened = _open_writer(spec)
        except Exception as e:  # noqa: BLE001 - reported to the training process
            send(
                to=kind,
                id=0,
                error=str(e) if isinstance(e, ConfigError) else one_line(e),
                config=isinstance(e, ConfigError),
            )
        else:
            send(to=kind, id=0, ok=True, value=opened)
    if not writers:
        return 2
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["op"] == "exit":
            if "tensorboard" in writers:  # events still queued reach the file (MLflow's are
                writers["tensorboard"].close()  # committed before their reply)
            return 0
        kind = msg.get("to", "mlflow")
        try:
            writer = writers.get(kind)
            if writer is None:
                raise MlreproError(f"no {kind} writer in this process (it did not open)")
            value = getattr(writer, msg["op"])(*msg.get("args", ()), **msg.get("kw", {}))
        except Exception as e:  # noqa: BLE001 - reported to the training process
            send(to=kind, id=msg.get("id"), error=one_line(e))
        else:
            if msg.get("id") is not None:
                send(to=kind, id=msg["id"], ok=True, value=value)
    for writer in writers.values():
        with contextlib.suppress(Exception):
            writer.close("KILLED")
    return 0


if __name__ == "__main__":
    code = main()
    # Every write was committed before its reply (or before "exit" was read). Python's own teardown
    # with MLflow and SQLAlchemy loaded takes 0.5-1 s more, and the run waits for this process to
    # end: skip it.
    for stream in (sys.stdout, sys.stderr, sys.__stdout__):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)

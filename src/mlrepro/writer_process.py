"""The writer process of both trackers, importable without torch.

`main()` serves an `mlflow_writer.MLflowWriter` or a `tensorboard_writer.TensorBoardWriter` over a
pipe (JSON lines in, JSON lines out) in a process of its own. `tracking.MLflowTracker` and
`tracking.TensorBoardTracker` start one each, so that importing MLflow (≈ 2 s of CPU with its SQL
store) or TensorBoard (0.2-0.3 s), opening the store and every write happen beside the training
process instead of in it: where a core is free, tracking costs the run the messages only.

Run:   python -m mlrepro.writer_process '{"kind": "mlflow", "uri": "sqlite:///runs/mlflow.db"}'
       python -m mlrepro.writer_process '{"kind": "tensorboard", "log_dir": "logs"}'
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .mlflow_writer import MLflowWriter, check_uri, one_line, resolve_mlflow_uri


def spawn_writer(spec: Mapping[str, Any]) -> tuple[subprocess.Popen, Any]:
    """Start `python -m mlrepro.writer_process SPEC`: (the process, the file holding its stderr).
    `spec` is `{"kind": "mlflow", "uri", "experiment", "option"}` or `{"kind": "tensorboard",
    "log_dir", "flush_secs"}`; the writer says on its first output line whether it opened (`main`).
    """
    src = str(Path(__file__).resolve().parents[1])  # the writer imports this very mlrepro
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the writer's stderr, kept open with it
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlrepro.writer_process", json.dumps(dict(spec))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        start_new_session=True,
    )  # Ctrl-C reaches the run, which then closes its tracked run
    return proc, log


def mlflow_spec(uri: str | None, experiment: str | None = None, option: str = "--mlflow-uri"):
    """The `spawn_writer` spec of an MLflow writer."""
    return {"kind": "mlflow", "uri": uri, "experiment": experiment, "option": option}


TENSORBOARD_SPEC = {"kind": "tensorboard", "log_dir": None, "flush_secs": 30}  # a run's writer


# Writers started before the command imported torch, waiting for their tracker (by spec).
_early: dict[str, tuple[subprocess.Popen, Any]] = {}


def start_early(
    track: str | None, mlflow_uri: str | None = None, out: str | os.PathLike = "runs"
) -> None:
    """Start the writers of `--track … --mlflow-uri …` now, before the command imports torch
    (≈ 2 s), so that their own start-up (importing MLflow and opening the store: ≈ 2.5 s of CPU;
    importing TensorBoard: 0.2-0.3 s) runs beside it instead of after it; the run's trackers then
    take them over.

    Never raises and never starts a writer the tracker would refuse: an unknown kind, a missing
    extra or a bad URI is left to the tracker, which reports it as before. A writer nobody takes
    is stopped when Python exits."""
    kinds = [k.strip().lower() for k in (track or "").split(",")]
    specs = []
    try:
        if "tensorboard" in kinds and importlib.util.find_spec("tensorboard") is not None:
            specs.append(TENSORBOARD_SPEC)
        if "mlflow" in kinds and importlib.util.find_spec("mlflow") is not None:
            uri, option = resolve_mlflow_uri(mlflow_uri, out)
            if check_uri(uri, option):  # else a store only the writer can check: not early
                specs.append(mlflow_spec(uri, None, option))
    except (ConfigError, ValueError, OSError):
        pass
    for spec in specs:
        key = json.dumps(spec, sort_keys=True)
        if key not in _early:
            if not _early:
                atexit.register(_stop_early)
            _early[key] = spawn_writer(spec)


def take_early(spec: Mapping[str, Any]) -> tuple[subprocess.Popen, Any] | None:
    """The writer `start_early` started for this spec (once), if it still runs."""
    found = _early.pop(json.dumps(dict(spec), sort_keys=True), None)
    if found is not None and found[0].poll() is not None:
        return None  # it ended (the store could not be opened): a new one says why
    return found


def _stop_early() -> None:
    while _early:
        stop_writer(*_early.popitem()[1])


def stop_writer(proc: subprocess.Popen, log) -> None:
    """End a writer process: every call that had to be waited for was, so it only has to exit."""
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.write(b'{"op": "exit"}\n')
    for f in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError, ValueError):
            f.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


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
    """Serve an `MLflowWriter` or a `TensorBoardWriter` on stdin/stdout: one JSON request a line,
    `{"op", "args", "kw", "id"}`; a reply for each request with an id, and `{"id": null, "error"}`
    for a failure of one without. The first line out says whether the writer opened (id 0). Ends
    on "exit" or end of input (the training process is gone: a run left open is marked KILLED)."""
    spec = json.loads((sys.argv[1:] if argv is None else argv)[0])
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not break the protocol

    def send(**msg) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    try:
        writer, opened = _open_writer(spec)
    except Exception as e:  # noqa: BLE001 - reported to the training process
        send(
            id=0,
            error=str(e) if isinstance(e, ConfigError) else one_line(e),
            config=isinstance(e, ConfigError),
        )
        return 2
    send(id=0, ok=True, value=opened)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["op"] == "exit":
            if spec.get("kind") == "tensorboard":
                writer.close()  # events still queued reach the file (MLflow's are committed)
            return 0
        try:
            value = getattr(writer, msg["op"])(*msg.get("args", ()), **msg.get("kw", {}))
        except Exception as e:  # noqa: BLE001 - reported to the training process
            send(id=msg.get("id"), error=one_line(e))
        else:
            if msg.get("id") is not None:
                send(id=msg["id"], ok=True, value=value)
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

"""The MLflow side of tracking, importable without torch.

`MLflowWriter` makes every MLflow call of a tracked run. `mlrepro.writer_process` serves one in a
process of its own, beside the training process (`tracking.MLflowTracker` starts it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

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
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


@functools.cache
def git_commit(path: str | os.PathLike | None = None) -> tuple[str, bool] | None:
    """(HEAD, dirty) of the git checkout that tracks `path` (default: this package's source), or
    None where the source is not a checked-out file (an installed wheel) or git is missing."""
    target = Path(path) if path is not None else Path(__file__).with_name("__init__.py")
    where = target if target.is_dir() else target.parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

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
    tags = {
        "mlrepro.experiment": str(record.get("experiment")),
        "mlrepro.preset": str(record.get("preset") or "default"),
        "mlrepro.seed": str(record.get("seed")),
        "mlrepro.version": str(record.get("mlrepro", "")),
    }
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
    tags = {
        "mlrepro.data_dir": str(record.get("data_dir") or "bundled samples"),
        "mlrepro.data_sample": str(
            any(bool(p.get("sample")) for p in data.values() if isinstance(p, Mapping))
        ).lower(),
    }
    for split, prov in data.items():
        if isinstance(prov, Mapping):
            tags[f"mlrepro.data.{split}.format"] = str(prov.get("format") or prov.get("source"))
    return tags


def read_state(folder: str | os.PathLike | None) -> dict:
    """A folder's tracking.json ({} when it has none)."""
    if folder is None:
        return {}
    try:
        return json.loads((Path(folder) / STATE).read_text())
    except (OSError, ValueError):
        return {}


def write_state(folder: str | os.PathLike, key: str, value: Any) -> None:
    """Set `key` in a folder's tracking.json, atomically (temp file, fsync, rename)."""
    state = read_state(folder)
    if state.get(key) == value:
        return
    path = Path(folder) / STATE
    fd, tmp = tempfile.mkstemp(prefix=f".{STATE}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({**state, key: value}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def one_line(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text[:limit]}"


class MLflowWriter:
    """Every MLflow call of a tracked run: params, per-epoch metrics, end-of-run metrics,
    artifacts and tags; a sweep or a search as a parent run; a resumed run continued.

    Args:
        uri: the tracking URI (`sqlite:///…`, `http://host:5000`, `postgresql://…`); None: MLflow's
            own default ($MLFLOW_TRACKING_URI, else ./mlflow.db).
        experiment: the MLflow experiment for library use; in a run, the mlrepro experiment's name.
        option: what named the URI, for the error message of a store that can't be opened.
    """

    kind = "mlflow"

    def __init__(
        self, uri: str | None = None, *, experiment: str | None = None, option: str = "--mlflow-uri"
    ):
        MlflowClient = _import_mlflow()
        import mlflow

        self.option = option
        try:
            with _one_try():
                self.uri = uri or mlflow.get_tracking_uri()
                self.client = MlflowClient(tracking_uri=self.uri)
                self.client.search_experiments(max_results=1)  # reaches the store: fails here
        except Exception as e:  # noqa: BLE001 - MLflow, SQLAlchemy and HTTP raise many kinds
            raise ConfigError(f"{option}: cannot open {uri!r} ({one_line(e)})") from None
        self.experiment = experiment
        self._experiments: dict[str, str] = {}
        self.run_id: str | None = None
        self.parent_id: str | None = None
        self._group_owner = False
        self._reset()

    def _reset(self) -> None:
        self.run_id, self.run_dir, self.record = None, None, {}
        self._resume = False
        self._last: dict[str, int] = {}  # last step logged per metric (a resumed run skips them)
        self._params = []  # sent with the run's first metrics (one transaction fewer)

    # --- experiments and runs ---
    def _artifact_root(self) -> str | None:
        """Artifacts of a SQLite store go next to its file (MLflow's default is ./mlruns)."""
        if not self.uri.startswith("sqlite:///"):
            return None
        path = Path(self.uri[len("sqlite:///") :]).expanduser().absolute()
        return (path.parent / "mlartifacts").as_uri()

    def _experiment_id(self, name: str | None) -> str:
        if name is None:
            return "0"  # MLflow's Default experiment
        if name not in self._experiments:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                root = self._artifact_root()
                try:
                    self._experiments[name] = self.client.create_experiment(
                        name, artifact_location=f"{root}/{name}" if root else None
                    )
                    return self._experiments[name]
                except Exception:
                    found = self.client.get_experiment_by_name(name)  # made by another process
                    if found is None:
                        raise
            self._experiments[name] = found.experiment_id
        return self._experiments[name]

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
        saved = read_state(self.run_dir).get(self.kind, {}) if self.run_dir else {}
        if (
            self._resume
            and saved.get("run_id")
            and saved.get("tracking_uri") == self.uri
            and self._continue(saved["run_id"])
        ):
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
            self._params = self._param_list(self.record["config"])
        if self.run_dir is not None:
            write_state(
                self.run_dir,
                self.kind,
                {
                    "tracking_uri": self.uri,
                    "experiment_id": run.info.experiment_id,
                    "run_id": self.run_id,
                },
            )
        return self.run_id

    @staticmethod
    def _param_list(config: Mapping[str, Any]) -> list:
        from mlflow.entities import Param

        return [Param(k, str(v)[:6000]) for k, v in flatten(config).items()]

    def _log_params(self, run_id: str, config: Mapping[str, Any] | list) -> None:
        params = config if isinstance(config, list) else self._param_list(config)
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=params[i : i + 100])

    def _log_metrics(
        self,
        run_id: str,
        values: Mapping[str, float],
        step: int,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """One batch (one transaction): the metrics not logged at this step yet, the run's params
        on its first batch, and `tags`."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        todo = [Metric(k, v, now, step) for k, v in values.items() if step > self._last.get(k, -1)]
        params, self._params = self._params, []
        if len(params) > 100:  # MLflow takes 100 params per batch: these go on their own
            self._log_params(run_id, params)
            params = []
        tags = [RunTag(k, v) for k, v in (tags or {}).items()]
        for i in range(0, max(len(todo), 1), 900):  # MLflow takes 1000 entries per batch at most
            first = i == 0
            if todo[i : i + 900] or (first and (params or tags)):
                self.client.log_batch(
                    run_id,
                    metrics=todo[i : i + 900],
                    params=params if first else [],
                    tags=tags if first else [],
                )
        for m in todo:
            self._last[m.key] = step

    # --- the run ---
    def start(self, run_dir: str | os.PathLike, record: dict, *, resume: bool = False) -> None:
        self._reset()
        self.run_dir, self.record = Path(run_dir).absolute(), record
        self._resume = resume

    def log_epoch(self, stage, step, row) -> None:
        prefix = "epoch/" if stage is None else f"{stage}/epoch/"
        epoch = int(row.get("epoch", step))
        values = {prefix + k: v for k, v in numbers(row, skip=("epoch",)).items()}
        self._log_metrics(self._ensure_run(), values, epoch)

    def finish(self, metrics, headline=()) -> None:
        run_id = self._ensure_run()
        record = dict(self.record)
        if metrics.get("data"):
            record["data"] = metrics["data"]
        self._log_metrics(run_id, numbers(metrics), 0, tags=data_tags(record))
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
        saved = read_state(folder).get(self.kind, {})
        self._group_owner = owner
        self.parent_id = None
        if (
            saved.get("run_id")
            and saved.get("tracking_uri") == self.uri
            and (not owner or self._continue(saved["run_id"]))
        ):
            self.parent_id = saved["run_id"]
            return
        if not owner:
            return
        tags = {
            "mlrepro.experiment": str(record.get("experiment")),
            "mlrepro.preset": str(record.get("preset") or "default"),
            "mlrepro.group": str(record.get("group", "sweep")),
            "mlrepro.run_dir": str(folder),
        }
        if record.get("command"):
            tags["mlflow.source.name"] = str(record["command"])[:5000]
        code = git_commit()
        if code is not None:
            tags["mlflow.source.git.commit"] = code[0]
        run = self.client.create_run(
            self._experiment_id(record.get("experiment")), run_name=name, tags=tags
        )
        self.parent_id = run.info.run_id
        if record.get("config"):
            self._log_params(self.parent_id, record["config"])
        write_state(
            folder,
            self.kind,
            {
                "tracking_uri": self.uri,
                "experiment_id": run.info.experiment_id,
                "run_id": self.parent_id,
            },
        )

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


# --- where the store is, and the writer process ---


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


def check_uri(uri: str, option: str) -> bool:
    """Check a SQLite or HTTP tracking URI here, in milliseconds, without MLflow (ConfigError when
    it can't be used); False for other URIs, which the writer process checks by opening them."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{option}: cannot open {uri!r} ({why})")

    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :]).expanduser().absolute()
        if path.is_dir():
            raise bad(f"{path} is a folder; expected a database file")
        if path.exists():
            with open(path, "rb") as f:
                head = f.read(16)
            if head and head != b"SQLite format 3\x00":
                raise bad(f"{path} is not a SQLite database")
            if not os.access(path, os.R_OK | os.W_OK):
                raise bad(f"cannot write to {path}")
            return True
        probe = path.parent
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise bad(f"cannot create {path} (under {probe})")
        return True
    if uri.startswith(("http://", "https://")):
        import urllib.error  # here: 15 ms that a SQLite store need not cost the run
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10):
                pass
        except urllib.error.HTTPError:
            pass  # a server answered (a proxy or a login page may stand before MLflow's API)
        except (OSError, ValueError) as e:
            raise bad(one_line(e)) from None
        return True
    return False

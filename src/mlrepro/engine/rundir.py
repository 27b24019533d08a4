"""A run's folder: config.json, history.jsonl, metrics.json, plots/, checkpoint.pt.

Every write goes to a temporary file in the same folder and is then renamed over the target, so a
run killed at any moment (even with SIGKILL) leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

CONFIG = "config.json"
HISTORY = "history.jsonl"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(f)` on a temp file in the same folder, fsync, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(obj: Any) -> Any:
    """Tensors/numpy scalars to Python numbers; NaN/inf to None so the file stays valid JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_jsonable(obj), indent=indent, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, to_json(obj) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


class RunDir:
    """The folder that holds one run's evidence; safe to reopen for `--resume`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.plots = self.path / "plots"
        self.plots.mkdir(exist_ok=True)
        self._history: list[dict] | None = None

    @classmethod
    def new(cls, root: str | os.PathLike, name: str, seed: int) -> RunDir:
        """A fresh folder `root/name/YYYYmmdd-HHMMSS-s<seed>` (suffixed if it already exists)."""
        base = Path(root) / name / f"{time.strftime('%Y%m%d-%H%M%S')}-s{seed}"
        path, i = base, 1
        while True:
            try:
                path.mkdir(parents=True)
                return cls(path)
            except FileExistsError:
                i += 1
                path = base.with_name(f"{base.name}-{i}")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # --- config and metrics ---
    def write_config(self, config: dict) -> None:
        atomic_write_json(self.path / CONFIG, config)

    def read_config(self) -> dict:
        return json.loads((self.path / CONFIG).read_text())

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.path / METRICS, metrics)

    def read_metrics(self) -> dict:
        return json.loads((self.path / METRICS).read_text())

    def plot_path(self, name: str) -> Path:
        return self.plots / name

    # --- history: one JSON line per epoch, rewritten atomically (files are small) ---
    def history(self) -> list[dict]:
        if self._history is None:
            f = self.path / HISTORY
            self._history = (
                [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
                if f.exists()
                else []
            )
        return list(self._history)

    def write_history(self, rows: list[dict]) -> None:
        self._history = [dict(r) for r in rows]
        atomic_write_text(self.path / HISTORY, "".join(to_json(r, None) + "\n" for r in rows))

    def append_history(self, row: dict) -> None:
        self.write_history([*self.history(), row])

    # --- checkpoints ---
    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def save_checkpoint(self, state: dict) -> None:
        atomic_torch_save(state, self.checkpoint_path)

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict | None:
        """The last checkpoint, or None; loaded with weights_only=True (no arbitrary unpickling)."""
        if not self.checkpoint_path.exists():
            return None
        return torch.load(self.checkpoint_path, map_location=map_location, weights_only=True)

"""A run's folder: config.json, history.jsonl, metrics.json, plots/, checkpoint.pt.

Every write goes to a temporary file in the same folder and is then renamed over the target, so a
run killed at any moment (even with SIGKILL) leaves either the old or the new file, never half of
one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from ..io import (  # noqa: F401  (re-exported: the engine's public names)
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    to_json,
)

CONFIG = "config.json"
HISTORY = "history.jsonl"
STEPS = "steps.jsonl"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"
# What a checkpoint holds only to continue training (dropped once the run has finished).
_TRAINING_STATE = ("optimizer", "scheduler", "replay", "target", "generator", "rng")


class RunDir:
    """The folder that holds one run's evidence; safe to reopen for `--resume`.

    `RunDir(path)` opens a folder that exists and creates nothing (reading commands must never
    make paths); `RunDir.new` / `RunDir.create` make one. `plots/` is created on the first figure.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path} is not a folder")
        self.plots = self.path / "plots"
        self._history: list[dict] | None = None

    @classmethod
    def create(cls, path: str | os.PathLike) -> RunDir:
        """Make `path` (and its parents) and open it."""
        Path(path).mkdir(parents=True, exist_ok=True)
        return cls(path)

    @classmethod
    def new(cls, root: str | os.PathLike, name: str, seed: int, tag: str | None = None) -> RunDir:
        """A fresh folder `root/name/[TAG-]YYYYmmdd-HHMMSS-s<seed>` (suffixed if it exists)."""
        prefix = f"{tag}-" if tag else ""
        base = Path(root) / name / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}-s{seed}"
        path, i = base, 1
        base.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                path.mkdir()
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
        """Where a figure goes (plots/ is made on demand)."""
        self.plots.mkdir(exist_ok=True)
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

    # --- steps: running training loss and metrics a few dozen times per epoch (the curves within
    # an epoch). Appended, not rewritten: a torn last line is skipped on reading. ---
    def steps(self) -> list[dict]:
        f = self.path / STEPS
        if not f.exists():
            return []
        rows = []
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # the line a kill cut short
                continue
        return rows

    def append_steps(self, row: dict) -> None:
        with open(self.path / STEPS, "a") as f:
            f.write(to_json(row, None) + "\n")

    def write_steps(self, rows: list[dict]) -> None:
        atomic_write_text(self.path / STEPS, "".join(to_json(r, None) + "\n" for r in rows))

    # --- checkpoints: the last one only (one per stage when a run trains several networks) ---
    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def checkpoint_file(self, stage: str | None = None) -> Path:
        """checkpoint.pt, or checkpoint-STAGE.pt for a named stage."""
        return self.checkpoint_path if stage is None else self.path / f"checkpoint-{stage}.pt"

    def checkpoints(self) -> list[Path]:
        """Every checkpoint file in the folder."""
        return sorted(self.path.glob("checkpoint*.pt"))

    def save_checkpoint(
        self, state: dict, stage: str | None = None, keep_all: bool = False
    ) -> None:
        """Write the stage's checkpoint over the last one; with `keep_all`, also a copy per epoch
        (checkpoint[-STAGE]-eN.pt)."""
        atomic_torch_save(state, self.checkpoint_file(stage))
        if keep_all and "epoch" in state:
            base = self.checkpoint_file(stage)
            atomic_torch_save(state, base.with_name(f"{base.stem}-e{int(state['epoch'])}.pt"))

    def slim_checkpoints(self) -> int:
        """Once a run has finished, keep in each last checkpoint only what uses the trained model
        (weights, epoch, history, config): the optimizer, scheduler and replay state exist to
        continue training, which a finished run never does. Returns the bytes saved."""
        saved = 0
        for path in self.checkpoints():
            if (
                path.stem.rsplit("-", 1)[-1].startswith("e")
                and path.stem.rsplit("-", 1)[-1][1:].isdigit()
            ):
                continue  # --keep-checkpoints all: per-epoch copies stay whole
            before = path.stat().st_size
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state.get("finished"):
                continue
            state = {k: v for k, v in state.items() if k not in _TRAINING_STATE}
            if isinstance(state.get("agent"), dict):
                state["agent"] = {
                    k: v for k, v in state["agent"].items() if k not in _TRAINING_STATE
                }
            atomic_torch_save({**state, "finished": True}, path)
            saved += before - path.stat().st_size
        return saved

    def load_checkpoint(
        self, map_location: str | torch.device = "cpu", stage: str | None = None
    ) -> dict | None:
        """The stage's last checkpoint, or None; loaded with weights_only=True (no arbitrary
        unpickling)."""
        path = self.checkpoint_file(stage)
        if not path.exists():
            return None
        return torch.load(path, map_location=map_location, weights_only=True)

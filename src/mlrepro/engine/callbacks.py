"""Fixed callback events, `StopTraining`, and the standard callbacks.

Events, in order: on_fit_begin, (on_epoch_begin, (on_batch_begin, on_batch_end)*, on_epoch_end)*,
on_fit_end. Every hook receives the Learner; epoch/batch hooks also get the logs dict. A hook may
`raise StopTraining("why")` to end `fit` cleanly after the current event.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, TextIO

import torch

if TYPE_CHECKING:
    from .learner import Learner
    from .rundir import RunDir


class StopTraining(Exception):
    """Raised by a callback to end `fit` early; the message is kept as `learner.stop_reason`."""


class Callback:
    """Base class: override the events you need."""

    def on_fit_begin(self, learner: Learner) -> None: ...
    def on_epoch_begin(self, learner: Learner) -> None: ...
    def on_batch_begin(self, learner: Learner) -> None: ...
    def on_batch_end(self, learner: Learner, logs: dict) -> None: ...
    def on_epoch_end(self, learner: Learner, logs: dict) -> None: ...
    def on_fit_end(self, learner: Learner) -> None: ...


class History(Callback):
    """Per-epoch logs: `history.history["loss"]` is a list with one value per epoch (as in Keras)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    @property
    def history(self) -> dict[str, list]:
        keys = dict.fromkeys(k for r in self.rows for k in r if k != "epoch")
        return {k: [r.get(k) for r in self.rows] for k in keys}

    @property
    def epoch(self) -> list[int]:
        return [r["epoch"] for r in self.rows]

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        self.rows.append(dict(logs))

    def __repr__(self) -> str:
        return f"History(epochs={len(self.rows)}, keys={list(self.history)})"


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. `LambdaCallback(on_epoch_end=lambda l, logs: ...)`."""

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            if not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown event {name!r}")
            setattr(self, name, fn)


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "min"):
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best, self.wait = math.inf, 0

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        value = logs[self.monitor] * (1 if self.mode == "min" else -1)
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                raise StopTraining(f"{self.monitor} did not improve for {self.patience} epochs")


class RunLogger(Callback):
    """Writes each epoch's logs to the run folder's history.jsonl (atomically); with a `stage`, the
    rows are tagged with it (a run that trains several networks keeps one history)."""

    def __init__(self, run_dir: RunDir, stage: str | None = None):
        self.run_dir, self.stage = run_dir, stage

    def on_fit_begin(self, learner: Learner) -> None:
        # On resume, drop this stage's epochs logged after the checkpoint we restarted from.
        self.run_dir.write_history([r for r in self.run_dir.history()
                                    if r.get("stage") != self.stage or r["epoch"] <= learner.epoch])

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        self.run_dir.append_history(logs if self.stage is None else {**logs, "stage": self.stage})


class Checkpoint(Callback):
    """Saves {"model", "optimizer", "scheduler", "epoch", "rng", "history", "config"} every `every`
    epochs, over the previous one (the stage's own file when a `stage` is named)."""

    def __init__(self, run_dir: RunDir, config: dict | None = None, every: int = 1,
                 stage: str | None = None):
        self.run_dir, self.config, self.every, self.stage = run_dir, config, every, stage

    def _save(self, learner: Learner) -> None:
        self.run_dir.save_checkpoint({**learner.state_dict(), "config": self.config}, stage=self.stage)

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        # learner.epoch already counts the epoch that just ended.
        if learner.epoch % self.every == 0:
            self._save(learner)

    def on_fit_end(self, learner: Learner) -> None:
        if learner.epoch % self.every != 0:
            self._save(learner)


class LookaheadEMA(Callback):
    """Lookahead with an exponential moving average of the weights (hlb-cifar10 / airbench).

    From epoch `start_epoch` on, every `every` steps: ema ← ema + (1 − ρ)(weights − ema), then the
    weights ← ema (the Lookahead "pull-back"), with ρ = decay^every · (step / total_steps)^power, so
    the average is weak early and strong at the end. Floating-point buffers (BN running statistics)
    are averaged with the parameters. At each epoch end the weights are set to the average.
    Written here because torch's `AveragedModel` keeps a separate copy and never writes it back.
    A resumed run continues the same average without it being checkpointed: at every epoch end the
    weights are the average, so a Learner restored from an epoch-end checkpoint rebuilds it exactly.
    """

    def __init__(self, every: int = 5, start_epoch: int = 3, decay: float = 0.95, power: float = 3.0):
        if every < 1 or start_epoch < 0 or not 0 <= decay <= 1:
            raise ValueError(f"LookaheadEMA needs every >= 1, start_epoch >= 0, 0 <= decay <= 1; got "
                             f"every={every}, start_epoch={start_epoch}, decay={decay}")
        self.every, self.start_epoch, self.decay, self.power = every, start_epoch, decay, power
        self.ema: dict | None = None

    def _tensors(self, learner: Learner) -> dict:
        return {k: v for k, v in learner.model.state_dict().items() if v.is_floating_point()}

    def _first_update_step(self, learner: Learner) -> int | None:
        """The global step of the first update (the one that starts the average), if it is known."""
        if learner.steps_per_epoch is None:
            return None
        first = self.start_epoch * learner.steps_per_epoch + 1
        return -(-first // self.every) * self.every

    def on_fit_begin(self, learner: Learner) -> None:
        self.ema = None
        first = self._first_update_step(learner)
        if first is not None and first <= learner.global_step:
            # Resumed after the average had started: it equals the restored weights (see above).
            self.ema = {k: v.detach().clone() for k, v in self._tensors(learner).items()}

    def on_batch_end(self, learner: Learner, logs: dict) -> None:
        if learner.epoch < self.start_epoch or learner.global_step % self.every:
            return
        weights = self._tensors(learner)
        if self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in weights.items()}
            return
        total = (learner.target_epochs or 1) * (learner.steps_per_epoch or 1)
        rho = self.decay ** self.every * min(learner.global_step / total, 1.0) ** self.power
        with torch.no_grad():
            for k, w in weights.items():
                self.ema[k].lerp_(w, 1 - rho)
                w.copy_(self.ema[k])

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        if self.ema is not None:
            with torch.no_grad():
                for k, w in self._tensors(learner).items():
                    w.copy_(self.ema[k])


def _fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


def format_logs(logs: dict, skip: tuple[str, ...] = ("epoch", "time_s", "lr")) -> str:
    return " - ".join(f"{k}: {v:.4g}" for k, v in logs.items()
                      if k not in skip and isinstance(v, (int, float)))


class ProgressBar(Callback):
    """A live bar with ETA and running metrics on a terminal; one Keras-like line per epoch.

    Written here rather than with tqdm because the per-epoch summary must match the History keys
    exactly and logs (non-terminal output) must get one clean line per epoch, not carriage returns.
    """

    def __init__(self, stream: TextIO | None = None, refresh_s: float = 0.25, width: int = 24):
        self.stream = stream if stream is not None else sys.stderr
        self.refresh_s, self.width = refresh_s, width
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_epoch_begin(self, learner: Learner) -> None:
        self.start = self.last = time.perf_counter()
        self.step = 0
        self.total = learner.steps_per_epoch

    def on_batch_end(self, learner: Learner, logs: dict) -> None:
        self.step += 1
        now = time.perf_counter()
        if not self.live or now - self.last < self.refresh_s:
            return
        self.last = now
        elapsed = now - self.start
        if self.total:
            done = self.step / self.total
            filled = int(self.width * done)
            bar = "=" * filled + (">" if filled < self.width else "") + "." * (self.width - filled - 1)
            eta = elapsed / done - elapsed
            head = f"{self.step}/{self.total} [{bar}] {_fmt_time(elapsed)}<{_fmt_time(eta)}"
        else:
            head = f"{self.step} {_fmt_time(elapsed)}"
        running = format_logs(learner.running_logs())
        self.stream.write(f"\r{learner.epoch + 1}/{learner.target_epochs} {head} - {running}\x1b[K")
        self.stream.flush()

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        prefix = "\r" if self.live else ""
        line = f"Epoch {logs['epoch']}/{learner.target_epochs} - {logs.get('time_s', 0):.1f}s"
        rest = format_logs(logs)
        self.stream.write(f"{prefix}{line}{' - ' + rest if rest else ''}\x1b[K\n" if self.live
                          else f"{line}{' - ' + rest if rest else ''}\n")
        self.stream.flush()

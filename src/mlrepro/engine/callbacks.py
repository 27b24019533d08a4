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

from .progress import Progress

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
    """Per-epoch logs: `history.history["loss"]` is a list with one value per epoch
    (as in Keras)."""

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

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "min",
    ):
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
    """Writes each epoch's logs to the run folder's history.jsonl (atomically), and the running
    training loss and metrics about `points_per_epoch` times per epoch to steps.jsonl (the curves
    within an epoch). With a `stage`, rows are tagged with it (a run that trains several networks
    keeps one history)."""

    def __init__(self, run_dir: RunDir, stage: str | None = None, points_per_epoch: int = 20):
        self.run_dir, self.stage, self.points_per_epoch = run_dir, stage, points_per_epoch

    def _tag(self, row: dict) -> dict:
        return row if self.stage is None else {**row, "stage": self.stage}

    def on_fit_begin(self, learner: Learner) -> None:
        # On resume, drop this stage's rows logged after the checkpoint we restarted from.
        self.run_dir.write_history(
            [
                r
                for r in self.run_dir.history()
                if r.get("stage") != self.stage or r["epoch"] <= learner.epoch
            ]
        )
        steps = self.run_dir.steps()
        keep = [
            r for r in steps if r.get("stage") != self.stage or r["step"] <= learner.global_step
        ]
        if len(keep) != len(steps):
            self.run_dir.write_steps(keep)
        per_epoch = learner.steps_per_epoch or 0
        self.every = max(1, per_epoch // self.points_per_epoch) if per_epoch else 50

    def on_batch_end(self, learner: Learner, logs: dict) -> None:
        if learner.global_step % self.every == 0:
            per_epoch = learner.steps_per_epoch
            # global_step counts this batch; the epoch counter moves at the epoch's end.
            done = (
                (learner.global_step - learner.epoch * per_epoch) / per_epoch if per_epoch else 0.0
            )
            self.run_dir.append_steps(
                self._tag(
                    {
                        "step": learner.global_step,
                        "epoch": learner.epoch + done,
                        **learner.running_logs(),
                    }
                )
            )

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        self.run_dir.append_history(self._tag(logs))


class Checkpoint(Callback):
    """Saves {"model", "optimizer", "scheduler", "epoch", "rng", "history", "config"} every `every`
    epochs, over the previous one (the stage's own file when a `stage` is named)."""

    def __init__(
        self,
        run_dir: RunDir,
        config: dict | None = None,
        every: int = 1,
        stage: str | None = None,
        keep_all: bool = False,
    ):
        self.run_dir, self.config, self.every, self.stage = run_dir, config, every, stage
        self.keep_all = keep_all

    def _save(self, learner: Learner) -> None:
        self.run_dir.save_checkpoint(
            {**learner.state_dict(), "config": self.config},
            stage=self.stage,
            keep_all=self.keep_all,
        )

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

    def __init__(
        self, every: int = 5, start_epoch: int = 3, decay: float = 0.95, power: float = 3.0
    ):
        if every < 1 or start_epoch < 0 or not 0 <= decay <= 1:
            raise ValueError(
                f"LookaheadEMA needs every >= 1, start_epoch >= 0, 0 <= decay <= 1; got "
                f"every={every}, start_epoch={start_epoch}, decay={decay}"
            )
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
        rho = self.decay**self.every * min(learner.global_step / total, 1.0) ** self.power
        with torch.no_grad():
            for k, w in weights.items():
                self.ema[k].lerp_(w, 1 - rho)
                w.copy_(self.ema[k])

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        if self.ema is not None:
            with torch.no_grad():
                for k, w in self._tensors(learner).items():
                    w.copy_(self.ema[k])


def format_logs(logs: dict, skip: tuple[str, ...] = ("epoch", "time_s", "lr")) -> str:
    return " - ".join(
        f"{k}: {v:.4g}" for k, v in logs.items() if k not in skip and isinstance(v, (int, float))
    )


class ProgressBar(Callback):
    """Training progress (engine.progress.Progress): on a terminal a live bar with rate, ETA and the
    running metrics; elsewhere one line every `every_s` seconds within an epoch; and one Keras-like
    line per epoch either way."""

    def __init__(
        self,
        stream: TextIO | None = None,
        refresh_s: float = 0.25,
        every_s: float = 30.0,
        live: bool | None = None,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.refresh_s, self.every_s = refresh_s, every_s
        self.live = (
            live  # None: live exactly when the stream is a terminal; False: epoch lines only
        )
        self.bar: Progress | None = None

    def on_fit_begin(self, learner: Learner) -> None:
        learner.report_progress = True  # its evaluations (validation, the final test) report too

    def on_epoch_begin(self, learner: Learner) -> None:
        self.bar = Progress(
            learner.steps_per_epoch,
            f"{learner.epoch + 1}/{learner.target_epochs}",
            unit="batch",
            stream=self.stream,
            every_s=self.every_s,
            refresh_s=self.refresh_s,
        )
        if self.live is False:
            self.bar.live, self.bar.every_s = False, float("inf")

    def on_batch_end(self, learner: Learner, logs: dict) -> None:
        bar = self.bar
        if bar is None:
            return
        # Running metrics cost a device sync: computed only when a line is about to be written.
        due = time.perf_counter() - bar.last >= (bar.refresh_s if bar.live else bar.every_s)
        bar.update(1, format_logs(learner.running_logs()) if due else "")

    def on_epoch_end(self, learner: Learner, logs: dict) -> None:
        line = f"Epoch {logs['epoch']}/{learner.target_epochs} - {logs.get('time_s', 0):.1f}s"
        rest = format_logs(logs)
        final = f"{line}{' - ' + rest if rest else ''}"
        if self.bar is not None:
            self.bar.close(final)
        else:
            self.stream.write(final + "\n")
            self.stream.flush()

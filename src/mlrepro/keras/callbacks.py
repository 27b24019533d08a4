"""Keras-style callbacks (`on_epoch_end(epoch, logs)`, `self.model.stop_training = True`).

`fit` also accepts the engine's own callbacks (`mlrepro.engine.Callback`) unchanged; the Keras
ones are run by one engine callback, `KerasCallbacks`, so there is still only one training loop.
"""

from __future__ import annotations

import copy
import math

from ..engine import Callback as EngineCallback
from ..engine import StopTraining

# Engine log keys that Keras does not put in its logs.
_ENGINE_ONLY = ("epoch", "time_s", "lr")


class Callback:
    """Base class with Keras's hook names and signatures; `self.model` is the Sequential."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class History(Callback):
    """What `fit` returns: `history.history["val_accuracy"]` has one value per epoch."""

    def __init__(self):
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.sign = 1.0 if mode == "min" else -1.0
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.best_weights, self.stopped_epoch = math.inf, 0, None, 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor not in (logs or {}):
            raise KeyError(
                f"EarlyStopping: {self.monitor!r} is not in the logs; "
                f"available: {', '.join(logs or {})}"
            )
        value = self.sign * logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = copy.deepcopy(self.model.net.state_dict())
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.net.load_state_dict(self.best_weights)


class LambdaCallback(Callback):
    """Callbacks from functions: `LambdaCallback(on_epoch_end=lambda epoch, logs: ...)`."""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not hasattr(Callback, name) or not name.startswith("on_"):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


class KerasCallbacks(EngineCallback):
    """Runs Keras-style callbacks from the engine's events (epochs counted from 0 or
    initial_epoch)."""

    def __init__(self, model, callbacks: list[Callback], params: dict):
        self.model, self.callbacks, self.params = model, callbacks, params
        for cb in callbacks:
            cb.set_model(model)
            cb.set_params(params)
        # Per-batch hooks cost a device sync for the loss; call them only where overridden.
        self.batch_callbacks = [
            cb
            for cb in callbacks
            if type(cb).on_train_batch_end is not Callback.on_train_batch_end
            or type(cb).on_train_batch_begin is not Callback.on_train_batch_begin
            or "on_train_batch_end" in vars(cb)
            or "on_train_batch_begin" in vars(cb)
        ]
        self.first_epoch = 0

    def on_fit_begin(self, learner):
        # Keras numbers epochs from initial_epoch within each fit() call.
        self.first_epoch = learner.epoch - self.params.get("initial_epoch", 0)
        for cb in self.callbacks:
            cb.on_train_begin({})

    def on_epoch_begin(self, learner):
        self.batch = 0
        for cb in self.callbacks:
            cb.on_epoch_begin(learner.epoch - self.first_epoch, {})

    def on_batch_begin(self, learner):
        for cb in self.batch_callbacks:
            cb.on_train_batch_begin(self.batch, {})

    def on_batch_end(self, learner, logs):
        if self.batch_callbacks:
            batch_logs = {"loss": float(logs["loss"])}
            for cb in self.batch_callbacks:
                cb.on_train_batch_end(self.batch, batch_logs)
        self.batch += 1
        if self.model.stop_training:
            raise StopTraining("model.stop_training was set by a callback")

    def on_epoch_end(self, learner, logs):
        keras_logs = {k: v for k, v in logs.items() if k not in _ENGINE_ONLY}
        for cb in self.callbacks:
            cb.on_epoch_end(learner.epoch - 1 - self.first_epoch, keras_logs)
        if self.model.stop_training:
            raise StopTraining("model.stop_training was set by a callback")

    def on_fit_end(self, learner):
        for cb in self.callbacks:
            cb.on_train_end({})


__all__ = ["Callback", "EarlyStopping", "History", "KerasCallbacks", "LambdaCallback"]

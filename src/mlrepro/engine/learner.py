"""The training loop: `fit`, `evaluate`, `predict`, with a train step readable as plain PyTorch."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import distributed as dist
from torch import nn

from .callbacks import Callback, History, StopTraining
from .progress import Progress
from .runtime import get_rng_state, resolve_device, resolve_precision, set_rng_state

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# compute_loss(model, x, y) -> (loss, outputs); model is the one to train through
# (DDP under torchrun)
LossHook = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# transform_input(model, x, y) -> x, before the step (e.g. an attack: adversarial training)
InputHook = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy; targets may be class indices (B,) or one-hot/probabilities (B, C)."""
    if targets.ndim == outputs.ndim:
        targets = targets.argmax(dim=1)
    return (outputs.argmax(dim=1) == targets).float().mean()


METRICS: dict[str, Metric] = {"accuracy": accuracy, "acc": accuracy}


class Learner:
    """Trains `model` with `optimizer` on `loss_fn(outputs, targets)`.

    Data is any iterable of `(inputs, targets)` batches; if it has `set_epoch(epoch)` it is called
    before each epoch so shuffling is a function of (seed, epoch) and resuming is exact.

    Args:
        scheduler: a torch LR scheduler, stepped after every batch (`scheduler_interval="batch"`)
            or after every epoch (`"epoch"`).
        metrics: names from `METRICS` or `{name: fn(outputs, targets) -> scalar tensor}`.
        precision: "fp32", "bf16" (autocast on CPU and GPU) or "auto" (bf16 where the device runs
            it in hardware, see `runtime.native_bf16`); `self.precision` is the resolved one.
        channels_last: convnets on CPU and GPU run faster with NHWC memory layout.
        compute_loss: `fn(model, x, y) -> (loss, outputs)` in place of `loss_fn(model(x), y)`
            (Keras's `compute_loss`): a model whose loss needs more than its outputs (CapsNet's
            reconstruction) keeps DDP, clipping, precision and every callback.
        transform_input: `fn(model, x, y) -> x` applied to each training batch first (adversarial
            training: the attack); it gets the plain model, not the DDP wrapper.

    Under an initialised process group (torchrun) the train step runs through
    DistributedDataParallel (gradients averaged across processes) and logged loss and metrics are
    summed over all processes' samples; each process must be given its own shard of every batch.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        loss_fn: Callable | None = None,
        *,
        scheduler=None,
        scheduler_interval: str = "batch",
        metrics: Sequence[str] | dict[str, Metric] = (),
        device: str | torch.device | None = None,
        callbacks: Iterable[Callback] = (),
        precision: str = "fp32",
        channels_last: bool = False,
        grad_clip_norm: float | None = None,
        compute_loss: LossHook | None = None,
        transform_input: InputHook | None = None,
    ):
        if scheduler_interval not in ("batch", "epoch"):
            raise ValueError(
                f"scheduler_interval must be 'batch' or 'epoch', got {scheduler_interval!r}"
            )
        self.device = resolve_device(device)
        precision = resolve_precision(precision, self.device)  # also refuses unknown values
        self.channels_last = channels_last
        self.model = model.to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.world_size = (
            dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        )
        # `model` stays the plain module (checkpoints, evaluation); training goes through DDP.
        self.train_model = (
            self.model
            if self.world_size == 1
            else nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        )
        self.optimizer, self.loss_fn = optimizer, loss_fn
        self.compute_loss_fn, self.transform_input = compute_loss, transform_input
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval
        if not isinstance(metrics, dict):
            unknown = [m for m in metrics if m not in METRICS]
            if unknown:
                raise ValueError(f"unknown metric {unknown[0]!r}; valid: {', '.join(METRICS)}")
            metrics = {m: METRICS[m] for m in metrics}
        self.metrics = dict(metrics)
        self.callbacks = list(callbacks)
        self.precision, self.grad_clip_norm = precision, grad_clip_norm
        self.history = History()
        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.target_epochs = 0
        self.steps_per_epoch: int | None = None
        self.stop_reason: str | None = None
        self.max_steps: int | None = None
        self._running: dict[str, torch.Tensor] = {}
        self._count = 0
        self.report_progress = False  # evaluate() reports on stderr (a ProgressBar turns this on)

    # --- the step ---
    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def to_device(self, batch):
        x, y = batch
        return self.prepare_input(x), y.to(self.device, non_blocking=True)

    def _optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            raise ValueError("Learner: training needs an optimizer")
        return self.optimizer

    def compute_loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, outputs) of one batch: the `compute_loss` hook, else `loss_fn(model(x), y)`."""
        if self.compute_loss_fn is not None:
            return self.compute_loss_fn(model, x, y)
        if self.loss_fn is None:
            raise ValueError("Learner: training needs a loss_fn or a compute_loss hook")
        outputs = model(x)
        return self.loss_fn(outputs, y), outputs

    def train_step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimisation step; returns (loss, outputs, targets), detached."""
        x, y = self.to_device(batch)
        optimizer = self._optimizer()
        if self.transform_input is not None:
            x = self.transform_input(self.model, x, y)
        self.model.train()
        with self.autocast():
            loss, outputs = self.compute_loss(self.train_model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip_norm)
        optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        return loss.detach(), outputs.detach(), y

    # --- running metrics (kept as tensors: no device sync per batch) ---
    def _reset_running(self) -> None:
        self._running, self._count = {}, 0

    def _accumulate(self, loss, outputs, targets) -> None:
        n = len(targets)
        values = {"loss": loss.float()}
        values.update({k: fn(outputs.float(), targets).float() for k, fn in self.metrics.items()})
        for k, v in values.items():
            self._running[k] = self._running.get(k, 0) + v * n
        self._count += n

    def _sync_running(self) -> None:
        """Sum the running totals over all processes (one all_reduce per pass, not per batch)."""
        if self.world_size == 1:
            return
        keys = sorted(self._running)
        device = self.device if self.device.type == "cuda" else "cpu"  # gloo reduces CPU tensors
        totals = torch.stack(
            [torch.as_tensor(self._running[k], dtype=torch.float64).to(device) for k in keys]
            + [torch.tensor(float(self._count), dtype=torch.float64, device=device)]
        )
        dist.all_reduce(totals)
        self._running = {k: totals[i] for i, k in enumerate(keys)}
        self._count = int(totals[-1].item())

    def running_logs(self) -> dict[str, float]:
        """Mean loss and metrics over the batches seen so far in the current pass."""
        return {k: (v / max(self._count, 1)).item() for k, v in self._running.items()}

    def _emit(self, event: str, *args) -> None:
        for cb in self._active_callbacks:
            getattr(cb, event)(self, *args)

    # --- public API ---
    def fit(
        self,
        train_data: Iterable,
        epochs: int,
        *,
        val_data: Iterable | None = None,
        callbacks: Iterable[Callback] = (),
        max_steps: int | None = None,
    ) -> History:
        """Train until `epochs` epochs are completed in total (a restored Learner continues), or
        until `max_steps` optimizer steps in total: the epoch that reaches them ends there and is
        logged (validated, checkpointed) as the last one."""
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if self.optimizer is None or (self.loss_fn is None and self.compute_loss_fn is None):
            raise ValueError("Learner.fit needs an optimizer and a loss_fn (or compute_loss)")
        self._active_callbacks = [self.history, *self.callbacks, *callbacks]
        self.target_epochs = epochs
        self.stop_reason = None
        self.max_steps = max_steps
        try:
            self.steps_per_epoch = len(train_data)  # type: ignore[arg-type]
        except TypeError:
            self.steps_per_epoch = None
        self._check_schedule_length(epochs)
        try:
            self._emit("on_fit_begin")
            while self.epoch < epochs:
                if self._steps_done():
                    self.stop_reason = f"reached max_steps ({max_steps})"
                    break
                self._run_epoch(train_data, val_data)
        except StopTraining as stop:
            self.stop_reason = str(stop) or "stopped by a callback"
        self._emit("on_fit_end")
        return self.history

    def _check_schedule_length(self, epochs: int) -> None:
        """Fail before training, not mid-run, when a fixed-length schedule (OneCycleLR) is too
        short."""
        total = getattr(self.scheduler, "total_steps", None)
        if total is None or self.steps_per_epoch is None:
            return
        per_epoch = self.steps_per_epoch if self.scheduler_interval == "batch" else 1
        needed = (epochs - self.epoch) * per_epoch
        if self.max_steps is not None and self.scheduler_interval == "batch":
            needed = min(needed, max(0, self.max_steps - self.global_step))
        left = total - self.scheduler.last_epoch
        if needed > left:
            raise ValueError(
                f"{type(self.scheduler).__name__} has {left} of its {total} steps left, "
                "but training to "
                f"epoch {epochs} from epoch {self.epoch} needs {needed}; build it with "
                f"total_steps = epochs × steps_per_epoch ({epochs} × {self.steps_per_epoch})"
                + ("" if self.max_steps is None else f" or max_steps ({self.max_steps})")
            )

    def _steps_done(self) -> bool:
        return self.max_steps is not None and self.global_step >= self.max_steps

    def _run_epoch(self, train_data, val_data) -> None:
        if hasattr(train_data, "set_epoch"):
            train_data.set_epoch(self.epoch)
        self._reset_running()
        self._emit("on_epoch_begin")
        start = time.perf_counter()
        groups = self._optimizer().param_groups
        lr = groups[0]["lr"]
        for batch in train_data:
            self._emit("on_batch_begin")
            # The LR this step trains with: a per-batch scheduler steps inside train_step, and after
            # the last step of a fixed-length schedule (OneCycleLR) the group holds an extrapolated
            # value.
            lr = groups[0]["lr"]
            loss, outputs, targets = self.train_step(batch)
            self._accumulate(loss, outputs, targets)
            self.global_step += 1
            self._emit("on_batch_end", {"loss": loss})
            if self._steps_done():
                break  # the step budget ends mid-epoch: this (partial) epoch is the last one
        self._sync_running()
        logs = {"epoch": self.epoch + 1, **self.running_logs()}
        if any(math.isnan(v) for v in logs.values()):
            raise StopTraining(f"loss became NaN in epoch {self.epoch + 1}")
        logs["lr"] = lr  # the LR of the epoch's last step
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        if val_data is not None:
            logs.update({f"val_{k}": v for k, v in self.evaluate(val_data).items()})
        logs["time_s"] = time.perf_counter() - start
        self.epoch += 1
        self._emit("on_epoch_end", logs)

    @torch.inference_mode()
    def evaluate(self, data: Iterable) -> dict[str, float]:
        """Mean loss (if a loss_fn is set) and metrics over `data`, in eval mode."""
        self.model.eval()
        self._reset_running()
        try:
            total = len(data)  # type: ignore[arg-type]
        except TypeError:
            total = None
        bar = Progress(total, "evaluate", unit="batch", enabled=self.report_progress, every_s=30.0)
        for batch in data:
            bar.update()
            x, y = self.to_device(batch)
            with self.autocast():
                outputs = self.model(x)
                loss = (
                    self.loss_fn(outputs, y) if self.loss_fn else torch.zeros((), device=x.device)
                )
            self._accumulate(loss, outputs, y)
        bar.close()
        self._sync_running()
        logs = self.running_logs()
        if self.loss_fn is None:
            logs.pop("loss")
        return logs

    @torch.inference_mode()
    def predict(self, data: Iterable | torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Model outputs (float32, on CPU) for a tensor of inputs or an iterable of batches."""
        self.model.eval()
        if isinstance(data, torch.Tensor):
            tensor = data
            data = (tensor[i : i + batch_size] for i in range(0, len(tensor), batch_size))
        outs = []
        for batch in data:
            x = self.prepare_input(batch[0] if isinstance(batch, (tuple, list)) else batch)
            with self.autocast():
                outs.append(self.model(x).float().cpu())
        return torch.cat(outs)

    # --- checkpoints ---
    def state_dict(self) -> dict:
        """Everything needed to continue training exactly: model, optimizer, scheduler, epoch,
        RNG."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "rng": get_rng_state(),
            "history": self.history.rows,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state.get("global_step", 0))
        self.history.rows = [dict(r) for r in state.get("history", [])]
        set_rng_state(state["rng"])

"""`Sequential`: Keras's add / compile / fit / evaluate / predict / summary, trained by the engine.

The model is an `nn.Sequential` (`model.net`) built from the layers; `fit` wraps the arrays in a
`TensorLoader` and calls `Learner.fit`, so training, metrics, progress lines and callbacks are the
engine's, not a second loop.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..data.loader import TensorLoader
from ..engine import METRICS, Learner, ProgressBar
from ..engine import Callback as EngineCallback
from ..engine.rundir import atomic_torch_save
from ..engine.runtime import resolve_device
from . import losses as losses_mod
from . import optimizers as optimizers_mod
from .callbacks import Callback, History, KerasCallbacks
from .layers import ChannelsFirst, InputLayer, Layer, Shape

# Keras metric names → the engine's accuracy (it takes one-hot and integer labels alike).
METRIC_ALIASES = {
    "accuracy": "accuracy",
    "acc": "acc",
    "categorical_accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
}


def _as_float_inputs(x, where: str) -> torch.Tensor:
    """Arrays and tensors to float32 tensors (no copy for float32 NumPy arrays), as Keras feeds
    them."""
    if x is None:
        raise ValueError(f"{where}: x is required")
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, (np.ndarray, torch.Tensor)) else x)
    return t if t.dtype == torch.float32 else t.float()


def _as_labels(y, where: str) -> torch.Tensor:
    if y is None:
        raise ValueError(f"{where}: y is required (labels for the loss)")
    return torch.as_tensor(np.asarray(y) if not isinstance(y, (np.ndarray, torch.Tensor)) else y)


def _keras_metric(fn: Callable, softmax: bool) -> Callable:
    """A Keras metric function(y_true, y_pred) as an engine metric(outputs, targets); it sees
    probabilities, as in Keras, even when the final softmax was moved into the loss."""
    return lambda outputs, targets: fn(targets, outputs.softmax(-1) if softmax else outputs).mean()


class Sequential:
    """A linear stack of layers, used as in Keras:

        >>> from mlrepro.keras.layers import Dense
        >>> model = Sequential()
        >>> model.add(Dense(10, activation="softmax", input_shape=(784,)))
        >>> model.compile(
        ...     optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        ... )
        >>> model.count_params()
        7850

    Beyond Keras, `compile` takes `precision` ('fp32' or 'bf16' autocast), `channels_last`
    (conv weights in NHWC memory, the layout the inputs already have) and `device`.
    """

    def __init__(self, layers: Sequence[Layer] | None = None, name: str = "sequential"):
        self.name = name
        self._layers: list[Layer] = []
        self.net: nn.Sequential = nn.Sequential()
        self.stop_training = False
        self.history: History | None = None
        self._compiled: dict | None = None
        self._learner: Learner | None = None
        self._predictor: Learner | None = None
        for layer in layers or ():
            self.add(layer)

    # --- building ---
    @property
    def layers(self) -> list[Layer]:
        """The layers, without the Input marker (as Keras lists them)."""
        return [la for la in self._layers if not isinstance(la, InputLayer)]

    @property
    def input_shape(self) -> tuple | None:
        shape = self._layers[0].input_shape if self._layers else None
        return None if shape is None else (None, *shape)

    @property
    def output_shape(self) -> tuple | None:
        return (None, *self._layers[-1].output_shape) if self.built else None

    @property
    def built(self) -> bool:
        return bool(self._layers) and self._layers[-1].output_shape is not None

    def add(self, layer: Layer, input_shape: Sequence[int] | None = None) -> None:
        """Append a layer; with a known input shape it is built (and shape-checked) at once."""
        if not isinstance(layer, Layer):
            raise TypeError(
                "Only layers can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})"
            )
        if any(layer is la for la in self._layers):
            raise ValueError(f"Layer '{layer.name}' is already in this model; create a new layer.")
        if input_shape is not None:
            # The Keras post writes `model.add(Conv2D(...), input_shape=(28, 28, 1))`, which real
            # Keras rejects (add() takes only the layer); we read it as the layer's input_shape.
            layer.input_shape = tuple(input_shape)
        if (
            layer.input_shape is not None
            and self.built
            and tuple(layer.input_shape) != self._layers[-1].output_shape
        ):
            raise ValueError(
                f"Layer '{layer.name or type(layer).__name__}' was given input_shape="
                f"{tuple(layer.input_shape)}, but the previous layer '{self._layers[-1].name}' "
                f"outputs {(None, *self._layers[-1].output_shape)}; "
                "only the first layer needs input_shape."
            )
        if layer.name is None:
            layer.name = self._unique_name(layer.base_name)
        elif any(layer.name == la.name for la in self._layers):
            raise ValueError(
                f"All layers added to a Sequential model should have unique names. "
                f"Name '{layer.name}' is already the name of a layer in this model."
            )
        self._layers.append(layer)
        try:
            if self._layers[0].input_shape is not None:
                self._build_layers()
        except ValueError:
            self._layers.pop()
            raise

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self.layers:
            raise ValueError("There are no layers in the model.")
        layer = self._layers.pop()
        if self.built:
            self._build_layers()
        return layer

    def _unique_name(self, base: str) -> str:
        names = {la.name for la in self._layers}
        if base not in names:
            return base
        i = 1
        while f"{base}_{i}" in names:
            i += 1
        return f"{base}_{i}"

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Build for inputs of `input_shape`, with or without the batch axis: (None, 28, 28, 1)."""
        if not self._layers:
            raise ValueError("Sequential model has no layers to build.")
        if input_shape is not None:
            shape = tuple(input_shape)
            if shape and shape[0] is None:
                shape = shape[1:]
            self._layers[0].input_shape = shape
        if self._layers[0].input_shape is None:
            raise ValueError(
                "build() needs an input shape: give input_shape to the first layer "
                "or call build((None, *shape))."
            )
        self._build_layers()

    def _build_layers(self) -> None:
        shape: Shape = tuple(self._layers[0].input_shape)  # type: ignore[arg-type]
        previous = None
        for layer in self._layers:
            shape = layer.build(shape, previous)
            previous = layer
        items: list[tuple[str, nn.Module]] = []
        if (
            len(self._layers[0].input_shape) == 3
        ):  # images arrive channels-last, as Keras takes them
            items.append(("channels_first", ChannelsFirst()))
        for layer in self._layers:
            items += layer.named_torch_modules()
        self.net = nn.Sequential(OrderedDict(items))
        self._learner = self._predictor = (
            None  # a new stack needs a new optimizer (Keras: recompile)
        )

    def _ensure_built(self, x: torch.Tensor, where: str) -> None:
        if not self._layers:
            raise ValueError(f"{where}: the model has no layers; add() some first.")
        if not self.built:
            self.build((None, *x.shape[1:]))
        expected = tuple(self._layers[0].input_shape)
        if tuple(x.shape[1:]) != expected:
            hint = ""
            if x.ndim == 4 and tuple(x.shape[1:]) == (expected[2], expected[0], expected[1]):
                hint = (
                    " The data looks channels-first; Keras models take channels-last images: "
                    "np.moveaxis(x, 1, -1) or x.reshape(-1, *input_shape) for one channel."
                )
            raise ValueError(
                f"{where}: input 0 of layer '{self.layers[0].name}' is incompatible "
                f"with the layer: expected shape={(None, *expected)}, found shape="
                f"{(None, *x.shape[1:])}.{hint}"
            )

    # --- compiling ---
    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        metrics: Sequence | None = None,
        *,
        precision: str = "fp32",
        channels_last: bool = True,
        device: str = "auto",
    ) -> None:
        """Choose optimizer, loss and metrics by name or object, as Keras does."""
        if loss is None:
            raise ValueError(
                "compile() needs a loss, e.g. loss='categorical_crossentropy'; "
                f"valid names: {', '.join(map(repr, losses_mod.LOSSES))}"
            )
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"compile(): precision must be 'fp32' or 'bf16', got {precision!r}")
        self._compiled = {
            "optimizer": optimizers_mod.get(optimizer),
            "loss": losses_mod.get(loss),
            "metrics": self._resolve_metrics(metrics or []),
            "precision": precision,
            "channels_last": channels_last,
            "device": resolve_device(device),
        }
        self._learner = self._predictor = None

    @staticmethod
    def _resolve_metrics(metrics: Sequence) -> dict[str, str | Callable]:
        if isinstance(metrics, (str, bytes)) or not isinstance(metrics, Sequence):
            raise TypeError(f"metrics must be a list, e.g. metrics=['accuracy'], got {metrics!r}")
        out: dict[str, str | Callable] = {}
        for m in metrics:
            if isinstance(m, str):
                if m not in METRIC_ALIASES:
                    raise ValueError(
                        f"Unknown metric: {m!r}. Valid: {', '.join(map(repr, METRIC_ALIASES))}"
                    )
                out[m] = METRIC_ALIASES[m]
            elif callable(m):
                out[getattr(m, "__name__", "metric")] = m
            else:
                raise TypeError(f"Could not interpret metric: {m!r}")
        return out

    def _softmax_in_loss(self) -> bool:
        """True when the final softmax moves into the loss (see `mlrepro.keras.losses`)."""
        loss = self._compiled["loss"]
        return (
            loss.uses_softmax_logits
            and not loss.from_logits
            and len(self.net) > 0
            and isinstance(self.net[-1], nn.Softmax)
        )

    def learner(self) -> Learner:
        """The engine Learner that trains this model (made on first use after compile/build)."""
        if self._compiled is None:
            raise ValueError(
                "You must call compile() before using the model for fit() or evaluate()."
            )
        if not self.built:
            raise ValueError(
                "The model is not built yet: give input_shape to the first layer, call "
                "build(), or call fit() with data."
            )
        if self._learner is None:
            c = self._compiled
            self.net.to(c["device"])
            if c["channels_last"]:
                # conv weights as NHWC, like the inputs
                self.net.to(memory_format=torch.channels_last)
            strip = self._softmax_in_loss()
            train_net = self.net[:-1] if strip else self.net  # shares the layers' modules
            opt = c["optimizer"]
            if isinstance(opt, optimizers_mod.Optimizer):
                opt = opt.build(self.net.parameters())
            metrics = {
                name: METRICS[m] if isinstance(m, str) else _keras_metric(m, strip)
                for name, m in c["metrics"].items()
            }
            self._learner = Learner(
                train_net,
                opt,
                c["loss"].torch_fn(strip),
                metrics=metrics,
                device=c["device"],
                precision=c["precision"],
            )
            # Shuffling is a function of (this seed, epoch): drawn from torch's global RNG right
            # after the weights, so torch.manual_seed / set_random_seed fixes both, and a model
            # rebuilt the same way and restored from a checkpoint continues with the same batches.
            self._shuffle_seed = int(torch.randint(0, 2**31 - 1, ()))
        return self._learner

    # --- data ---
    def _arrays(self, x, y, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        xt = _as_float_inputs(x, where)
        self._ensure_built(xt, where)
        self.learner()  # fails early, before any label conversion, if compile() was not called
        yt = _as_labels(y, where)
        if len(xt) != len(yt):
            raise ValueError(
                f"{where}: data cardinality is ambiguous: x has {len(xt)} samples but y "
                f"has {len(yt)}. Make sure all arrays contain the same number of samples."
            )
        n_out = self.output_shape[-1]
        return xt, self._compiled["loss"].targets(yt, n_out, where)

    # --- training and inference ---
    def fit(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose="auto",
        callbacks: Sequence | None = None,
        validation_split: float = 0.0,
        validation_data: tuple | None = None,
        shuffle: bool = True,
        initial_epoch: int = 0,
    ) -> History:
        """Train for `epochs - initial_epoch` epochs; returns a History (also `model.history`)."""
        if not 0 <= initial_epoch < epochs:
            raise ValueError(
                f"fit: need 0 <= initial_epoch < epochs, got {initial_epoch} and {epochs}"
            )
        xt, yt = self._arrays(x, y, "fit")
        val = None
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            val = self._arrays(*validation_data, "fit(validation_data)")
        elif validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
            # As Keras: the last fraction of the data, taken before shuffling.
            split = int(len(xt) * (1 - validation_split))
            if split == 0 or split == len(xt):
                raise ValueError(
                    f"validation_split={validation_split} leaves an empty training or "
                    f"validation set for {len(xt)} samples"
                )
            xt, yt, val = xt[:split], yt[:split], (xt[split:], yt[split:])
        batch_size = batch_size or 32
        learner = self.learner()
        train = TensorLoader(
            xt, yt, batch_size, shuffle=shuffle, seed=self._shuffle_seed, device=learner.device
        )
        val_loader = (
            TensorLoader(*val, batch_size, device=learner.device) if val is not None else None
        )

        history = History()
        keras_cbs: list[Callback] = [history]
        engine_cbs: list[EngineCallback] = []
        for cb in callbacks or ():
            if isinstance(cb, Callback):
                keras_cbs.append(cb)
            elif isinstance(cb, EngineCallback):
                engine_cbs.append(cb)
            else:
                raise TypeError(f"callbacks must be Keras-style or engine callbacks, got {cb!r}")
        params = {
            "epochs": epochs,
            "steps": len(train),
            "verbose": verbose,
            "initial_epoch": initial_epoch,
        }
        # Keras-style callbacks last: when one sets stop_training, the engine's (run logs,
        # checkpoints) have already seen the epoch.
        cbs: list[EngineCallback] = [*engine_cbs, KerasCallbacks(self, keras_cbs, params)]
        if verbose:
            # verbose=2: one line per epoch only
            bar = ProgressBar(stream=sys.stdout, live=None if verbose in (1, "auto") else False)
            cbs.insert(0, bar)
        self.stop_training = False
        learner.fit(
            train, learner.epoch + epochs - initial_epoch, val_data=val_loader, callbacks=cbs
        )
        self.history = history
        return history

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        verbose="auto",
        return_dict: bool = False,
    ):
        """Loss, or [loss, *metrics] in compile order (a dict with return_dict=True)."""
        xt, yt = self._arrays(x, y, "evaluate")
        learner = self.learner()
        start = time.perf_counter()
        data = TensorLoader(xt, yt, batch_size or 32, device=learner.device)
        logs = learner.evaluate(data)
        if verbose:
            print(
                f"{len(data)}/{len(data)} - {time.perf_counter() - start:.1f}s - "
                + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()),
                file=sys.stdout,
                flush=True,
            )
        if return_dict:
            return logs
        values = [logs["loss"], *(logs[name] for name in self._compiled["metrics"])]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose=0) -> np.ndarray:
        """The model's outputs (probabilities after a softmax) as a NumPy array."""
        xt = _as_float_inputs(x, "predict")
        self._ensure_built(xt, "predict")
        if self._predictor is None:
            c = self._compiled or {"device": resolve_device("auto"), "precision": "fp32"}
            self._predictor = Learner(self.net, device=c["device"], precision=c["precision"])
        return self._predictor.predict(xt, batch_size=batch_size or 32).numpy()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass on a tensor (Keras layout), e.g. for export."""
        return self.net(x)

    # --- inspection and weights ---
    def count_params(self) -> int:
        """Number of weights, as Keras counts them."""
        if not self.built:
            raise ValueError("You tried to call count_params on a model that has not been built.")
        return sum(p.numel() for p in self.net.parameters())

    def summary(self, print_fn: Callable[[str], None] | None = None, line_length: int = 65) -> None:
        """Keras's table: layer (type), output shape, parameter count; then the totals."""
        if not self.built:
            raise ValueError(
                "This model has not yet been built. Build the model first by giving "
                "input_shape to the first layer, calling build(), or calling fit()."
            )
        print_fn = print_fn or print
        rows = [
            (
                f"{la.name} ({type(la).__name__})",
                str((None, *la.output_shape)),
                f"{la.count_params():,}",
            )
            for la in self.layers
        ]
        w1 = max(29, *(len(r[0]) + 2 for r in rows))
        w2 = max(26, *(len(r[1]) + 2 for r in rows))
        width = max(line_length, w1 + w2 + 12)

        def row(a, b, c):
            return f" {a:<{w1 - 1}}{b:<{w2}}{c}"

        lines = [
            f'Model: "{self.name}"',
            "_" * width,
            row("Layer (type)", "Output Shape", "Param #"),
            "=" * width,
        ]
        for i, r in enumerate(rows):
            lines += [row(*r), "_" * width if i < len(rows) - 1 else "=" * width]
        total = self.count_params()
        trainable = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        lines += [
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
            "_" * width,
        ]
        for line in lines:
            print_fn(line)

    def get_layer(self, name: str) -> Layer:
        """The layer called `name`."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name!r}. Existing layers: {[la.name for la in self.layers]}"
        )

    def save_weights(self, path: str) -> None:
        """The weights as a torch state_dict file (written atomically)."""
        atomic_torch_save(self.net.state_dict(), path)

    def load_weights(self, path: str) -> None:
        """Weights written by `save_weights` (loaded with weights_only=True)."""
        self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


__all__ = ["Sequential"]

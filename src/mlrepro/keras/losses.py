"""Keras losses by name or object, with label checks that say what was expected.

A model that ends in softmax, trained with (sparse_)categorical_crossentropy, is trained from the
logits under the softmax: `cross_entropy(logits)` is `log_softmax` in one stable step, while
`-log(softmax(z))` in float32 underflows to log(0) once a wrong class is confident enough, and
Keras's clip to [1e-7, 1 - 1e-7] then gives a zero gradient. Keras 2 on TensorFlow did the same
(it looked through the Softmax op for its input); the model's `predict` still returns probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

EPSILON = 1e-7  # Keras's backend.epsilon()


def _shape(y: torch.Tensor) -> tuple:
    return (None, *y.shape[1:]) if y.ndim else ()


class Loss:
    """Base class. `targets` validates and converts labels; `torch_fn` gives
    `fn(outputs, targets)`."""

    name = "loss"
    # True when the loss is best computed on the logits under a final softmax (see module
    # docstring).
    uses_softmax_logits = False

    def __init__(self, from_logits: bool = False):
        self.from_logits = from_logits

    def targets(self, y: torch.Tensor, n_out: int, where: str) -> torch.Tensor:
        return y.float()

    def torch_fn(
        self, softmax_stripped: bool
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot (or soft) labels of shape (None, classes)."""

    name = "categorical_crossentropy"
    uses_softmax_logits = True

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0):
        super().__init__(from_logits)
        self.label_smoothing = label_smoothing

    def targets(self, y, n_out, where):
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and n_out > 1):
            raise ValueError(
                f"{where}: loss '{self.name}' expects one-hot labels of shape (None, {n_out}), "
                "but y "
                f"has shape {_shape(y)} (integer class labels). Convert them with "
                f"to_categorical(y, {n_out}), or use loss='sparse_categorical_crossentropy'."
            )
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(
                f"{where}: loss '{self.name}' expects one-hot labels of shape "
                f"(None, {n_out}) to match the model's output, but y has shape {_shape(y)}."
            )
        return y.float()

    def torch_fn(self, softmax_stripped):
        smoothing = self.label_smoothing

        def categorical_crossentropy(outputs, targets):
            if smoothing:
                targets = targets * (1 - smoothing) + smoothing / targets.shape[1]
            if softmax_stripped or self.from_logits:
                # soft targets: -Σ y·log_softmax(z)
                return F.cross_entropy(outputs.float(), targets)
            # Outputs are probabilities from something other than softmax: Keras's formula.
            p = outputs.float()
            p = (p / p.sum(1, keepdim=True)).clamp(EPSILON, 1 - EPSILON)
            return -(targets * p.log()).sum(1).mean()

        return categorical_crossentropy


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer class labels of shape (None,) or (None, 1)."""

    name = "sparse_categorical_crossentropy"
    uses_softmax_logits = True

    def targets(self, y, n_out, where):
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            hint = (
                " It looks one-hot: use loss='categorical_crossentropy', or pass y.argmax(axis=1)."
                if y.ndim == 2 and y.shape[1] == n_out
                else ""
            )
            raise ValueError(
                f"{where}: loss '{self.name}' expects integer class labels of shape "
                f"(None,), but y has shape {_shape(y)}.{hint}"
            )
        if y.is_floating_point() and not torch.equal(y, y.round()):
            raise ValueError(
                f"{where}: loss '{self.name}' expects integer class labels, "
                "but y has non-integer values."
            )
        y = y.long()
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_out):
            raise ValueError(
                f"{where}: loss '{self.name}' expects labels in [0, {n_out}) for the "
                f"model's {n_out} outputs, but y ranges over [{int(y.min())}, {int(y.max())}]."
            )
        return y

    def torch_fn(self, softmax_stripped):
        def sparse_categorical_crossentropy(outputs, targets):
            if softmax_stripped or self.from_logits:
                return F.cross_entropy(outputs.float(), targets)
            p = outputs.float()
            p = (p / p.sum(1, keepdim=True)).clamp(EPSILON, 1 - EPSILON)
            return F.nll_loss(p.log(), targets)

        return sparse_categorical_crossentropy


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def targets(self, y, n_out, where):
        y = y.float()
        if y.ndim == 1 and n_out == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(
                f"{where}: loss '{self.name}' expects targets of shape (None, {n_out}) "
                f"like the model's output, but y has shape {_shape(y)}."
            )
        return y

    def torch_fn(self, softmax_stripped):
        return lambda outputs, targets: F.mse_loss(outputs.float(), targets)


class MeanAbsoluteError(MeanSquaredError):
    name = "mean_absolute_error"

    def torch_fn(self, softmax_stripped):
        return lambda outputs, targets: F.l1_loss(outputs.float(), targets)


class _FunctionLoss(Loss):
    """A plain function `fn(y_true, y_pred)` (Keras's argument order) on the model's outputs."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn, self.name = fn, getattr(fn, "__name__", "loss")

    def torch_fn(self, softmax_stripped):
        return lambda outputs, targets: self.fn(targets, outputs).mean()


LOSSES: dict[str, type[Loss]] = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
}


def get(identifier: str | Loss | Callable) -> Loss:
    """A loss from a name ('categorical_crossentropy'), a Loss object, or a
    function(y_true, y_pred)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in LOSSES:
            raise ValueError(f"Unknown loss: {identifier!r}. Valid: {', '.join(map(repr, LOSSES))}")
        return LOSSES[identifier]()
    if callable(identifier):
        return _FunctionLoss(identifier)
    raise TypeError(
        f"Could not interpret loss: {identifier!r}. Give a name "
        f"({', '.join(map(repr, LOSSES))}), a Loss object or a function(y_true, y_pred)."
    )


__all__ = [
    "LOSSES",
    "CategoricalCrossentropy",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "get",
]

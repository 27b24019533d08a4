"""`to_categorical` and `set_random_seed`, as in `keras.utils`."""

from __future__ import annotations

import numpy as np

from ..engine import seed_everything


def to_categorical(y, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """Integer class labels (N,) or (N, 1) → one-hot (N, num_classes)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"to_categorical expects integer labels of shape (N,), got {y.shape}")
    if y.size and (not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y))):
        raise ValueError("to_categorical expects integer labels")
    y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"to_categorical: labels must be in [0, {num_classes}), got [{y.min()}, {y.max()}]"
        )
    out = np.zeros((len(y), num_classes), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and torch: weight initialisation and shuffling become repeatable."""
    seed_everything(seed)


__all__ = ["set_random_seed", "to_categorical"]

"""`load_data()` as in `keras.datasets.mnist`."""

from __future__ import annotations

from ._common import load


def load_data(path: str | None = None):
    """((x_train, y_train), (x_test, y_test)): uint8 (N, 28, 28) images and uint8 (N,) labels."""
    return load("mnist", path)

from __future__ import annotations

import numpy as np

from ...data import load_dataset


def load(name: str, path: str | None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) as Keras returns them: uint8 (N, 28, 28) and uint8 (N,).

    `path` is a data folder (default: $MLREPRO_DATA); without the full files the small bundled
    sample is used, with a warning.
    """
    out = []
    for split in ("train", "test"):
        ds = load_dataset(name, split, path)
        out.append((ds.images[:, 0].numpy(), ds.labels.numpy().astype(np.uint8)))
    return out[0], out[1]

from __future__ import annotations

import numpy as np

from ...data import load_dataset


def load(
    name: str, path: str | None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) as Keras returns them: uint8 (N, 28, 28) and
    uint8 (N,).

    `path` is a data folder (default: $MLREPRO_DATA, else the user data folder). The small
    bundled sample stands in, with a warning, only when neither names a folder; a named folder
    without the full files is a DataError.
    """
    out = []
    for split in ("train", "test"):
        ds = load_dataset(name, split, path)
        out.append((ds.images[:, 0].numpy(), ds.labels.numpy().astype(np.uint8)))
    return out[0], out[1]

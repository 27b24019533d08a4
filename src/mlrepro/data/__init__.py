"""Datasets as whole uint8 tensors: real file formats, checksums, a cache, and bundled samples.

    >>> from mlrepro.data import load_dataset
    >>> train = load_dataset("mnist", "train")  # doctest: +SKIP
    >>> train.images.shape, train.labels.shape  # doctest: +SKIP
    (torch.Size([60000, 1, 28, 28]), torch.Size([60000]))
    >>> train.provenance_dict()["files"][0]["verified"]  # doctest: +SKIP
    True

The data folder is the `data_dir` argument, else $MLREPRO_DATA, else the user data folder
(~/.local/share/mlrepro). The small samples bundled with the package stand in only when neither
the argument nor $MLREPRO_DATA names a folder (and the user data folder lacks the files and none
can be downloaded); a named folder that lacks a split, or holds damaged files, is a DataError.
Each dataset records what it was read from (`ImageDataset.provenance`), and `verify_provenance`
checks such a record against the files on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from mlrepro.data.cifar10 import load_cifar10
from mlrepro.data.core import (
    ImageDataset,
    SampleDataWarning,
    cache_dir,
    locate_data_dir,
    resolve_data_dir,
)
from mlrepro.data.fashion_mnist import load_fashion_mnist
from mlrepro.data.idx import read_idx
from mlrepro.data.loader import TensorLoader
from mlrepro.data.mnist import load_mnist
from mlrepro.data.provenance import FileRecord, Provenance, verify_provenance
from mlrepro.errors import DataError

DATASETS: dict[str, Callable[..., ImageDataset]] = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
}


def load_dataset(
    name: str, split: str = "train", data_dir: str | os.PathLike | None = None, **kw
) -> ImageDataset:
    """Load a split of a dataset by name ("mnist", "fashion-mnist" or "cifar10")."""
    # Accept the spellings people type: fashion_mnist, FashionMNIST, cifar-10, CIFAR10.
    key = name.strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[key](split, data_dir, **kw)


__all__ = [
    "DATASETS",
    "FileRecord",
    "ImageDataset",
    "Provenance",
    "SampleDataWarning",
    "TensorLoader",
    "cache_dir",
    "load_cifar10",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "locate_data_dir",
    "read_idx",
    "resolve_data_dir",
    "verify_provenance",
]

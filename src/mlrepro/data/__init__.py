"""Datasets as whole uint8 tensors: real file formats, checksums, a cache, and bundled samples.

    >>> from mlrepro.data import load_dataset
    >>> train = load_dataset("mnist", "train")  # doctest: +SKIP
    >>> train.images.shape, train.labels.shape  # doctest: +SKIP
    (torch.Size([60000, 1, 28, 28]), torch.Size([60000]))
"""

from __future__ import annotations

import os
from collections.abc import Callable

from mlrepro.data.cifar10 import load_cifar10
from mlrepro.data.core import (
    ImageDataset,
    SampleDataWarning,
    cache_dir,
    resolve_data_dir,
)
from mlrepro.data.fashion_mnist import load_fashion_mnist
from mlrepro.data.idx import read_idx
from mlrepro.data.loader import TensorLoader
from mlrepro.data.mnist import load_mnist
from mlrepro.errors import DataError

DATASETS: dict[str, Callable[..., ImageDataset]] = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
}


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 **kw) -> ImageDataset:
    """Load a split of a dataset by name ("mnist", "fashion-mnist" or "cifar10")."""
    # Accept the spellings people type: fashion_mnist, FashionMNIST, cifar-10, CIFAR10.
    key = name.strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[key](split, data_dir, **kw)


__all__ = [
    "DATASETS",
    "ImageDataset",
    "SampleDataWarning",
    "TensorLoader",
    "cache_dir",
    "load_cifar10",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "resolve_data_dir",
]

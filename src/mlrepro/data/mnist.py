"""MNIST handwritten digits (LeCun, Cortes & Burges): 60,000 train / 10,000 test, 28x28 grey."""

from __future__ import annotations

import os

from mlrepro.data.core import ImageDataset
from mlrepro.data.idx import IdxDataset, load_idx_dataset

MNIST = IdxDataset(
    name="mnist",
    title="MNIST",
    # Our layout, files dropped straight into the data dir, and torchvision's download folder.
    folders=("mnist", "", "MNIST/raw"),
    classes=tuple("0123456789"),
    mean=(0.1307,),
    std=(0.3081,),
    sha256={
        "train-images-idx3-ubyte": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "train-labels-idx1-ubyte": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "t10k-images-idx3-ubyte": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "t10k-labels-idx1-ubyte": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
    # yann.lecun.com often refuses downloads, so the PyTorch mirror goes first.
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
)


def load_mnist(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    allow_sample: bool = True,
) -> ImageDataset:
    """Load an MNIST split as uint8 (N, 1, 28, 28) images and int64 labels."""
    return load_idx_dataset(MNIST, split, data_dir, download, allow_sample)

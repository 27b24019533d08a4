"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): Zalando product photos in MNIST's format."""

from __future__ import annotations

import os

from mlrepro.data.core import ImageDataset
from mlrepro.data.idx import IdxDataset, load_idx_dataset

FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    title="Fashion-MNIST",
    # Our layout and torchvision's download folder.
    folders=("fashion-mnist", "FashionMNIST/raw"),
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mean=(0.2860,),
    std=(0.3530,),
    sha256={
        "train-images-idx3-ubyte": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
)


def load_fashion_mnist(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    allow_sample: bool = True,
) -> ImageDataset:
    """Load a Fashion-MNIST split as uint8 (N, 1, 28, 28) images and int64 labels."""
    return load_idx_dataset(FASHION_MNIST, split, data_dir, download, allow_sample)

"""MultiMNIST (Sabour, Frosst & Hinton, 2017, section 6) and the pixel shifts it is built from.

Each image overlays two MNIST digits of different classes, each shifted by up to 4 px in each
direction on a 36×36 canvas; the two digits' bounding boxes overlap by about 80 % on average
(paper). Generation is a pure function of (seed, index range): batches are made on the fly, as
tensor ops, so an epoch of any length needs no storage and a resumed run sees the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from mlrepro.errors import DataError


def shift_images(
    x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, size: int | None = None
) -> torch.Tensor:
    """Move each image (N, C, H, W) by (dy, dx) px onto a size×size canvas of zeros, centred.

    With size = H the image keeps its frame (pixels shifted out are lost: shift augmentation);
    with size = H + 2·m the image is placed m + dy px from the top (MultiMNIST). One gather.
    """
    n, c, h, w = x.shape
    size = h if size is None else size
    m = (size - h) // 2  # canvas margin around the unshifted image
    p = m + int(max(dy.abs().max(), dx.abs().max())) if n else m
    padded = F.pad(x, (p, p + size - w - 2 * m, p, p + size - h - 2 * m))  # digit at [p, p + h)
    top = (p - m - dy).to(x.device)  # the window starts here, so the digit lands at m + dy
    left = (p - m - dx).to(x.device)
    rows = (top[:, None] + torch.arange(size, device=x.device))[:, None, :, None]  # (N, 1, S, 1)
    cols = (left[:, None] + torch.arange(size, device=x.device))[:, None, None, :]  # (N, 1, 1, S)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]  # (N, C, S, S)


@dataclass(frozen=True)
class RandomShift:
    """`TensorLoader` transform: shift every image by up to `max_px` px in x and y (paper: 2 px)."""

    max_px: int = 2

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.max_px <= 0:
            return x
        d = torch.randint(-self.max_px, self.max_px + 1, (2, len(x)), generator=gen)
        return shift_images(x, d[0], d[1])


def make_pairs(
    images: torch.Tensor,
    labels: torch.Tensor,
    index: torch.Tensor,
    gen: torch.Generator,
    max_shift: int = 4,
    size: int = 36,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Overlay images[index] on a random digit of another class, both shifted up to max_shift px.

    Returns (merged (N, 1, S, S), parts (N, 2, S, S), labels (N, 2)), all uint8 / int64; the merged
    image is the pixel sum clipped to 255.
    """
    first = labels[index]
    # The other digit: a class drawn uniformly from the 9 others, then an image of that class.
    other = (first + torch.randint(1, 10, first.shape, generator=gen)) % 10
    by_class = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=10)
    starts = torch.cumsum(counts, 0) - counts
    pick = (torch.rand(first.shape, generator=gen) * counts[other]).long()
    second = by_class[starts[other] + pick]
    shifts = torch.randint(-max_shift, max_shift + 1, (4, len(index)), generator=gen)
    a = shift_images(images[index], shifts[0], shifts[1], size)  # (N, 1, S, S)
    b = shift_images(images[second], shifts[2], shifts[3], size)
    merged = (a.to(torch.int16) + b).clamp_(max=255).to(torch.uint8)
    return merged, torch.cat([a, b], 1), torch.stack([first, labels[second]], 1)


class MultiMnistLoader:
    """Batches of MultiMNIST made on the fly from an MNIST split, deterministic in (seed, epoch).

    Yields (x, labels (B, 2)) with x float in [0, 1]: (B, 1, 36, 36) merged images, or with
    `with_parts` (B, 3, 36, 36) = merged, first digit alone, second digit alone (the targets of
    the two reconstructions). Every epoch pairs each base image once as the first digit (in a
    random order if `shuffle`), `pairs_per_image` times; a fixed test set is `shuffle=False`.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        pairs_per_image: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        with_parts: bool = False,
        max_shift: int = 4,
        size: int = 36,
        device: str | torch.device = "cpu",
    ):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 1:
            raise DataError(
                f"MultiMNIST needs uint8 (N, 1, H, W) digits, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if len(torch.unique(labels)) < 10:
            raise DataError("MultiMNIST needs digits of all 10 classes to pair different classes")
        if size < images.shape[-1] + 2 * max_shift:
            raise DataError(
                f"a {size}×{size} canvas cannot hold a {images.shape[-1]}-px digit "
                f"shifted by {max_shift} px"
            )
        self.images, self.labels = images, labels
        self.batch_size, self.pairs_per_image, self.seed = batch_size, pairs_per_image, seed
        self.shuffle, self.with_parts, self.max_shift, self.size = (
            shuffle,
            with_parts,
            max_shift,
            size,
        )
        self.device, self.epoch = torch.device(device), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.pairs_per_image * -(-len(self.images) // self.batch_size)

    def __iter__(self):
        gen = torch.Generator().manual_seed(
            self.seed * 1_000_003 + (self.epoch if self.shuffle else 0)
        )
        n = len(self.images)
        for _ in range(self.pairs_per_image):  # one pass over the base digits per repeat
            order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
            for i in range(0, n, self.batch_size):
                merged, parts, pair_labels = make_pairs(
                    self.images,
                    self.labels,
                    order[i : i + self.batch_size],
                    gen,
                    self.max_shift,
                    self.size,
                )
                x = torch.cat([merged, parts], 1) if self.with_parts else merged
                yield x.to(self.device).float().div_(255), pair_labels.to(self.device)

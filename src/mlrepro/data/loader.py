"""Batches from whole-dataset tensors: slicing, normalisation and augmentation as tensor ops.

A torch DataLoader would index one sample at a time in Python and collate; with the whole dataset
already a uint8 tensor, one fancy-index per batch is an order of magnitude cheaper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class TensorLoader:
    """Iterates `(inputs, labels)` batches over uint8 images (N, C, H, W) or float features.

    Shuffling (and `transform`'s randomness) comes from a generator seeded with (seed, epoch), so
    epoch e yields the same batches whether or not training was interrupted before it.

    Args:
        mean, std: per-channel statistics on the [0, 1] scale; uint8 inputs are scaled by 1/255
            and then normalised. Leave None to keep [0, 1] (attacks want that).
        transform: `fn(batch, generator) -> batch`, applied to the float batch (augmentation).
        augment: `fn(batch, generator) -> batch`, applied to the raw (uint8) batch before scaling,
            e.g. `mlrepro.data.augment.CifarAugment` (cheaper on 1-byte pixels).
        device: where batches are produced; the data is moved there once.
        rank, world_size: for data-parallel training each of `world_size` processes gets its own
            contiguous 1/world_size part of every batch of `batch_size` (the global batch), so the
            processes together see exactly the batches one process would.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        transform: Transform | None = None,
        augment: Transform | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        rank: int = 0,
        world_size: int = 1,
    ):
        if len(inputs) != len(labels):
            raise ValueError(f"TensorLoader: {len(inputs)} inputs but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"TensorLoader: batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size or batch_size % world_size:
            raise ValueError(
                f"TensorLoader: rank {rank} of world_size {world_size} needs 0 <= rank < "
                f"world_size and batch_size ({batch_size}) divisible by world_size"
            )
        self.device = torch.device(device)
        self.inputs, self.labels = inputs.to(self.device), labels.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.epoch, self.transform, self.dtype = seed, 0, transform, dtype
        self.augment, self.rank, self.world_size = augment, rank, world_size
        shape = (1, -1) + (1,) * (inputs.ndim - 2)
        self.mean = (
            None
            if mean is None
            else torch.tensor(mean, dtype=dtype, device=self.device).view(shape)
        )
        self.std = (
            None if std is None else torch.tensor(std, dtype=dtype, device=self.device).view(shape)
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.inputs)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _generator(self) -> torch.Generator:
        # Generators for index ops live on the CPU; the permutation is moved once per epoch.
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 → float in [0, 1] → normalised; float inputs are only normalised."""
        x = x.to(self.dtype).div_(255) if x.dtype == torch.uint8 else x.to(self.dtype)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return x

    def __iter__(self):
        n = len(self.inputs)
        gen = self._generator()
        order = torch.randperm(n, generator=gen).to(self.device) if self.shuffle else None
        stop = n - n % self.batch_size if self.drop_last else n
        for i in range(0, stop, self.batch_size):
            if order is None:
                x, y = self.inputs[i : i + self.batch_size], self.labels[i : i + self.batch_size]
            else:
                idx = order[i : i + self.batch_size]
                x, y = self.inputs[idx], self.labels[idx]
            if (
                self.augment is not None
            ):  # on the global batch, so every rank draws the same numbers
                x = self.augment(x, gen)
            if self.world_size > 1:
                part = -(-len(x) // self.world_size)
                x, y = (
                    x[self.rank * part : (self.rank + 1) * part],
                    y[self.rank * part : (self.rank + 1) * part],
                )
            x = self.preprocess(x)
            if self.transform is not None:
                x = self.transform(x, gen)
            yield x, y

"""CIFAR-style augmentation of a whole batch as tensor ops: random crop, horizontal flip, cutout.

Every function takes an image batch (N, C, H, W) of any dtype (uint8 stays uint8, so the data can
stay on the device in its compact form) and a CPU `torch.Generator`; random numbers are drawn on
the CPU from that generator and moved once, so a batch's augmentation is a function of the
generator's state on any device. No Python loop runs per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


def _rand(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen).to(device, non_blocking=True)


def _randint(high: int, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(high, (n,), generator=gen).to(device, non_blocking=True)


def random_crop(
    x: torch.Tensor, pad: int, gen: torch.Generator, pad_mode: str = "constant"
) -> torch.Tensor:
    """Pad by `pad` px on each side (zeros, or "reflect" as airbench), then cut an H×W window at a
    random offset per image."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode=pad_mode)  # (N, C, H + 2p, W + 2p)
    dy = _randint(2 * pad + 1, n, gen, x.device)
    dx = _randint(2 * pad + 1, n, gen, x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]  # one gather: (N, C, H, W)


def random_flip(x: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability p."""
    flip = (_rand(len(x), gen, x.device) < p)[:, None, None, None]
    return torch.where(flip, x.flip(3), x)


def cutout(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Zero one size×size square per image, centred anywhere in the image and clipped at its
    borders.

    As in DeVries & Taylor (2017): the centre is uniform over all pixels, so near an edge less
    than size² pixels are removed.
    """
    if size <= 0:
        return x
    n, _, h, w = x.shape
    cy = _randint(h, n, gen, x.device)[:, None]
    cx = _randint(w, n, gen, x.device)[:, None]
    lo = size // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_rows = (ys >= cy - lo) & (ys < cy - lo + size)  # (N, H)
    in_cols = (xs >= cx - lo) & (xs < cx - lo + size)  # (N, W)
    hole = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (N, 1, H, W)
    return x.masked_fill(hole, 0)


@dataclass(frozen=True)
class CifarAugment:
    """Crop with `crop_pad` px of padding, flip, then cutout: a `TensorLoader` augment.

    A frozen dataclass rather than a closure so it prints readably and pickles.
    """

    crop_pad: int = 4
    flip: bool = True
    cutout: int = 0
    pad_mode: str = "constant"  # or "reflect"

    def __post_init__(self):
        if self.pad_mode not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {self.pad_mode!r}")

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x = random_crop(x, self.crop_pad, gen, self.pad_mode)
        if self.flip:
            x = random_flip(x, gen)
        return cutout(x, self.cutout, gen)

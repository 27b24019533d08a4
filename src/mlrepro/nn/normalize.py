"""A model's first layer that normalises [0, 1] pixels, so attacks and exports see plain pixels."""

from __future__ import annotations

import torch
from torch import nn


class Normalize(nn.Module):
    """(x - mean) / std per channel, for inputs (N, C, H, W) or channels-last (N, H, W, C)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean, std, channels_last: bool = False):
        super().__init__()
        shape = (1, 1, 1, -1) if channels_last else (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

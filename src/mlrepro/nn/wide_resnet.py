"""Wide Residual Networks (Zagoruyko & Komodakis, 2016) with pre-activation basic blocks.

WRN-d-k: depth d = 6n + 4 (n blocks per group), 3 groups of width 16k, 32k, 64k, stride 2 at the
start of groups 2 and 3. Follows the blog's PyTorch port, with its bugs fixed:
- `x2.add_(r)` and `nn.Dropout(inplace=True)` modified tensors in place; both happen to be safe for
  conv outputs today, but the residual sum is written out-of-place here so no future change to the
  block (e.g. an activation after conv2) can silently corrupt autograd's saved tensors.
- The projection shortcut re-normalised the input with a second BN-ReLU of its own; the paper (and
  the pre-activation ResNet) feeds the projection the block's own pre-activated input, as done here,
  with a 1×1 convolution (the paper's choice; the blog used 3×3).
- `learn.fit(lr, epochs, wds=5e-4 best_save_name=...)` lacks a comma (a syntax error) and starts at
  lr 0.01; the paper's recipe is lr 0.1, ×0.2 at epochs 60/120/160 (see the CIFAR experiments).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register_model


class BasicBlock(nn.Module):
    """BN → ReLU → conv3×3 → (dropout) → BN → ReLU → conv3×3, plus the (projected) input."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.project = (
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
            if stride != 1 or in_ch != out_ch
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in, H, W) → (B, out, H/s, W/s)
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.dropout(self.conv1(pre)))))
        shortcut = x if self.project is None else self.project(pre)
        return out + shortcut


class WideResNet(nn.Module):
    def __init__(
        self,
        depth: int = 28,
        k: int = 10,
        dropout: float = 0.3,
        num_classes: int = 10,
        in_channels: int = 3,
        first_width: int = 16,
    ):
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"WideResNet depth must be 6n + 4 (10, 16, 22, 28, ...), got {depth}")
        n = (depth - 4) // 6
        widths = [first_width, first_width * k, 2 * first_width * k, 4 * first_width * k]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)]
        for g in range(3):
            for i in range(n):
                layers.append(
                    BasicBlock(
                        widths[g] if i == 0 else widths[g + 1],
                        widths[g + 1],
                        stride=2 if (g > 0 and i == 0) else 1,
                        dropout=dropout,
                    )
                )
        self.features = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) → (B, classes)
        x = F.relu(self.bn(self.features(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register_model
def wide_resnet(depth: int = 28, k: int = 10, dropout: float = 0.3, **kw) -> WideResNet:
    return WideResNet(depth, k, dropout, **kw)


@register_model
def wrn_28_10(dropout: float = 0.3, **kw) -> WideResNet:
    """The paper's and blog's CIFAR-10 network: 36.5M parameters."""
    return WideResNet(28, 10, dropout, **kw)


@register_model
def wrn_16_4(dropout: float = 0.0, **kw) -> WideResNet:
    return WideResNet(16, 4, dropout, **kw)


@register_model
def wrn_16_8(dropout: float = 0.0, **kw) -> WideResNet:
    return WideResNet(16, 8, dropout, **kw)


@register_model
def wrn_10_2_gray(dropout: float = 0.0, **kw) -> WideResNet:
    """A small ResNet for 28×28 grayscale images (Fashion-MNIST): WRN-10-2, 0.3M parameters."""
    return WideResNet(10, 2, dropout, in_channels=1, **kw)


@register_model
def wrn_10_2(dropout: float = 0.0, **kw) -> WideResNet:
    """WRN-10-2 for CIFAR: 0.3M parameters, the CIFAR experiments' seconds-long smoke tests."""
    return WideResNet(10, 2, dropout, **kw)

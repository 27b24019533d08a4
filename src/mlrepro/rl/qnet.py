"""Q-networks for 30×45 grey frames: the blog's small convnet, a wider one, a dueling head."""

from __future__ import annotations

import torch
from torch import nn

ARCHS = {
    # name: (conv channels, fc hidden units)
    "blog": ((8, 8), 128),  # blog: conv 8@6×6 s3 → conv 8@3×3 s2 → fc 128
    "large": ((32, 64), 256),  # ours: same shape, 4–8× wider
}


class DuelingHead(nn.Module):
    """Q(s, a) = V(s) + A(s, a) − mean_a' A(s, a')  (Wang et al. 2016, eq. 9)."""

    def __init__(self, in_features: int, hidden: int, n_actions: int):
        super().__init__()
        self.value = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.advantage = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, n_actions)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.value(x)  # (B, 1)
        a = self.advantage(x)  # (B, n_actions)
        return v + a - a.mean(dim=1, keepdim=True)


class QNet(nn.Module):
    """conv c1@6×6 stride 3 → conv c2@3×3 stride 2 → fc hidden → one Q-value per action.

    With the blog's sizes on (1, 30, 45) inputs: (8, 9, 14) → (8, 4, 6) = 192 → 128 → n_actions.
    """

    def __init__(
        self,
        n_actions: int,
        *,
        in_channels: int = 1,
        resolution: tuple[int, int] = (30, 45),
        arch: str = "blog",
        dueling: bool = False,
        center: bool = False,
    ):
        super().__init__()
        # center: each frame minus its own mean brightness. Frames in [0, 1] are all positive, so
        # an optimizer step that moves all of a filter's weights the same way (Adam moves each by
        # about lr) shifts its pre-activation everywhere at once, by lr × the sum of its inputs:
        # with 4 stacked frames 4× as much, and the blog's 8 first-layer filters all died within
        # the first 1,000 updates on basic (docs/results.md). Zero-mean inputs cancel that shift
        # (LeCun et al. 1998, "Efficient BackProp", section 4.3).
        self.center = bool(center)
        if arch not in ARCHS:
            raise ValueError(f"unknown Q-net {arch!r}; valid: {', '.join(ARCHS)}")
        (c1, c2), hidden = ARCHS[arch]
        self.n_actions = n_actions
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=6, stride=3),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_features = self.features(torch.zeros(1, in_channels, *resolution)).shape[1]
        if dueling:
            self.head = DuelingHead(n_features, hidden, n_actions)
        else:
            self.head = nn.Sequential(
                nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_actions)
            )

        # Channels-last convolutions: on CPU their backward pass is ~1.5× faster for these tiny
        # layers than the default NCHW kernels (benchmarks/bench_dqn.py).
        self.features.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.center:
            x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x))  # (B, C, H, W) in [0, 1] → (B, n_actions)

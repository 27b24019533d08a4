"""Multi-layer perceptrons for flattened images."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .registry import register_model


class MLP(nn.Module):
    """Flatten → (Linear → ReLU) × len(hidden) → Linear; outputs logits."""

    def __init__(
        self, in_features: int, hidden: Sequence[int], num_classes: int, dropout: float = 0.0
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (B, 1, 28, 28) or (B, 784) → (B, num_classes)
        return self.net(x)


@register_model
def mlp_mnist(
    hidden: Sequence[int] = (256, 256), num_classes: int = 10, dropout: float = 0.0
) -> MLP:
    """The 3-layer MLP of the adversarial-examples post: 784-256-256-10 with ReLU."""
    return MLP(28 * 28, hidden, num_classes, dropout)

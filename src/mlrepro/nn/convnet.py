"""The two small MNIST convnets of the TensorFlow and Keras posts.

Both take (B, 1, 28, 28) images and return logits (B, num_classes); softmax lives in the loss.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .registry import register_model


def conv_pool(c_in: int, c_out: int, activation: bool) -> list[nn.Module]:
    """conv 5×5 'same' → 2×2 max-pool, stride 2 (halves H and W) → (ReLU).

    The posts apply ReLU before the pool; max-pool and ReLU commute (ReLU is monotone), so ReLU
    after the pool computes the same outputs and gradients on a quarter of the values (about 10 %
    of a training step on CPU). The module indices, hence the state_dict keys, are unchanged.
    """
    # TF's max_pool(padding='SAME') pads only when H or W is odd; 28 and 14 are even, so no padding.
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 5, padding=2), nn.MaxPool2d(2)]
    if activation:
        layers.append(nn.ReLU(inplace=True))
    return layers


class TFConvNet(nn.Module):
    """The TensorFlow post's network ("Deep MNIST for ML Experts"): 2 conv-pool blocks, 2 FC layers.

    Bugs of the post fixed here: it returns `relu(z_fc1)` as the output, i.e. a ReLU applied to the
    wrong tensor (the 1024-d hidden layer instead of the 10 logits); the output is the logits
    `z_fc2`, with no ReLU (softmax is in the loss). It also misspells `b_conv1` as `b_con1`.
    """

    def __init__(
        self, num_classes: int = 10, dropout: float = 0.5, init: Literal["tf", "torch"] = "tf"
    ):
        super().__init__()
        self.features = nn.Sequential(*conv_pool(1, 32, True), *conv_pool(32, 64, True))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),  # the post's keep_prob = 0.5
            nn.Linear(1024, num_classes),
        )
        if init == "tf":
            self.reset_parameters_tf()
        elif init != "torch":
            raise ValueError(f"init must be 'tf' or 'torch', got {init!r}")

    @torch.no_grad()
    def reset_parameters_tf(self) -> None:
        """The post's init: weights ~ truncated_normal(stddev=0.1) (cut at ±2σ), biases = 0.1."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.1, a=-0.2, b=0.2)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 64, 7, 7)
        return self.classifier(x)  # (B, num_classes)


class KerasConvNet(nn.Module):
    """The Keras post's network: conv 32 → pool → conv 64 → pool → dense 1024 → dense 256 →
    dense 10.

    The post gives its Conv2D layers no activation, so in Keras they are linear and max-pooling is
    their only non-linearity. That is kept (`conv_activation=False`) because the post's program is
    the spec and still reaches 99 %; `conv_activation=True` adds the TF post's ReLUs. The post's
    final softmax is left to the loss. Keras's initialisation (Glorot-uniform weights, zero biases).
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.5, conv_activation: bool = False):
        super().__init__()
        self.features = nn.Sequential(
            *conv_pool(1, 32, conv_activation), *conv_pool(32, 64, conv_activation)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(1024, 256),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(256, num_classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 64, 7, 7)
        return self.classifier(x)  # (B, num_classes)


@register_model
def tf_cnn_mnist(
    num_classes: int = 10, dropout: float = 0.5, init: Literal["tf", "torch"] = "tf"
) -> TFConvNet:
    """The TensorFlow post's convnet: conv5×5×32 → pool → conv5×5×64 → pool → fc1024 → dropout →
    fc10."""
    return TFConvNet(num_classes, dropout, init)


@register_model
def keras_convnet_mnist(
    num_classes: int = 10, dropout: float = 0.5, conv_activation: bool = False
) -> KerasConvNet:
    """The Keras post's convnet (3,529,354 parameters, as Keras's summary() counts them)."""
    return KerasConvNet(num_classes, dropout, conv_activation)

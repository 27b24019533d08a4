"""A fast CIFAR-10 network in the spirit of the speed-run results (Page's ResNet-9, airbench).

Ours, designed for a FLOP budget: a frozen 2×2 patch-whitening convolution (its weights are the
eigenvectors of the training images' 2×2-patch covariance, ± each, as in airbench), then three
groups of conv → max-pool → BN → GELU → conv → BN → GELU, a 3×3 max-pool and a bias-free linear
head whose logits are scaled down (Page's trick: a tempered softmax early in training).
As in airbench, the BN scales are frozen at 1 (only the shifts train; the convolutions before them
are scale-invariant, so a trainable scale only duplicates the weight norm) and every 3×3
convolution starts as an identity ("dirac") map on its first `in_channels` outputs, an implicit
residual path.

Forward cost for 32×32 inputs, widths (w1, w2, w3), whitening width 24 (multiply-adds):
31²·24·w1·9 + 15²·w1²·9 + 15²·w1·w2·9 + 7²·w2²·9 + 7²·w2·w3·9 + 3²·w3²·9
— 118 M for airbench94's (64, 256, 256) (`fast_cifar`), 33 M for (32, 128, 128)
(`fast_cifar_small`). Training speed of `fast_cifar` at batch 512, 1 thread: ≈ 190 images/s in
fp32 + channels_last on a 2-core AVX2 CPU under load; ≈ 366 in bf16 + channels_last on an
AVX512-BF16 EPYC.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


def conv_bn(
    in_ch: int, out_ch: int, pool: bool, bn_scale: bool = False, dirac: bool = True
) -> list[nn.Module]:
    """conv3×3 → (max-pool 2) → BN → GELU; pooling before BN halves the normalisation work.

    bn_scale=False freezes BN's scale at 1 (airbench); dirac=True starts the convolution as the
    identity on its first min(in, out) output channels (airbench; the rest keep torch's init).
    """
    conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
    if dirac:
        with torch.no_grad():
            nn.init.dirac_(conv.weight[: min(in_ch, out_ch)])
    norm = nn.BatchNorm2d(out_ch)
    norm.weight.requires_grad_(bn_scale)
    return [conv, *([nn.MaxPool2d(2)] if pool else []), norm, nn.GELU()]


class FastCifarNet(nn.Module):
    def __init__(
        self,
        widths: tuple[int, int, int] = (64, 256, 256),
        whiten_width: int = 24,
        num_classes: int = 10,
        logit_scale: float = 1 / 9,
        bn_scale: bool = False,
        dirac: bool = True,
    ):
        super().__init__()
        if whiten_width % 2 or whiten_width > 2 * 12:
            raise ValueError(
                f"whiten_width must be even and <= 24 (± 12 eigenvectors), got {whiten_width}"
            )
        # (B, 3, 32, 32) → (B, 24, 31, 31); weights set by init_whitening and never trained.
        self.whiten = nn.Conv2d(3, whiten_width, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        w1, w2, w3 = widths
        opts = {"bn_scale": bn_scale, "dirac": dirac}
        self.features = nn.Sequential(
            nn.GELU(),
            *conv_bn(whiten_width, w1, True, **opts),
            *conv_bn(w1, w1, False, **opts),  # (B, w1, 15, 15)
            *conv_bn(w1, w2, True, **opts),
            *conv_bn(w2, w2, False, **opts),  # (B, w2, 7, 7)
            *conv_bn(w2, w3, True, **opts),
            *conv_bn(w3, w3, False, **opts),  # (B, w3, 3, 3)
            nn.MaxPool2d(3),  # (B, w3, 1, 1)
        )
        self.fc = nn.Linear(w3, num_classes, bias=False)
        self.logit_scale = logit_scale

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the first layer to whiten 2×2 patches of `images` (B, 3, H, W), already
        normalised."""
        c, (h, w) = images.shape[1], self.whiten.weight.shape[2:]
        patches = images.float().unfold(2, h, 1).unfold(3, w, 1)  # (B, C, H', W', h, w)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * h * w)  # (B·H'·W', 12)
        cov = patches.T @ patches / len(patches)
        eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
        k = self.whiten.out_channels // 2
        vecs = eigvecs.T.flip(0)[:k] / torch.sqrt(eigvals.flip(0)[:k, None] + eps)  # (k, 12)
        vecs = vecs.reshape(k, c, h, w)
        self.whiten.weight.copy_(torch.cat([vecs, -vecs]).to(self.whiten.weight))
        if self.whiten.bias is not None:
            self.whiten.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) → (B, classes)
        x = self.features(self.whiten(x))
        return self.fc(torch.flatten(x, 1)) * self.logit_scale


@register_model
def fast_cifar(widths: tuple[int, int, int] = (64, 256, 256), **kw) -> FastCifarNet:
    """airbench94's widths (64, 256, 256): 118 M multiply-adds per image (fast-cifar10's
    network)."""
    a, b, c = widths
    return FastCifarNet((a, b, c), **kw)


@register_model
def fast_cifar_small(**kw) -> FastCifarNet:
    """Widths (32, 128, 128): 33 M multiply-adds per image (the smoke tests' network)."""
    return FastCifarNet((32, 128, 128), **kw)


class ResidualGroup(nn.Module):
    """airbench96's group: conv → max-pool → BN → GELU, then conv → BN → GELU → conv → BN added to
    the group's first activation, → GELU (a residual over the last two convolutions)."""

    def __init__(self, in_ch: int, out_ch: int, bn_scale: bool = False, dirac: bool = True):
        super().__init__()
        opts = {"bn_scale": bn_scale, "dirac": dirac}
        self.head = nn.Sequential(*conv_bn(in_ch, out_ch, True, **opts))
        # The last conv → BN stops before its GELU, which comes after the sum.
        self.body = nn.Sequential(
            *conv_bn(out_ch, out_ch, False, **opts), *conv_bn(out_ch, out_ch, False, **opts)[:-1]
        )
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in, H, W) → (B, out, H/2, W/2)
        x = self.head(x)
        return self.act(x + self.body(x))


class FastCifarResNet(FastCifarNet):
    """airbench96's network: FastCifarNet's whitening layer, head and forward, with three
    convolutions per group and a residual over the last two (`ResidualGroup`).

    Forward cost for 32×32 inputs at widths (128, 512, 512): ≈ 615 M multiply-adds per image.
    """

    def __init__(
        self, widths: tuple[int, int, int] = (128, 512, 512), whiten_width: int = 24, **kw
    ):
        super().__init__(widths, whiten_width, **kw)
        opts = {"bn_scale": kw.get("bn_scale", False), "dirac": kw.get("dirac", True)}
        w1, w2, w3 = widths
        self.features = nn.Sequential(  # replaces FastCifarNet's two-conv groups
            nn.GELU(),
            ResidualGroup(whiten_width, w1, **opts),  # (B, w1, 15, 15)
            ResidualGroup(w1, w2, **opts),  # (B, w2, 7, 7)
            ResidualGroup(w2, w3, **opts),  # (B, w3, 3, 3)
            nn.MaxPool2d(3),  # (B, w3, 1, 1)
        )


@register_model
def fast_cifar_96(widths: tuple[int, int, int] = (128, 512, 512), **kw) -> FastCifarResNet:
    """airbench96's widths (128, 512, 512) and residual groups: 615 M multiply-adds per image
    (fast-cifar10's gpu-96 preset)."""
    a, b, c = widths
    return FastCifarResNet((a, b, c), **kw)

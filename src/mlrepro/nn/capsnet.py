"""CapsNet with dynamic routing between capsules (Sabour, Frosst & Hinton, 2017).

Conv 9×9 (256, ReLU) → PrimaryCaps (32 × 8-D capsules from a 9×9 stride-2 conv) → DigitCaps
(10 × 16-D, routing-by-agreement) → capsule lengths as class scores; a decoder (512 → 1024 →
pixels, sigmoid) reconstructs the image from the capsule of one class.

`model(x)` maps [0, 1] images (B, C, H, W) to capsule lengths (B, 10), so it plugs into anything
that expects class scores (accuracy, attacks). Training needs more than the scores: `capsnet_loss`
adds the reconstruction of the true class's capsule to the margin loss.

Speed: the prediction vectors û_j|i = W_ij u_i for all 1,152 × 10 pairs are one batched matmul over
the 1,152 child capsules ((B, 8) @ (8, 160) each), laid out parent-major (B, 10, 1152, 16) so every
routing step is one more batched matmul. Public ports broadcast W against a repeated u and multiply
1.15M tiny (16 × 8) @ (8 × 1) matrices per batch of 100; that, not the convolutions, is where their
time goes (benchmarks/bench_capsnet.py).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register_model


def squash(s: torch.Tensor, dim: int = -1, eps: float = 1e-8) -> torch.Tensor:
    """Eq. 1: v = ‖s‖² / (1 + ‖s‖²) · s / ‖s‖ — keeps the direction, maps the length into [0, 1)."""
    sq = s.pow(2).sum(dim, keepdim=True)
    return s * (sq / (1 + sq) / torch.sqrt(sq + eps))


def route(
    u_hat: torch.Tensor, iterations: int = 3, detach: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Procedure 1 (routing by agreement) on prediction vectors laid out parent-major.

    Args:
        u_hat: û_j|i, shape (B, J, I, D): J parent capsules, I child capsules, D dimensions.
        iterations: r ≥ 1; r = 1 is uniform coupling (every c_ij = 1/J).
        detach: let gradients flow only through the last iteration's weighted sum, as the
            best-known public ports do (the logits b_ij are then constants of the backward pass);
            the forward values are the same either way.

    Returns:
        v: parent capsules (B, J, D); c: the last coupling coefficients (B, J, I).
    """
    if iterations < 1:
        raise ValueError(f"routing iterations must be >= 1, got {iterations}")
    B, J, I, _ = u_hat.shape  # noqa: E741 (I: child capsules, as in the shape comments)
    u_fixed = u_hat.detach() if detach else u_hat
    b = u_hat.new_zeros(B, J, I)  # line 2: b_ij ← 0
    for r in range(iterations):
        c = torch.softmax(b, dim=1)  # line 4: c_i = softmax(b_i), over the parents j
        u = u_hat if r == iterations - 1 else u_fixed
        s = torch.matmul(c.unsqueeze(2), u).squeeze(2)  # line 5: s_j = Σ_i c_ij û_j|i  (B, J, D)
        v = squash(s)  # line 6
        if r < iterations - 1:
            # line 7: b_ij += û_j|i · v_j
            b = b + torch.matmul(u_fixed, v.unsqueeze(-1)).squeeze(-1)
    return v, c


def margin_loss(
    lengths: torch.Tensor,
    labels: torch.Tensor,
    m_pos: float = 0.9,
    m_neg: float = 0.1,
    lam: float = 0.5,
) -> torch.Tensor:
    """Eq. 4 summed over classes, mean over the batch; labels (B,) or (B, K) for K digits per
    image."""
    present = torch.zeros_like(lengths)
    present.scatter_(1, labels.view(len(labels), -1), 1.0)  # T_k = 1 iff class k is in the image
    loss = present * F.relu(m_pos - lengths).pow(2) + lam * (1 - present) * F.relu(
        lengths - m_neg
    ).pow(2)
    return loss.sum(1).mean()


class PrimaryCaps(nn.Module):
    """A 9×9 stride-2 conv whose channels are `caps` types of `dim`-D capsules at every position."""

    def __init__(
        self, in_channels: int = 256, caps: int = 32, dim: int = 8, kernel: int = 9, stride: int = 2
    ):
        super().__init__()
        self.caps, self.dim = caps, dim
        self.conv = nn.Conv2d(in_channels, caps * dim, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → child capsules, child-major (I, B, dim) with I = caps × H' × W'."""
        y = self.conv(x)  # (B, caps*dim, H', W')
        B = y.shape[0]
        # Capsule type t takes channels t*dim … t*dim + dim - 1 (the paper's 32 "channels").
        u = y.view(B, self.caps, self.dim, -1).permute(1, 3, 0, 2)  # (caps, H'W', B, dim)
        return squash(u.reshape(-1, B, self.dim))  # (I, B, dim)


class _RoutedDigitCaps(torch.autograd.Function):
    """û = W u in a reused buffer, Procedure 1 without autograd, and the last s_j = Σ_i c_ij û_j|i.

    With detached routing the coupling c of the last iteration is a constant of the backward pass,
    so the backward needs only u, W and c: grad û_j|i = c_ij ∂L/∂s_j, then two batched matmuls.
    The (B, J, I, D) tensors û and grad û (74 MB each at batch 100) are written into one scratch
    buffer kept by the layer: fresh allocations that big are mmap'ed and page-faulted on every
    step, which cost more than all the arithmetic on them.
    """

    @staticmethod
    def forward(ctx, u, weight, iterations: int, out_caps: int, scratch: torch.Tensor):
        I, B, _ = u.shape  # noqa: E741 (I: child capsules, as in the shape comments)
        u_hat = torch.bmm(u, weight, out=scratch)  # (I, B, J*D)
        u_hat = u_hat.view(I, B, out_caps, -1).permute(1, 2, 0, 3)  # (B, J, I, D), a view
        b = u.new_zeros(B, out_caps, I)
        for r in range(iterations):
            c = torch.softmax(b, dim=1)  # Procedure 1, line 4
            s = torch.matmul(c.unsqueeze(2), u_hat).squeeze(2)  # line 5: (B, J, D)
            if r < iterations - 1:
                b += torch.matmul(u_hat, squash(s).unsqueeze(-1)).squeeze(-1)  # lines 6-7
        ctx.save_for_backward(u, weight, c)
        ctx.scratch = scratch
        return s

    @staticmethod
    def backward(ctx, grad_s):
        u, weight, c = ctx.saved_tensors
        I, B, _ = u.shape  # noqa: E741 (I: child capsules, as in the shape comments)
        J, D = grad_s.shape[1:]
        grad_hat = ctx.scratch.view(I, B, J, D)
        # c_ij ∂L/∂s_j
        torch.mul(c.permute(2, 0, 1).unsqueeze(-1), grad_s.unsqueeze(0), out=grad_hat)
        grad_hat = grad_hat.view(I, B, J * D)
        grad_u = torch.bmm(grad_hat, weight.transpose(1, 2))  # (I, B, K)
        grad_w = torch.bmm(u.transpose(1, 2), grad_hat)  # (I, K, J*D)
        return grad_u, grad_w, None, None, None


class DigitCaps(nn.Module):
    """Fully connected capsules: û_j|i = W_ij u_i for every child i and parent j, then routing."""

    def __init__(
        self,
        in_caps: int = 1152,
        in_dim: int = 8,
        out_caps: int = 10,
        out_dim: int = 16,
        iterations: int = 3,
        detach_routing: bool = True,
        init_std: float = 0.01,
    ):
        super().__init__()
        self.out_caps, self.out_dim = out_caps, out_dim
        self.iterations, self.detach_routing = iterations, detach_routing
        # W_ij stored child-major as (I, in_dim, J*out_dim): one (in_dim → J*out_dim) map per child.
        self.weight = nn.Parameter(init_std * torch.randn(in_caps, in_dim, out_caps * out_dim))
        self._scratch = torch.empty(0)  # û / grad û buffer of the fused path; not model state

    def predictions(self, u: torch.Tensor) -> torch.Tensor:
        """Child capsules (I, B, in_dim) → û (B, J, I, out_dim), in one batched matmul."""
        I, B, _ = u.shape  # noqa: E741 (I: child capsules, as in the shape comments)
        u_hat = torch.bmm(u, self.weight)  # (I, B, J*D): I matmuls of (B, 8) @ (8, 160)
        # A strided view, not a copy: routing's matmuls take (B*J) batches of (I, D) with row stride
        # B*J*D, and a 74 MB copy per step (batch 100) would cost more than it saves.
        return u_hat.view(I, B, self.out_caps, self.out_dim).permute(1, 2, 0, 3)  # (B, J, I, D)

    def _scratch_for(self, u: torch.Tensor) -> torch.Tensor:
        n = u.shape[0] * u.shape[1] * self.weight.shape[2]
        # A buffer made under inference_mode cannot be written outside it (an attack after
        # evaluate).
        stale = self._scratch.is_inference() and not torch.is_inference_mode_enabled()
        if (
            stale
            or self._scratch.numel() < n
            or self._scratch.dtype != u.dtype
            or self._scratch.device != u.device
        ):
            self._scratch = torch.empty(n, dtype=u.dtype, device=u.device)
        return self._scratch[:n].view(u.shape[0], u.shape[1], -1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Child capsules (I, B, in_dim) → parent capsules (B, J, out_dim)."""
        fused = (
            self.detach_routing
            and u.dtype == self.weight.dtype
            and not torch.is_autocast_enabled(u.device.type)
        )
        if fused:
            s = _RoutedDigitCaps.apply(
                u.contiguous(), self.weight, self.iterations, self.out_caps, self._scratch_for(u)
            )
            return squash(s)  # line 6 of the last iteration, under autograd
        v, _ = route(self.predictions(u), self.iterations, self.detach_routing)
        return v


class CapsNet(nn.Module):
    """The paper's three-layer CapsNet with its reconstruction decoder (≈ 8.2M parameters on MNIST).

    Args:
        image_size: side of the square input (28 for MNIST, 36 for MultiMNIST).
        routing_iterations: r in Procedure 1 (paper: 3).
        detach_routing: see `route`.
        caps_init_std: standard deviation of the normal init of the DigitCaps weights W_ij (0.01,
            as the best-known public port; the paper does not say).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        routing_iterations: int = 3,
        detach_routing: bool = True,
        conv_channels: int = 256,
        primary_caps: int = 32,
        primary_dim: int = 8,
        digit_dim: int = 16,
        decoder_sizes: tuple[int, ...] = (512, 1024),
        caps_init_std: float = 0.01,
    ):
        super().__init__()
        if routing_iterations < 1:
            raise ValueError(f"routing_iterations must be >= 1, got {routing_iterations}")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.conv1 = nn.Conv2d(in_channels, conv_channels, 9)
        self.primary = PrimaryCaps(conv_channels, primary_caps, primary_dim)
        side = ((image_size - 8) - 9) // 2 + 1  # 28 → 20 → 6; 36 → 28 → 10
        self.digits = DigitCaps(
            primary_caps * side * side,
            primary_dim,
            num_classes,
            digit_dim,
            routing_iterations,
            detach_routing,
            caps_init_std,
        )
        layers: list[nn.Module] = []
        width = num_classes * digit_dim
        for h in decoder_sizes:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, in_channels * image_size * image_size), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def capsules(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] → digit capsules v (B, num_classes, 16)."""
        h = F.relu(self.conv1(x))  # (B, 256, H-8, W-8)
        return self.digits(self.primary(h))  # (B, J, D)

    def forward(self, x: torch.Tensor, recon_labels: torch.Tensor | None = None):
        """Class scores: the length of each digit capsule, (B, num_classes), in [0, 1).

        With `recon_labels` (training), also the reconstruction of those labels' capsules:
        (lengths, images), so the whole loss goes through one forward call (and DDP's hooks).
        """
        v = self.capsules(x)
        lengths = torch.linalg.vector_norm(v, dim=-1)
        return lengths if recon_labels is None else (lengths, self.reconstruct(v, recon_labels))

    def reconstruct(self, v: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the capsule of each label (B,) or (B, K) — the longest one if None — to images.

        Returns (B, C, H, W) for labels of shape (B,) or None, (B, K, C, H, W) for (B, K).
        """
        if labels is None:
            labels = torch.linalg.vector_norm(v, dim=-1).argmax(1)
        keep = labels.view(len(labels), -1)  # (B, K)
        # Mask every capsule but the chosen one: (B, K, J) one-hot times (B, 1, J, D) → (B, K, J*D).
        mask = F.one_hot(keep, self.num_classes).to(v.dtype)
        masked = (mask.unsqueeze(-1) * v.unsqueeze(1)).flatten(2)
        out = self.decoder(masked).view(
            *keep.shape, self.in_channels, self.image_size, self.image_size
        )
        return out if labels.ndim == 2 else out.squeeze(1)


def capsnet_loss(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    recon_targets: torch.Tensor | None = None,
    recon_weight: float = 0.0005,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Margin loss + recon_weight × sum of squared reconstruction errors (per image, batch mean).

    Args:
        model: a CapsNet, or a wrapper that forwards to one (DistributedDataParallel).
        labels: (B,) or (B, K); the decoder reconstructs the capsule of each true label.
        recon_targets: what each label's reconstruction should match, (B, C, H, W) or
            (B, K, C, H, W) (MultiMNIST: each digit on its own); default the input x.

    Returns:
        (loss, capsule lengths (B, num_classes)).
    """
    if not recon_weight:
        lengths = model(x)
        return margin_loss(lengths, labels), lengths
    lengths, recon = model(x, labels)
    target = x if recon_targets is None else recon_targets
    loss = margin_loss(lengths, labels)
    loss = (
        loss + recon_weight * (recon - target.reshape(recon.shape)).pow(2).flatten(1).sum(1).mean()
    )
    return loss, lengths


class CapsNetLoss:
    """The Learner's `compute_loss` hook for CapsNet: margin + reconstruction.

    Inputs with more channels than the model takes carry the reconstruction targets after the image
    (MultiMNIST: merged image, first digit, second digit); otherwise the image is the target.
    """

    def __init__(self, in_channels: int, recon_weight: float = 0.0005):
        self.in_channels, self.recon_weight = in_channels, recon_weight

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.in_channels
        targets = x[:, c:] if x.shape[1] > c else None
        return capsnet_loss(model, x[:, :c], y, targets, self.recon_weight)


def top_k_match(lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of images whose K longest capsules are exactly their K labels (B, K)."""
    labels = labels.view(len(labels), -1)
    top = lengths.topk(labels.shape[1], dim=1).indices
    return (top.sort(1).values == labels.sort(1).values).all(1).float().mean()


@register_model
def capsnet_mnist(routing_iterations: int = 3, **kw) -> CapsNet:
    """The paper's MNIST CapsNet: 28×28 inputs, 1,152 primary capsules."""
    return CapsNet(1, 28, routing_iterations=routing_iterations, **kw)


@register_model
def capsnet_multimnist(routing_iterations: int = 3, **kw) -> CapsNet:
    """The MultiMNIST CapsNet: 36×36 inputs, 3,200 primary capsules."""
    return CapsNet(1, 36, routing_iterations=routing_iterations, **kw)

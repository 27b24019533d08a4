"""Gradient attacks on any classifier: FGSM, iterative FGSM (BIM) and PGD in L∞ and L2 balls.

Inputs live in [0, 1] and the model maps them to class scores (logits, or any scores such as
capsule lengths): normalisation belongs inside the model (`Normalize`), never in the inputs given
to an attack. Every result is clamped to [0, 1] and to the ε-ball around the input (the one
exception, `fgsm(..., clamp=False)`, reproduces a published attack that did not clamp).

The loss is cross-entropy averaged over the batch, as in torchattacks (whose FGSM and PGD these
match to 1e-6, tests/attacks/test_torchattacks.py); its scale does not move the sign or the
direction of a step. Attacks run the model in eval mode (dropout off) and restore its mode after.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

Norm = Literal["linf", "l2"]


# --- checks ---
# The three usual mistakes (ε < 0, normalised inputs, probabilities), as one-line errors.
def check_eps(eps: float, name: str = "eps") -> float:
    if (
        not isinstance(eps, (int, float))
        or isinstance(eps, bool)
        or not math.isfinite(eps)
        or eps < 0
    ):
        raise InputError(f"{name} must be a finite number >= 0 (a perturbation size), got {eps!r}")
    return float(eps)


def check_inputs(x: torch.Tensor, y: torch.Tensor) -> None:
    """x: float (B, ...) in [0, 1]; y: integer class labels (B,)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InputError(
            f"inputs must be a float tensor in [0, 1], got {type(x).__name__}"
            + (f" of {x.dtype}" if isinstance(x, torch.Tensor) else "")
        )
    if x.numel():
        lo, hi = torch.aminmax(x.detach())
        if lo < 0 or hi > 1 or not torch.isfinite(lo + hi):
            raise InputError(
                "inputs must lie in [0, 1] "
                f"(got min {lo.item():.4g}, max {hi.item():.4g}); pass raw "
                "pixels and put normalisation inside the model (mlrepro.attacks.Normalize)"
            )
    if (
        not isinstance(y, torch.Tensor)
        or y.ndim != 1
        or y.dtype.is_floating_point
        or len(y) != len(x)
    ):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise InputError(f"labels must be integer class indices of shape ({len(x)},), got {shape}")


def check_scores(out, batch: int) -> torch.Tensor:
    """The model's output must be (B, classes) scores; probabilities (a softmax) are refused."""
    if not isinstance(out, torch.Tensor):
        raise InputError(
            f"model must return a (batch, classes) tensor of logits, got {type(out).__name__}"
        )
    if out.ndim != 2 or out.shape[0] != batch or out.shape[1] < 2 or not out.is_floating_point():
        raise InputError(
            f"model must return (batch={batch}, classes >= 2) float logits, "
            f"got shape {tuple(out.shape)} of {out.dtype}"
        )
    with torch.no_grad():
        if not torch.isfinite(out).all():
            raise InputError("model returned NaN or infinite scores")
        # Rows in [0, 1] summing to 1 are a softmax: cross-entropy would apply a second one and the
        # gradients would nearly vanish. (Log-probabilities are fine: log_softmax is idempotent.)
        if (
            out.min() >= 0
            and out.max() <= 1
            and torch.allclose(out.sum(1), out.new_ones(batch), atol=1e-4)
        ):
            raise InputError(
                "model returns probabilities (rows sum to 1); attacks need logits: "
                "drop the final softmax"
            )
    return out


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run `model` in eval mode, restoring each submodule's train/eval flag afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def _attack_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode, with the parameters' requires_grad off: an attack needs ∇ₓ only, and autograd then
    records no weight-gradient paths (the outputs are unchanged). Both restored afterwards."""
    params = [p for p in model.parameters() if p.requires_grad]
    with eval_mode(model):
        try:
            for p in params:
                p.requires_grad_(False)
            yield model
        finally:
            for p in params:
                p.requires_grad_(True)


def _loss_grad(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, targeted: bool, check: bool = True
) -> torch.Tensor:
    """∇ₓ of the attack's objective: CE(f(x), y) untargeted, -CE(f(x), target) targeted."""
    # Gradients are needed even when the caller is in a no_grad or inference_mode block.
    with torch.inference_mode(False), torch.enable_grad():
        x = (x.clone() if x.is_inference() else x.detach()).requires_grad_(True)
        scores = model(x)
        if check:
            check_scores(scores, len(x))
        loss = F.cross_entropy(scores, y)
        if targeted:
            loss = -loss
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample, shaped to broadcast over it: (B, 1, 1, ...)."""
    return t.flatten(1).norm(dim=1).view(-1, *(1,) * (t.ndim - 1))


# --- attacks ---
def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    targeted: bool = False,
    clamp: bool = True,
) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al., 2015): x + ε·sign(∇ₓ J(x, y)), clamped to
    [0, 1].

    Targeted: `y` are the target classes and the step goes down their loss, x − ε·sign(∇ₓ J(x, t)).
    `clamp=False` returns x + ε·sign(∇) as it is: the adversarial-examples post's code, whose
    results leave the valid image range (a pixel at 0 can go to −ε); only for reproducing it.
    """
    eps = check_eps(eps)
    check_inputs(x, y)
    with _attack_mode(model):
        grad = _loss_grad(model, x, y, targeted)
    adv = x.detach() + eps * grad.sign()
    return adv.clamp_(0, 1) if clamp else adv


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    alpha: float,
    steps: int = 10,
    norm: Norm = "linf",
    random_start: bool = True,
    targeted: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al., 2018) in the L∞ or L2 ε-ball around x.

    Each step moves by α along sign(∇) (L∞) or ∇/‖∇‖₂ (L2), then projects onto the ball and
    [0, 1]. `random_start` begins at a uniform point of the L∞ box, or (L2) at a random direction
    with radius U(0, ε), as torchattacks does. `generator` (on x's device) seeds the start.
    """
    eps, alpha = check_eps(eps), check_eps(alpha, "alpha")
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be an integer >= 1, got {steps!r}")
    if norm not in ("linf", "l2"):
        raise InputError(f"norm must be 'linf' or 'l2', got {norm!r}")
    check_inputs(x, y)
    x = x.detach()
    adv = x.clone()
    if random_start:
        if norm == "linf":
            adv += torch.empty_like(x).uniform_(-eps, eps, generator=generator)
        else:
            delta = torch.empty_like(x).normal_(generator=generator)
            radius = torch.empty(
                len(x), *(1,) * (x.ndim - 1), device=x.device, dtype=x.dtype
            ).uniform_(0, 1, generator=generator)
            adv += delta * (radius * eps / _per_sample_norm(delta))
        adv.clamp_(0, 1)
    with _attack_mode(model):
        for i in range(steps):
            # the output's type is checked once
            grad = _loss_grad(model, adv, y, targeted, check=i == 0)
            if norm == "linf":
                adv += alpha * grad.sign()
                delta = (adv - x).clamp_(-eps, eps)
            else:
                # torchattacks adds 1e-10 to the norm; the same keeps the two identical.
                adv += alpha * (grad / (_per_sample_norm(grad) + 1e-10))
                delta = adv - x
                delta *= (eps / _per_sample_norm(delta).clamp_min(1e-12)).clamp_max(1)
            adv = (x + delta).clamp_(0, 1)
    return adv


def bim(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    alpha: float | None = None,
    steps: int | None = None,
    targeted: bool = False,
) -> torch.Tensor:
    """Basic iterative method / iterative FGSM (Kurakin et al., 2017): L∞ PGD from x, no random
    start.

    Defaults are the paper's: α = 1/255 and min(ε·255 + 4, 1.25·ε·255) steps.
    """
    eps = check_eps(eps)
    alpha = 1 / 255 if alpha is None else alpha
    if steps is None:
        steps = max(1, math.ceil(min(eps * 255 + 4, 1.25 * eps * 255)))
    return pgd(
        model,
        x,
        y,
        eps,
        alpha=alpha,
        steps=steps,
        norm="linf",
        random_start=False,
        targeted=targeted,
    )

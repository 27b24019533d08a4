"""Attack evaluation: accuracy under attack, success rate, perturbation sizes, robustness curves.

Everything is batched over whole tensors; `attack(model, x, y) -> x_adv` is any function with the
signature of `fgsm` once its ε and step settings are bound (`make_attack`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..engine.progress import Progress
from ..errors import InputError
from .attacks import bim, check_eps, fgsm, pgd

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
ATTACKS = ("fgsm", "bim", "pgd", "pgd-l2")


def make_attack(
    name: str,
    eps: float,
    *,
    steps: int | None = None,
    alpha: float | None = None,
    random_start: bool = True,
    targeted: bool = False,
) -> Attack:
    """An attack by name with its settings bound: fgsm, bim (iterative FGSM), pgd (L∞), pgd-l2.

    PGD defaults: 10 steps of α = 2.5·ε/steps (Madry et al.'s ratio), random start.
    """
    check_eps(eps)
    if name == "fgsm":
        return functools.partial(fgsm, eps=eps, targeted=targeted)
    if name == "bim":
        return functools.partial(bim, eps=eps, alpha=alpha, steps=steps, targeted=targeted)
    if name in ("pgd", "pgd-l2"):
        steps = 10 if steps is None else steps
        alpha = 2.5 * eps / max(steps, 1) if alpha is None else alpha
        return functools.partial(
            pgd,
            eps=eps,
            alpha=alpha,
            steps=steps,
            random_start=random_start,
            norm="l2" if name == "pgd-l2" else "linf",
            targeted=targeted,
        )
    raise InputError(f"unknown attack {name!r}; valid: {', '.join(ATTACKS)}")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Model scores (B, classes) in eval mode, batch by batch, on x's device."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def attack_batches(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: Attack,
    batch_size: int = 1000,
    progress: bool = False,
) -> torch.Tensor:
    """`attack` over (N, ...) inputs in batches; returns the (N, ...) adversarial inputs.
    `progress` reports the images attacked so far on stderr (engine.progress)."""
    out = []
    with Progress(len(x), "attack", unit="image", enabled=progress, every_s=15.0) as bar:
        for i in range(0, len(x), batch_size):
            out.append(attack(model, x[i : i + batch_size], y[i : i + batch_size]))
            bar.update(len(out[-1]))
    return torch.cat(out)


def attack_stats(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    batch_size: int = 1000,
) -> dict:
    """Clean and adversarial accuracy, success rate and mean L∞/L2 perturbation.

    Success rate: untargeted, the share of correctly classified inputs the attack turns wrong;
    targeted, the share of inputs not already of the target class that end up classified as it.
    """
    pred = predict(model, x, batch_size).argmax(1)
    pred_adv = predict(model, x_adv, batch_size).argmax(1)
    correct = pred == y
    if target is None:
        success = (pred_adv[correct] != y[correct]).float()
    else:
        eligible = y != target
        success = (pred_adv[eligible] == target[eligible]).float()
    delta = (x_adv - x).flatten(1)
    return {
        "clean_accuracy": correct.float().mean().item(),
        "adversarial_accuracy": (pred_adv == y).float().mean().item(),
        "attack_success_rate": success.mean().item() if len(success) else float("nan"),
        "mean_linf": delta.abs().amax(1).mean().item(),
        "mean_l2": delta.norm(dim=1).mean().item(),
        "n": len(x),
    }


def evaluate_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: Attack,
    *,
    target: torch.Tensor | None = None,
    batch_size: int = 1000,
    progress: bool = False,
) -> tuple[dict, torch.Tensor]:
    """(`attack_stats`, the adversarial inputs); with `target`, the attack is given the targets."""
    x_adv = attack_batches(model, x, y if target is None else target, attack, batch_size, progress)
    return attack_stats(model, x, y, x_adv, target=target, batch_size=batch_size), x_adv


def robustness_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_values: Sequence[float],
    attack: str = "fgsm",
    *,
    batch_size: int = 1000,
    **kw,
) -> list[float]:
    """Accuracy under `attack` for each ε (ε = 0 is the clean accuracy)."""
    accs = []
    for eps in eps_values:
        if eps == 0:
            x_adv = x
        else:
            x_adv = attack_batches(model, x, y, make_attack(attack, eps, **kw), batch_size)
        accs.append((predict(model, x_adv, batch_size).argmax(1) == y).float().mean().item())
    return accs


# --- figures ---
def plot_robustness(
    curves: dict[str, Sequence[float]],
    eps_values: Sequence[float],
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """Accuracy vs ε, one line per model."""
    from ..plotting import plt, save_figure

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, accs in curves.items():
        ax.plot(eps_values, [100 * a for a in accs], "o-", label=label)
    ax.set(
        xlabel="ε (L∞, pixels in [0, 1])",
        ylabel="test accuracy under attack (%)",
        ylim=(-2, 102),
        title=title,
    )
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def pick_examples(
    clean_pred: torch.Tensor, adv_pred: torch.Tensor, y: torch.Tensor | None, n: int
) -> list[int]:
    """Indices to show: inputs right when clean and wrong when attacked (the attack's doing, not an
    earlier mistake) first; without labels, those whose prediction changed; then the rest."""
    if y is not None:
        y = y.to(clean_pred.device)
        flipped = (clean_pred == y) & (adv_pred != y)
    else:
        flipped = clean_pred != adv_pred
    return torch.cat([flipped.nonzero().flatten(), (~flipped).nonzero().flatten()])[:n].tolist()


def plot_examples(
    model: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    path: str | os.PathLike,
    *,
    y: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    n: int = 5,
    title: str = "",
    scores: str = "logits",
) -> None:
    """The blog's figure: clean input | perturbation | adversarial input, each with the model's
    prediction and confidence (and the true label when `y` is given).

    Shows the first `n` inputs the model got right on the clean image and wrong on the adversarial
    one (with `y`; without it, those whose prediction changed), then others. With
    `scores="logits"` the confidence is the softmax of the model's scores; with `scores="lengths"`
    (a CapsNet's capsule lengths, each already the probability that its class is present) it is the
    predicted class's own score: a softmax over lengths in [0, 1] would be nearly flat.
    """
    from ..plotting import plt, save_figure

    if scores not in ("logits", "lengths"):
        raise ValueError(f"plot_examples: scores must be 'logits' or 'lengths', got {scores!r}")
    to_conf = (lambda s: torch.softmax(s, 1)) if scores == "logits" else (lambda s: s)
    probs = to_conf(predict(model, x).float())
    probs_adv = to_conf(predict(model, x_adv).float())
    idx = pick_examples(probs.argmax(1), probs_adv.argmax(1), y, n)
    eps = max((x_adv - x).abs().max().item(), 1e-12)

    def label(p):
        c = int(p.argmax())
        conf = f"{100 * p[c]:.0f} %" if scores == "logits" else f"length {p[c]:.2f}"
        return f"{classes[c] if classes else c} ({conf})"

    def image(t):  # (C, H, W) → something imshow takes
        t = t.detach().float().cpu()
        return (t[0] if t.shape[0] == 1 else t.permute(1, 2, 0)).numpy()

    fig, axes = plt.subplots(len(idx), 3, figsize=(6.6, 2.3 * len(idx)), squeeze=False)
    for row, i in zip(axes, idx):
        gray = x.shape[1] == 1
        row[0].imshow(image(x[i]), cmap="gray" if gray else None, vmin=0, vmax=1)
        truth = f"true {classes[int(y[i])] if classes else int(y[i])}\n" if y is not None else ""
        row[0].set_title(f"{truth}clean → {label(probs[i])}", fontsize=9)
        row[1].imshow(
            image(x_adv[i] - x[i]) if gray else image(x_adv[i] - x[i]).mean(-1),
            cmap="seismic",
            vmin=-eps,
            vmax=eps,
        )
        row[1].set_title(f"perturbation (±{eps:.3g})", fontsize=9)
        row[2].imshow(image(x_adv[i]), cmap="gray" if gray else None, vmin=0, vmax=1)
        row[2].set_title(f"adversarial → {label(probs_adv[i])}", fontsize=9)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    if title:
        fig.suptitle(title, fontsize=10, y=1.01)
    save_figure(fig, path)

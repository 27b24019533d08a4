"""Figures for run folders (matplotlib, no display needed). Saved atomically like every other
write."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .io import atomic_write_bytes


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Render `fig` to PNG in memory, write it atomically, close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_history(
    rows: Sequence[dict], path: str | os.PathLike, title: str = "", steps: Sequence[dict] = ()
) -> None:
    """Loss and every accuracy-like metric, train vs validation, side by side.

    With `steps` (the run folder's steps.jsonl rows) the training curve is drawn within epochs,
    so a one- or two-epoch run shows a curve rather than a dot; validation stays one point per
    epoch. A run stopped inside its first epoch has no rows: then there is no figure.
    """
    if not rows:
        return
    epochs = [r["epoch"] for r in rows]
    metric_keys = [
        k
        for k in rows[0]
        if k not in ("epoch", "lr", "time_s", "stage") and not k.startswith("val_")
    ]
    fig, axes = plt.subplots(
        1, len(metric_keys), figsize=(4.5 * len(metric_keys), 3.4), squeeze=False
    )
    for ax, key in zip(axes[0], metric_keys):
        points = [(r["epoch"], r[key]) for r in steps if r.get(key) is not None]
        if len(points) > len(rows):
            ax.plot(*zip(*points), "-", label=f"train {key} (running mean within each epoch)")
            ax.plot(epochs, [r[key] for r in rows], "o", color="C0", ms=4)
        else:
            ax.plot(epochs, [r[key] for r in rows], "o-", label=f"train {key}")
        if f"val_{key}" in rows[0]:
            ax.plot(epochs, [r[f"val_{key}"] for r in rows], "s-", label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_scores(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """RL learning curve: test score mean ± std per epoch (a band), and the training episodes'
    mean."""
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    mean = [r["test_score_mean"] for r in rows]
    std = [r["test_score_std"] for r in rows]
    ax.plot(epochs, mean, "o-", label="test (greedy), mean ± std")
    ax.fill_between(
        epochs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2
    )
    train = [
        (r["epoch"], r["train_score_mean"]) for r in rows if r.get("train_score_mean") is not None
    ]
    if train:
        ax.plot(*zip(*train), "s--", label="training episodes (ε-greedy), mean")
    ax.set_xlabel("epoch")
    ax.set_ylabel("score")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    save_figure(fig, path)


def plot_lr_find(result, path: str | os.PathLike, title: str = "LR range test") -> None:
    """An `LRFinderResult`: loss vs LR on a log axis, every suggestion marked (the default bold)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(result.lrs, result.raw_losses, color="0.75", lw=1, label="loss")
    ax.plot(result.lrs, result.losses, color="tab:blue", lw=2, label="smoothed loss")
    colors = {
        "valley": "tab:red",
        "steepest": "tab:orange",
        "minimum/10": "tab:green",
        "blog": "tab:purple",
    }
    for name, lr in result.suggestions.items():
        y = float(np.interp(np.log(lr), np.log(result.lrs), result.losses))
        ax.plot(
            [lr],
            [y],
            "o",
            ms=10 if name == result.default else 7,
            color=colors.get(name, "k"),
            label=f"{name}: {lr:.2e}" + (" (suggested)" if name == result.default else ""),
        )
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel="loss", title=title)
    losses = result.losses
    lo, hi = min(losses), losses[0]
    ax.set_ylim(lo - 0.1 * (hi - lo + 1e-12), max(losses[: max(1, int(0.95 * len(losses)))]) * 1.05)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)

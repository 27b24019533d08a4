"""CapsNet on MultiMNIST: two overlapping digits, recognised and reconstructed one by one (paper §6).

Claim: 5.2 % error, counting an image correct when its two digits are the two longest capsules
(paper, section 6: 60M training pairs, 3 routing iterations). A CPU can only train on a small
fraction of that (--preset cpu-short), so its error says how far a short run gets, nothing more.
Run:   mlrepro run capsnet-multimnist                  (GPU-scale: 60M pairs)
       mlrepro run capsnet-multimnist --preset cpu-short --threads 2
Quick: mlrepro run capsnet-multimnist --quick
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import torch

from ..data.multimnist import MultiMnistLoader
from ..nn import create_model
from ..nn.capsnet import CapsNet, top_k_match
from ..plotting import plot_history, save_figure
from . import load_splits
from .capsnet_mnist import make_learner

CLAIM = "5.2 % MultiMNIST error (both digits = the 2 longest capsules; paper §6)"
HEADLINE = ("test_error_pct", "train_images_per_s")


@dataclass(frozen=True)
class Config:
    routing_iterations: int = 3  # paper
    detach_routing: bool = True  # public ports: gradient only through the last routing iteration
    pairs_per_image: int = 1000  # paper: 1K MultiMNIST images per training digit → 60M
    epochs: int = 1  # ours: one pass over the 60M pairs
    batch_size: int = 128  # ours (paper: not stated)
    lr: float = 1e-3  # paper: Adam
    beta2: float = 0.999  # paper: TensorFlow's Adam default
    schedule: Literal["exponential", "onecycle"] = "onecycle"  # ours (paper: exponential decay)
    lr_decay: float = 0.9  # per epoch, with schedule=exponential
    warmup_frac: float = 0.1  # ours: 1cycle's rising part
    cycle_momentum: bool = True  # torch's 1cycle default: Adam's β1 0.95 → 0.85 → 0.95 (False: 0.9)
    max_shift: int = 4  # paper: each digit shifted up to 4 px → 36×36
    recon_weight: float = 0.0005  # paper
    train_limit: int = 0  # ours: base training digits used (0 = all 60,000)
    test_limit: int = 0  # ours: test pairs, one per test digit (0 = all 10,000)
    data_seed: int = 0  # ours: the test pairs depend on this, not on the run's seed
    # ours: "auto" = bf16 where it runs in hardware (engine.native_bf16); fp32 is what was measured
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    channels_last: bool = False  # ours

    def __post_init__(self):
        if min(self.epochs, self.batch_size, self.routing_iterations, self.pairs_per_image) < 1:
            raise ValueError("epochs, batch_size, routing_iterations and pairs_per_image must be >= 1")
        if not 0 <= self.beta2 < 1:
            raise ValueError(f"beta2 must be in [0, 1), got {self.beta2}")


PRESETS = {
    # A CPU's worth: 12,000 pairs (one per training digit, 12k digits), tested on 2,000 pairs.
    "cpu-short": {"pairs_per_image": 1, "train_limit": 12_000, "test_limit": 2_000, "batch_size": 100,
                  "lr": 2e-3, "warmup_frac": 0.2},
    "quick": {"pairs_per_image": 1, "train_limit": 250, "test_limit": 100, "batch_size": 25,
              "lr": 2e-3, "warmup_frac": 0.2},
}


def build_model(cfg: Config) -> CapsNet:
    """The 36×36 CapsNet a run of this config trains."""
    return create_model("capsnet_multimnist", routing_iterations=cfg.routing_iterations,
                        detach_routing=cfg.detach_routing)


def input_spec(cfg: Config) -> dict:
    return {"shape": (1, 36, 36)}


def setup(cfg: Config, ctx) -> SimpleNamespace:
    train, test = load_splits(ctx, "mnist", "train", "test")
    n_train, n_test = cfg.train_limit or len(train), cfg.test_limit or len(test)
    train_loader = MultiMnistLoader(train.images[:n_train], train.labels[:n_train], cfg.batch_size,
                                    pairs_per_image=cfg.pairs_per_image, seed=ctx.seed, with_parts=True,
                                    max_shift=cfg.max_shift, device=ctx.device)
    # Pairs are drawn from the whole test split, so a short test set still has all 10 classes.
    test_loader = MultiMnistLoader(test.images, test.labels, 500, seed=cfg.data_seed, shuffle=False,
                                   max_shift=cfg.max_shift, device=ctx.device)
    learner = make_learner(build_model(cfg), cfg, ctx, cfg.epochs * len(train_loader),
                           metrics={"accuracy": top_k_match})
    return SimpleNamespace(learner=learner, train=train_loader, test=test_loader, n_test=n_test)


def first_batches(loader, n: int):
    """The first n images of a loader (and their labels), without generating the rest."""
    xs, ys, count = [], [], 0
    for x, y in loader:
        xs.append(x), ys.append(y)
        count += len(x)
        if count >= n:
            break
    return torch.cat(xs)[:n], torch.cat(ys)[:n]


@torch.inference_mode()
def plot_segmentation(model: CapsNet, x: torch.Tensor, labels: torch.Tensor, path) -> None:
    """Input (top) and the two longest capsules' reconstructions in red and green (overlap yellow)."""
    import matplotlib.pyplot as plt

    model.eval()
    v = model.capsules(x)
    top2 = v.norm(dim=-1).topk(2, dim=1).indices  # (B, 2)
    recon = model.reconstruct(v, top2)[:, :, 0].float().cpu()  # (B, 2, H, W)
    rgb = torch.stack([recon[:, 0], recon[:, 1], torch.zeros_like(recon[:, 0])], -1)  # (B, H, W, 3)
    n = len(x)
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.8), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(x[i, 0].float().cpu(), cmap="gray", vmin=0, vmax=1)
        axes[0, i].set_title(f"L:{labels[i, 0].item()},{labels[i, 1].item()}", fontsize=7)
        axes[1, i].imshow(rgb[i].clamp(0, 1))
        axes[1, i].set_title(f"R:{top2[i, 0].item()},{top2[i, 1].item()}", fontsize=7)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle("MultiMNIST: input with labels L (top); reconstructions R of the two longest capsules, "
                 "red and green (bottom)", fontsize=8)
    save_figure(fig, path)


def run(cfg: Config, ctx) -> dict:
    s = setup(cfg, ctx)
    start = time.perf_counter()
    history = ctx.fit(s.learner, s.train, cfg.epochs)
    train_time_s = time.perf_counter() - start
    if history.rows:
        plot_history(history.rows, ctx.run_dir.plot_path("curves.png"), "CapsNet on MultiMNIST")
    x, y = first_batches(s.test, s.n_test)
    test_logs = s.learner.evaluate([(x[i:i + 500], y[i:i + 500]) for i in range(0, len(x), 500)])
    plot_segmentation(s.learner.model, x[:10], y[:10], ctx.run_dir.plot_path("segmentation.png"))
    rows = history.rows[-cfg.epochs:]
    images = len(s.train.images) * cfg.pairs_per_image * len(rows)
    return {"test_error_pct": 100 * (1 - test_logs["accuracy"]), "test_accuracy": test_logs["accuracy"],
            "test_margin_loss": test_logs["loss"], "test_pairs": len(x),
            "train_images_per_s": images / (sum(r["time_s"] for r in rows) or train_time_s),
            "train_pairs": images, "train_time_s": train_time_s, "threads": torch.get_num_threads(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}

"""CapsNet on MultiMNIST: two overlapping digits recognised and reconstructed one by one (paper §6).

Claim: 5.2 % error, counting an image correct when its two digits are the two longest capsules
(paper, section 6: 60M training pairs, 3 routing iterations). A CPU can only train on a small
fraction of that (--preset cpu-short), so its error says how far a short run gets, nothing more.
Run:   mlrepro run capsnet-multimnist                  (GPU-scale: 60M pairs)
       mlrepro run capsnet-multimnist --preset cpu-short --threads 2
Quick: mlrepro run capsnet-multimnist --quick
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch

from ..config import ExperimentConfig, opt
from ..data.multimnist import MultiMnistLoader
from ..experiment import DataSpec, Experiment, Preset, RunContext, Setup
from ..nn import create_model
from ..nn.capsnet import CapsNet, top_k_match
from ..plotting import plot_history, save_figure
from .capsnet_mnist import make_learner


@dataclass(frozen=True)
class Config(ExperimentConfig):
    routing_iterations: int = opt(3, "paper", "routing-by-agreement iterations", ge=1)
    detach_routing: bool = opt(
        True, "public ports", "gradient only through the last routing iteration"
    )
    pairs_per_image: int = opt(
        1000, "paper", "MultiMNIST images per training digit (1K → 60M)", ge=1
    )
    epochs: int = opt(1, "ours", "passes over the generated pairs", ge=1)
    batch_size: int = opt(128, "ours", "minibatch size (the paper does not say)", ge=1)
    lr: float = opt(1e-3, "paper", "Adam's learning rate", gt=0)
    beta2: float = opt(0.999, "paper", "Adam's beta2 (TensorFlow's default)", ge=0, lt=1)
    schedule: Literal["exponential", "onecycle"] = opt(
        "onecycle", "ours", "1cycle (paper: exponential decay)"
    )
    lr_decay: float = opt(0.9, "public port", "exponential: LR factor per epoch", gt=0, le=1)
    warmup_frac: float = opt(0.1, "ours", "onecycle: rising part", gt=0, lt=1)
    cycle_momentum: bool = opt(
        True, "torch", "onecycle: Adam's beta1 0.95 → 0.85 → 0.95 (off: 0.9)"
    )
    max_shift: int = opt(4, "paper", "each digit shifted by up to this many px (→ 36×36)", ge=0)
    recon_weight: float = opt(
        0.0005, "paper", "weight of the summed squared reconstruction error", ge=0
    )
    train_limit: int = opt(0, "ours", "base training digits used (0 = all 60,000)", ge=0)
    test_limit: int = opt(0, "ours", "test pairs, one per test digit (0 = all 10,000)", ge=0)
    data_seed: int = opt(0, "ours", "seed of the test pairs (fixed across runs)", ge=0)
    precision: Literal["auto", "fp32", "bf16"] = opt(
        "fp32", "ours", "auto = bf16 where it runs in hardware (emulated bf16 is slower)"
    )
    channels_last: bool = opt(False, "ours", "NHWC layout")


PRESETS = {
    "cpu-short": Preset(
        {
            "pairs_per_image": 1,
            "train_limit": 12_000,
            "test_limit": 2_000,
            "batch_size": 100,
            "lr": 2e-3,
            "warmup_frac": 0.2,
        },
        "a CPU's worth: 12,000 pairs, tested on 2,000",
        "≈ 8 min on a 2-core CPU",
    ),
    "gpu": Preset(
        {"precision": "auto"},
        "the paper's 60M pairs in bf16 on a GPU (--pairs-per-image sets how many)",
        "hours on a recent GPU at 60M pairs; seconds per 100,000 pairs",
    ),
    "quick": Preset(
        {
            "pairs_per_image": 1,
            "train_limit": 250,
            "test_limit": 100,
            "batch_size": 25,
            "lr": 2e-3,
            "warmup_frac": 0.2,
        },
        "smoke test: 250 pairs",
        "seconds",
    ),
}


def build_model(cfg: Config) -> CapsNet:
    """The 36×36 CapsNet a run of this config trains."""
    return create_model(
        "capsnet_multimnist",
        routing_iterations=cfg.routing_iterations,
        detach_routing=cfg.detach_routing,
    )


def data_spec(cfg: Config) -> DataSpec:
    """Single MNIST test digits centred on the 36×36 canvas (what `attack`/`export` feed it)."""
    return DataSpec("mnist", (1, 36, 36), 10, canvas=36, scores="lengths")


def setup(cfg: Config, ctx: RunContext) -> Setup:
    train, test = ctx.load("mnist", "train", "test")
    n_train, n_test = cfg.train_limit or len(train), cfg.test_limit or len(test)
    train_loader = MultiMnistLoader(
        train.images[:n_train],
        train.labels[:n_train],
        cfg.batch_size,
        pairs_per_image=cfg.pairs_per_image,
        seed=ctx.seed,
        with_parts=True,
        max_shift=cfg.max_shift,
        device=ctx.device,
    )
    # Pairs are drawn from the whole test split, so a short test set still has all 10 classes.
    test_loader = MultiMnistLoader(
        test.images,
        test.labels,
        500,
        seed=cfg.data_seed,
        shuffle=False,
        max_shift=cfg.max_shift,
        device=ctx.device,
    )
    learner = make_learner(
        build_model(cfg), cfg, ctx, len(train_loader), metrics={"accuracy": top_k_match}
    )
    return Setup(learner, train_loader, test=test_loader, info={"n_test": n_test})


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
    """Input (top) and the two longest capsules' reconstructions in red and green
    (overlap yellow)."""
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
    fig.suptitle(
        "MultiMNIST: input with labels L (top); reconstructions R of the two longest capsules, "
        "red and green (bottom)",
        fontsize=8,
    )
    save_figure(fig, path)


def run(cfg: Config, ctx: RunContext) -> dict:
    s = setup(cfg, ctx)
    start = time.perf_counter()
    history = ctx.fit(s.learner, s.train, cfg.epochs)
    train_time_s = time.perf_counter() - start
    if history.rows:
        plot_history(
            history.rows,
            ctx.run_dir.plot_path("curves.png"),
            "CapsNet on MultiMNIST",
            steps=ctx.run_dir.steps(),
        )
    x, y = first_batches(s.test, s.info["n_test"])
    test_logs = s.learner.evaluate(
        [(x[i : i + 500], y[i : i + 500]) for i in range(0, len(x), 500)]
    )
    plot_segmentation(s.learner.model, x[:10], y[:10], ctx.run_dir.plot_path("segmentation.png"))
    rows = history.rows[-cfg.epochs :]
    images = len(s.train.images) * cfg.pairs_per_image * len(rows)
    return {
        "test_error_pct": 100 * (1 - test_logs["accuracy"]),
        "test_accuracy": test_logs["accuracy"],
        "test_margin_loss": test_logs["loss"],
        "test_pairs": len(x),
        "train_images_per_s": images / (sum(r["time_s"] for r in rows) or train_time_s),
        "train_pairs": images,
        "train_time_s": train_time_s,
    }


EXPERIMENT = Experiment(
    name="capsnet-multimnist",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim="5.2 % MultiMNIST error (both digits = the 2 longest capsules; paper §6)",
    headline=("test_error_pct", "train_images_per_s"),
    data=data_spec,
    build_model=build_model,
    setup=setup,
    reproduce="mlrepro run capsnet-multimnist --preset cpu-short --seeds 0,1,2",
)

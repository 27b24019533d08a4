"""CapsNet with dynamic routing on MNIST (Sabour, Frosst & Hinton, 2017).

Claim: 0.25 % test error with 3 routing iterations + reconstruction (paper Table 1; the best public
PyTorch port: 0.34 % after 50 epochs). What a 2-core CPU can show: ≥ 99.2 % test accuracy after
one epoch (--preset cpu-1epoch; the port: 98.96 % after its first epoch).
Run:   mlrepro run capsnet-mnist --seeds 0,1,2        (GPU-scale: 50 epochs)
       mlrepro run capsnet-mnist --preset cpu-1epoch --threads 2
Quick: mlrepro run capsnet-mnist --quick
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch

from ..config import ExperimentConfig, opt
from ..data import TensorLoader
from ..data.multimnist import RandomShift
from ..engine import Learner
from ..experiment import DataSpec, Experiment, Preset, RunContext, Setup
from ..nn import create_model
from ..nn.capsnet import CapsNet, CapsNetLoss, margin_loss
from ..plotting import plot_history, save_figure
from ..recipes import schedule


@dataclass(frozen=True)
class Config(ExperimentConfig):
    routing_iterations: int = opt(3, "paper", "routing-by-agreement iterations", ge=1)
    detach_routing: bool = opt(
        True, "public ports", "gradient only through the last routing iteration"
    )
    caps_init_std: float = opt(
        0.01, "public port", "std of the normal init of DigitCaps' W_ij", gt=0
    )
    epochs: int = opt(50, "public port", "training epochs (the paper does not say)", ge=1)
    batch_size: int = opt(100, "public port", "minibatch size (the paper does not say)", ge=1)
    lr: float = opt(1e-3, "paper", "Adam's learning rate (TensorFlow's default)", gt=0)
    beta2: float = opt(0.999, "paper", "Adam's beta2 (TensorFlow's default)", ge=0, lt=1)
    schedule: Literal["exponential", "onecycle"] = opt(
        "exponential", "paper", "exponentially decaying LR, or 1cycle"
    )
    lr_decay: float = opt(0.9, "public port", "exponential: LR factor per epoch", gt=0, le=1)
    warmup_frac: float = opt(0.2, "ours", "onecycle: rising part", gt=0, lt=1)
    cycle_momentum: bool = opt(
        True, "torch", "onecycle: Adam's beta1 0.95 → 0.85 → 0.95 (off: 0.9)"
    )
    shift_px: int = opt(2, "paper", "random shifts of up to this many px, zero padded", ge=0)
    recon_weight: float = opt(
        0.0005, "paper", "weight of the summed squared reconstruction error", ge=0
    )
    train_limit: int = opt(0, "ours", "training images used (0 = all 60,000)", ge=0)
    test_limit: int = opt(0, "ours", "test images used (0 = all 10,000)", ge=0)
    precision: Literal["auto", "fp32", "bf16"] = opt(
        "fp32", "ours", "auto = bf16 where it runs in hardware (emulated bf16 is slower)"
    )
    channels_last: bool = opt(False, "ours", "NHWC layout (slower for these 9×9 convs on CPU)")


PRESETS = {
    "cpu-1epoch": Preset(
        {
            "epochs": 1,
            "schedule": "onecycle",
            "lr": 2e-3,
            "shift_px": 0,
            "batch_size": 32,
            "precision": "auto",
        },
        "what a 2-core CPU can show: one epoch with 1cycle, no shifts",
        "≈ 8 min (bf16) to 14 min (fp32) on a 2-core CPU",
    ),
    "gpu": Preset(
        {"precision": "auto"},
        "the public port's 50 epochs (batch 100, LR × 0.9 per epoch) in bf16 on a GPU",
        "minutes on a recent GPU",
    ),
    "quick": Preset(
        {
            "epochs": 1,
            "train_limit": 600,
            "test_limit": 300,
            "batch_size": 50,
            "schedule": "onecycle",
            "lr": 2e-3,
        },
        "smoke test: one epoch on 600 images",
        "seconds",
    ),
}


def build_model(cfg: Config) -> CapsNet:
    """The network a run of this config trains (`mlrepro attack` / `export` rebuild it)."""
    return create_model(
        "capsnet_mnist",
        routing_iterations=cfg.routing_iterations,
        detach_routing=cfg.detach_routing,
        caps_init_std=cfg.caps_init_std,
    )


def data_spec(cfg: Config) -> DataSpec:
    """Pixels stay in [0, 1] (no normalisation: the decoder outputs pixels); scores are lengths."""
    return DataSpec("mnist", (1, 28, 28), 10, scores="lengths")


def make_learner(
    model: CapsNet, cfg, ctx: RunContext, steps_per_epoch: int, metrics=("accuracy",)
) -> Learner:
    """Adam (fused) with the config's schedule, on CapsNet's loss (shared with capsnet-multimnist):
    the engine's Learner with the margin + reconstruction loss as its `compute_loss` hook."""
    optim = torch.optim.Adam(
        model.parameters(),
        lr=cfg.lr,
        betas=(0.9, cfg.beta2),
        fused=ctx.device.type in ("cpu", "cuda") or None,
    )
    if cfg.schedule == "onecycle":
        sched = schedule(
            "onecycle",
            optim,
            epochs=cfg.epochs,
            steps_per_epoch=steps_per_epoch,
            pct_start=cfg.warmup_frac,
            cycle_momentum=cfg.cycle_momentum,
        )
        interval = "batch"
    else:
        sched, interval = torch.optim.lr_scheduler.ExponentialLR(optim, gamma=cfg.lr_decay), "epoch"
    return Learner(
        model,
        optim,
        margin_loss,
        scheduler=sched,
        scheduler_interval=interval,
        metrics=metrics,
        device=ctx.device,
        precision=cfg.precision,
        channels_last=cfg.channels_last,
        compute_loss=CapsNetLoss(model.in_channels, cfg.recon_weight),
    )


def setup(cfg: Config, ctx: RunContext) -> Setup:
    """Data loaders and a ready Learner (shared by `run` and `mlrepro lr-find`)."""
    train, test = ctx.load("mnist", "train", "test")
    n_train = cfg.train_limit or len(train)
    n_test = cfg.test_limit or len(test)
    train_loader = TensorLoader(
        train.images[:n_train],
        train.labels[:n_train],
        cfg.batch_size,
        shuffle=True,
        seed=ctx.seed,
        device=ctx.device,
        transform=RandomShift(cfg.shift_px),
    )
    learner = make_learner(build_model(cfg), cfg, ctx, len(train_loader))
    return Setup(
        learner,
        train_loader,
        test=TensorLoader(test.images[:n_test], test.labels[:n_test], 500, device=ctx.device),
    )


@torch.inference_mode()
def plot_reconstructions(model: CapsNet, x: torch.Tensor, path, title: str = "") -> None:
    """Originals (top row) and their reconstructions from the predicted class's capsule (bottom)."""
    import matplotlib.pyplot as plt

    model.eval()
    v = model.capsules(x)
    pred = v.norm(dim=-1).argmax(1)
    recon = model.reconstruct(v)
    n = len(x)
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n, 2.5), squeeze=False)
    for i in range(n):
        for row, img in enumerate((x[i, 0], recon[i, 0])):
            axes[row, i].imshow(img.float().cpu(), cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
        axes[1, i].set_title(f"→ {pred[i].item()}", fontsize=8)
    fig.suptitle(
        title or "input (top) and reconstruction from the predicted capsule (bottom)", fontsize=9
    )
    save_figure(fig, path)


@torch.inference_mode()
def plot_perturbations(
    model: CapsNet, x: torch.Tensor, path, steps: int = 11, span: float = 0.25
) -> None:
    """Paper Fig. 4: each row tweaks one of the 16 dimensions of the predicted capsule by
    −0.25 … 0.25."""
    import matplotlib.pyplot as plt

    model.eval()
    v = model.capsules(x[:1])  # (1, J, D)
    pred = v.norm(dim=-1).argmax(1)
    d = v.shape[-1]
    deltas = torch.linspace(-span, span, steps)
    batch = v.repeat(d * steps, 1, 1)  # (D*steps, J, D): row-major over (dimension, delta)
    rows = torch.arange(d).repeat_interleave(steps)
    batch[torch.arange(d * steps), pred.item(), rows] += deltas.repeat(d).to(v.dtype)
    images = model.reconstruct(batch, pred.repeat(d * steps)).float().cpu()
    fig, axes = plt.subplots(d, steps, figsize=(0.6 * steps, 0.6 * d))
    for k, ax in enumerate(axes.flat):
        ax.imshow(images[k, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    for r in range(d):
        axes[r, 0].set_ylabel(str(r), rotation=0, fontsize=7, labelpad=8)
    for c, delta in enumerate(deltas.tolist()):
        axes[-1, c].set_xlabel(f"{delta + 0.0:+.2f}", fontsize=6)  # + 0.0: no "-0.00"
    fig.suptitle(f"one capsule dimension (row) perturbed; digit {pred.item()}", fontsize=9)
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
            "CapsNet on MNIST",
            steps=ctx.run_dir.steps(),
        )
    test_logs = s.learner.evaluate(s.test)
    x = next(iter(s.test))[0][:10]
    plot_reconstructions(s.learner.model, x, ctx.run_dir.plot_path("reconstructions.png"))
    plot_perturbations(s.learner.model, x, ctx.run_dir.plot_path("perturbations.png"))
    # Images per second of the training epochs (those run in this process, not resumed ones).
    epoch_time = sum(r["time_s"] for r in history.rows[-cfg.epochs :]) or train_time_s
    images = len(s.train.inputs) * len(history.rows[-cfg.epochs :])
    return {
        "test_accuracy": test_logs["accuracy"],
        "test_error_pct": 100 * (1 - test_logs["accuracy"]),
        "test_margin_loss": test_logs["loss"],
        "train_images_per_s": images / epoch_time,
        "epochs": s.learner.epoch,
        "train_images": len(s.train.inputs),
        "train_time_s": train_time_s,
        "precision": s.learner.precision,  # "auto" resolved
    }


EXPERIMENT = Experiment(
    name="capsnet-mnist",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim="0.25 % test error (paper Table 1); on a 2-core CPU: ≥ 99.2 % after one epoch",
    headline=("test_accuracy", "train_images_per_s"),
    data=data_spec,
    build_model=build_model,
    setup=setup,
    reproduce="mlrepro run capsnet-mnist --preset cpu-1epoch --seeds 0,1,2",
)

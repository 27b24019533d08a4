"""CapsNet with dynamic routing on MNIST (Sabour, Frosst & Hinton, 2017).

Claim: 0.25 % test error with 3 routing iterations + reconstruction (paper Table 1; the best public
PyTorch port: 0.34 % after 50 epochs). What a 2-core CPU can show: ≥ 99.2 % test accuracy after
one epoch (--preset cpu-1epoch; the port: 98.96 % after its first epoch).
Run:   mlrepro run capsnet-mnist --seeds 0,1,2        (GPU-scale: 50 epochs)
       mlrepro run capsnet-mnist --preset cpu-1epoch --threads 2
Quick: mlrepro run capsnet-mnist --quick
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import torch

from ..data import TensorLoader
from ..data.multimnist import RandomShift
from ..engine import Learner
from ..errors import ConfigError
from ..nn import create_model
from ..nn.capsnet import CapsNet, capsnet_loss, margin_loss
from ..plotting import plot_history, save_figure
from . import load_splits

CLAIM = "0.25 % test error (paper Table 1); on a 2-core CPU: ≥ 99.2 % after one epoch"
HEADLINE = ("test_accuracy", "train_images_per_s")
SCORES = "lengths"  # what the model's outputs are (`mlrepro attack` shows them as confidences)


@dataclass(frozen=True)
class Config:
    routing_iterations: int = 3  # paper
    detach_routing: bool = True  # public ports: gradient only through the last routing iteration
    caps_init_std: float = 0.01  # normal init of the DigitCaps W_ij, as the best public port
    epochs: int = 50  # ours (paper: not stated; the best public port: 50)
    batch_size: int = 100  # the best public port (paper: not stated)
    lr: float = 1e-3  # paper: Adam with TensorFlow's defaults
    beta2: float = 0.999  # paper: TensorFlow's Adam default
    schedule: Literal["exponential", "onecycle"] = "exponential"  # paper: exponentially decaying LR
    lr_decay: float = 0.9  # per epoch, as the best public port
    warmup_frac: float = 0.2  # ours: 1cycle's rising part
    cycle_momentum: bool = True  # torch's 1cycle default: Adam's β1 0.95 → 0.85 → 0.95 (False: 0.9)
    shift_px: int = 2  # paper: shifts of up to 2 px, zero padded
    recon_weight: float = 0.0005  # paper: sum of squared errors scaled by 0.0005
    train_limit: int = 0  # ours: 0 = all 60,000 training images
    test_limit: int = 0  # ours: 0 = the whole 10,000-image test set
    # ours: an AVX2-only CPU emulates bf16 (slower); with AVX512-BF16, bf16 is 1.73x faster and as
    # accurate after one epoch (docs/results.md). "auto" = bf16 where it runs in hardware.
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    channels_last: bool = False  # ours: slower for these 9×9 convs on this CPU

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.routing_iterations < 1:
            raise ValueError("epochs, batch_size and routing_iterations must be >= 1")
        if self.shift_px < 0 or self.recon_weight < 0 or self.caps_init_std <= 0:
            raise ValueError("shift_px and recon_weight must be >= 0, caps_init_std > 0")
        if not 0 <= self.beta2 < 1:
            raise ValueError(f"beta2 must be in [0, 1), got {self.beta2}")


PRESETS = {
    # One pass over the 60,000 images with a 1cycle schedule; no shifts (one epoch cannot overfit).
    # Batch 32 (1,875 steps): 99.17 % on seed 0 against 99.06 % at batch 100, 99.12 % at 16 and
    # 99.07 % at 32 with lr 3e-3 (docs/results.md). bf16 where the CPU has it in hardware: as
    # accurate as fp32 after one epoch and 1.73x faster with AVX512-BF16.
    "cpu-1epoch": {"epochs": 1, "schedule": "onecycle", "lr": 2e-3, "shift_px": 0, "batch_size": 32,
                   "precision": "auto"},
    "quick": {"epochs": 1, "train_limit": 600, "test_limit": 300, "batch_size": 50, "schedule": "onecycle",
              "lr": 2e-3},
}


class CapsNetLearner(Learner):
    """The engine's Learner with CapsNet's loss: margin + reconstruction of the true capsule(s).

    Inputs with more channels than the model takes carry the reconstruction targets after the image
    (MultiMNIST: merged image, first digit, second digit); otherwise the input is the target.
    """

    def __init__(self, model: CapsNet, optimizer, *, recon_weight: float = 0.0005, **kw):
        super().__init__(model, optimizer, margin_loss, **kw)
        self.recon_weight = recon_weight

    def train_step(self, batch):
        """The engine's step with `capsnet_loss` in place of `loss_fn(model(x), y)`."""
        x, y = self.to_device(batch)
        self.model.train()
        c = self.model.in_channels
        with self.autocast():
            loss, outputs = capsnet_loss(self.model, x[:, :c], y, x[:, c:] if x.shape[1] > c else None,
                                         self.recon_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        return loss.detach(), outputs.detach(), y


def build_model(cfg: Config) -> CapsNet:
    """The network a run of this config trains (`mlrepro attack` / `export` rebuild it)."""
    return create_model("capsnet_mnist", routing_iterations=cfg.routing_iterations,
                        detach_routing=cfg.detach_routing, caps_init_std=cfg.caps_init_std)


def input_spec(cfg: Config) -> dict:
    """One input's shape; pixels stay in [0, 1] (no normalisation: the decoder outputs pixels)."""
    return {"shape": (1, 28, 28)}


def make_learner(model: CapsNet, cfg, ctx, steps: int, metrics=("accuracy",)) -> CapsNetLearner:
    """Adam (fused) with the config's schedule, on the CapsNet loss (shared with capsnet-multimnist)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2),
                           fused=ctx.device.type in ("cpu", "cuda") or None)
    if cfg.schedule == "onecycle":
        if not 1 < cfg.warmup_frac * steps < steps - 1:
            raise ConfigError(f"1cycle over {steps} steps with warmup_frac {cfg.warmup_frac} leaves a phase of "
                              "at most one step; train longer, lower --batch-size or use --schedule exponential")
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps,
                                                    pct_start=cfg.warmup_frac,
                                                    cycle_momentum=cfg.cycle_momentum)
        interval = "batch"
    else:
        sched, interval = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay), "epoch"
    return CapsNetLearner(model, opt, recon_weight=cfg.recon_weight, scheduler=sched,
                          scheduler_interval=interval, metrics=metrics, device=ctx.device,
                          precision=cfg.precision, channels_last=cfg.channels_last)


def setup(cfg: Config, ctx) -> SimpleNamespace:
    """Data loaders and a ready Learner (shared by `run` and `mlrepro lr-find`)."""
    train, test = load_splits(ctx, "mnist", "train", "test")
    n_train = cfg.train_limit or len(train)
    n_test = cfg.test_limit or len(test)
    train_loader = TensorLoader(train.images[:n_train], train.labels[:n_train], cfg.batch_size, shuffle=True,
                                seed=ctx.seed, device=ctx.device, transform=RandomShift(cfg.shift_px))
    model = build_model(cfg)
    learner = make_learner(model, cfg, ctx, cfg.epochs * len(train_loader))
    return SimpleNamespace(learner=learner, train=train_loader,
                           test=TensorLoader(test.images[:n_test], test.labels[:n_test], 500, device=ctx.device))


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
    fig.suptitle(title or "input (top) and reconstruction from the predicted capsule (bottom)", fontsize=9)
    save_figure(fig, path)


@torch.inference_mode()
def plot_perturbations(model: CapsNet, x: torch.Tensor, path, steps: int = 11, span: float = 0.25) -> None:
    """Paper Fig. 4: each row tweaks one of the 16 dimensions of the predicted capsule by −0.25 … 0.25."""
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


def run(cfg: Config, ctx) -> dict:
    s = setup(cfg, ctx)
    start = time.perf_counter()
    history = ctx.fit(s.learner, s.train, cfg.epochs)
    train_time_s = time.perf_counter() - start
    if history.rows:
        plot_history(history.rows, ctx.run_dir.plot_path("curves.png"), "CapsNet on MNIST")
    test_logs = s.learner.evaluate(s.test)
    x = next(iter(s.test))[0][:10]
    plot_reconstructions(s.learner.model, x, ctx.run_dir.plot_path("reconstructions.png"))
    plot_perturbations(s.learner.model, x, ctx.run_dir.plot_path("perturbations.png"))
    # Images per second of the training epochs (those run in this process, not resumed ones).
    epoch_time = sum(r["time_s"] for r in history.rows[-cfg.epochs:]) or train_time_s
    images = len(s.train.inputs) * len(history.rows[-cfg.epochs:])
    return {"test_accuracy": test_logs["accuracy"], "test_error_pct": 100 * (1 - test_logs["accuracy"]),
            "test_margin_loss": test_logs["loss"], "train_images_per_s": images / epoch_time,
            "epochs": s.learner.epoch, "train_images": len(s.train.inputs), "train_time_s": train_time_s,
            "threads": torch.get_num_threads(), "precision": s.learner.precision,  # "auto" resolved
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}

"""What the CIFAR-10 experiments share: one config, one setup, one run (they differ in defaults).

The pipeline: uint8 images stay on the device; crop/flip/cutout run on whole batches
(`mlrepro.data.augment`); SGD with Nesterov momentum, weight decay optionally kept off BN
parameters and biases; a step or 1cycle schedule; optional label smoothing and flip test-time
augmentation. Precision and compilation follow the device (measured with
benchmarks/bench_cifar_throughput.py, docs/results.md): "auto" precision is bf16 on CUDA and on CPUs
with native bf16 (AVX512-BF16 or AMX), fp32 elsewhere (an AVX2-only CPU emulates bf16, several times
slower); "auto" compile is on for CUDA only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import ExperimentConfig, opt
from ..data import TensorLoader
from ..data.augment import CifarAugment
from ..data.cifar10 import MEAN, STD
from ..engine import Learner, LookaheadEMA
from ..errors import ConfigError
from ..experiment import DataSpec, RunContext, Setup
from ..nn import create_model
from ..plotting import plot_history
from ..recipes import schedule


@dataclass(frozen=True)
class CifarConfig(ExperimentConfig):
    model: str = opt("wrn_28_10", "paper", "registered network (mlrepro.nn.list_models())")
    dropout: float = opt(0.3, "paper", "dropout between a WRN block's convolutions", ge=0, lt=1)
    epochs: int = opt(200, "paper", "training epochs", ge=1)
    batch_size: int = opt(
        128, "paper", "the global batch (split across processes under torchrun)", ge=1
    )
    lr: float = opt(0.1, "paper", "SGD learning rate (the peak for 1cycle)", gt=0)
    momentum: float = opt(0.9, "paper", "SGD momentum", ge=0, lt=1)
    nesterov: bool = opt(True, "paper", "Nesterov momentum")
    weight_decay: float = opt(5e-4, "paper", "L2 weight decay", ge=0)
    decay_norm_and_bias: bool = opt(True, "paper", "also decay BN parameters and biases")
    norm_lr_scale: float = opt(
        1.0,
        "airbench",
        "LR multiplier of the BN parameters (their decay is "
        "divided by it: the same decay per step)",
        gt=0,
    )
    schedule: Literal["step", "onecycle"] = opt(
        "step",
        "paper",
        "step: ×gamma at the milestones; onecycle: linear warm-up then linear decay",
    )
    milestones: tuple[int, ...] = opt(
        (60, 120, 160), "paper", "step: epochs where the LR is multiplied by gamma", ge=1
    )
    gamma: float = opt(0.2, "paper", "step: the LR factor at each milestone", gt=0)
    warmup_frac: float = opt(
        0.25, "ours", "onecycle: fraction of steps rising to the peak", gt=0, lt=1
    )
    lr_start_frac: float = opt(0.1, "ours", "onecycle: the LR starts at lr × this", gt=0, le=1)
    lr_end_frac: float = opt(1e-4, "ours", "onecycle: the LR ends at lr × this", gt=0, le=1)
    lookahead_every: int = opt(
        0, "airbench", "> 0: Lookahead-EMA of the weights every N steps", ge=0
    )
    lookahead_start_epoch: int = opt(3, "airbench", "the epoch the Lookahead-EMA starts", ge=0)
    label_smoothing: float = opt(0.0, "ours", "label smoothing of the cross-entropy", ge=0, lt=1)
    crop_pad: int = opt(4, "paper", "random crops from a border this wide (0 = none)", ge=0)
    crop_pad_mode: Literal["constant", "reflect"] = opt(
        "constant", "paper", "the crop border: zeros or mirrored"
    )
    flip: bool = opt(True, "paper", "random horizontal flips")
    cutout: int = opt(16, "DeVries & Taylor", "side of the cutout square in px (0 = none)", ge=0)
    tta: bool = opt(False, "ours", "average the logits of each test image and its mirror image")
    tta_translate: int = opt(0, "airbench", "with tta: also the views shifted this many px", ge=0)
    precision: Literal["auto", "fp32", "bf16"] = opt(
        "auto", "ours", "auto: bf16 where the hardware has it"
    )
    channels_last: bool = opt(True, "ours", "NHWC memory layout (faster convolutions)")
    compile: Literal["auto", "on", "off"] = opt("auto", "ours", "torch.compile (auto: CUDA only)")
    eval_each_epoch: bool = opt(
        True, "ours", "test accuracy after every epoch (the curve; costs time)"
    )
    train_limit: int = opt(
        0, "ours", "training images used, drawn at random (0 = all 50,000)", ge=0
    )
    test_limit: int = opt(0, "ours", "test images used, drawn at random (0 = all 10,000)", ge=0)


class FlipTTA(nn.Module):
    """Test-time augmentation: the mean of the logits for an image and its mirror image; with
    `translate` > 0, half that plus half the same mean over the two views shifted `translate` px
    up-left and down-right (reflect padding), airbench's weighting of its 6 views."""

    def __init__(self, model: nn.Module, translate: int = 0):
        super().__init__()
        self.model, self.translate = model, translate

    def mirror(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(x) + self.model(x.flip(3))) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mirror(x)
        if self.translate <= 0:
            return logits
        p, (h, w) = self.translate, x.shape[2:]
        padded = nn.functional.pad(x, (p, p, p, p), mode="reflect")
        shifted = (
            self.mirror(padded[:, :, :h, :w]) + self.mirror(padded[:, :, 2 * p :, 2 * p :])
        ) / 2
        return (logits + shifted) / 2


def build_model(cfg: CifarConfig) -> nn.Module:
    """The network a run of this config trains (`mlrepro export` rebuilds it from config.json)."""
    if cfg.model.startswith("fast_cifar"):  # no dropout in the fast nets
        return create_model(cfg.model)
    return create_model(cfg.model, dropout=cfg.dropout)


def data_spec(cfg: CifarConfig) -> DataSpec:
    return DataSpec("cifar10", (3, 32, 32), 10, MEAN, STD)


def param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    decay_norm_and_bias: bool,
    norm_lr_scale: float = 1.0,
) -> list[dict]:
    """Trainable parameters in up to three groups: weights; other biases (1-D); BN parameters at
    lr × norm_lr_scale with weight decay ÷ norm_lr_scale (the same decay per step). Without
    `decay_norm_and_bias`, biases and BN parameters get no weight decay. Empty groups are
    dropped."""
    norm_ids = {
        id(p)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._NormBase)
        for p in m.parameters()
    }
    params = [p for p in model.parameters() if p.requires_grad]
    small_wd = weight_decay if decay_norm_and_bias else 0.0
    groups = [
        {
            "params": [p for p in params if p.ndim > 1 and id(p) not in norm_ids],
            "lr": lr,
            "weight_decay": weight_decay,
        },
        {
            "params": [p for p in params if p.ndim <= 1 and id(p) not in norm_ids],
            "lr": lr,
            "weight_decay": small_wd,
        },
        {
            "params": [p for p in params if id(p) in norm_ids],
            "lr": lr * norm_lr_scale,
            "weight_decay": small_wd / norm_lr_scale,
        },
    ]
    return [g for g in groups if g["params"]]


def use_compile(cfg: CifarConfig, device: torch.device) -> bool:
    """Whether to torch.compile on this device: "auto" measured per device (see the module
    docstring). Precision "auto" is resolved by the Learner (`engine.resolve_precision`)."""
    return cfg.compile == "on" or (cfg.compile == "auto" and device.type == "cuda")


def subset(
    images: torch.Tensor, labels: torch.Tensor, limit: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`limit` images drawn at random (fixed across seeds), or all; the image-folder copy is sorted
    by class, so a plain slice would hold one class."""
    if not limit or limit >= len(images):
        return images, labels
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:limit]
    return images[idx], labels[idx]


def setup(cfg: CifarConfig, ctx: RunContext) -> Setup:
    """Loaders (sharded by rank under torchrun) and a ready Learner."""
    rank, world = ctx.rank, ctx.world_size
    if cfg.batch_size % world:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} must be divisible by the {world} processes"
        )
    train, test = ctx.load("cifar10", "train", "test")
    x_train, y_train = subset(train.images, train.labels, cfg.train_limit)
    x_test, y_test = subset(test.images, test.labels, cfg.test_limit)
    norm = {"mean": MEAN, "std": STD, "device": ctx.device, "rank": rank, "world_size": world}
    aug = CifarAugment(
        crop_pad=cfg.crop_pad, flip=cfg.flip, cutout=cfg.cutout, pad_mode=cfg.crop_pad_mode
    )
    # drop_last: every process must take the same number of steps, each on a full share.
    train_loader = TensorLoader(
        x_train,
        y_train,
        cfg.batch_size,
        shuffle=True,
        drop_last=True,
        seed=ctx.seed,
        augment=aug,
        **norm,
    )
    if len(train_loader) == 0:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} exceeds the {len(x_train)} training images"
        )
    test_loader = TensorLoader(x_test, y_test, 1000 * world, **norm)

    model = build_model(cfg)
    if hasattr(model, "init_whitening"):  # fast nets: whiten 2×2 patches of 5,000 random images
        pick = subset(x_train, y_train, 5000)[0]
        model.init_whitening(train_loader.preprocess(pick.to(ctx.device)).cpu())
    compiled = use_compile(cfg, ctx.device)
    if compiled:
        model.compile()  # in place: state_dict keys stay those of the plain model
    groups = param_groups(
        model, cfg.lr, cfg.weight_decay, cfg.decay_norm_and_bias, cfg.norm_lr_scale
    )
    optim = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.schedule == "onecycle":
        # Linear warm-up from lr × lr_start_frac to the peak, then linear decay to lr × lr_end_frac
        # (the speed-run triangle); momentum fixed. Each group peaks at its own LR.
        sched = schedule(
            "onecycle",
            optim,
            epochs=cfg.epochs,
            steps_per_epoch=len(train_loader),
            pct_start=cfg.warmup_frac,
            anneal_strategy="linear",
            cycle_momentum=False,
            div_factor=1 / cfg.lr_start_frac,
            final_div_factor=cfg.lr_start_frac / cfg.lr_end_frac,
        )
        interval = "batch"
    else:
        sched = torch.optim.lr_scheduler.MultiStepLR(
            optim, milestones=list(cfg.milestones), gamma=cfg.gamma
        )
        interval = "epoch"
    callbacks = (
        [LookaheadEMA(cfg.lookahead_every, cfg.lookahead_start_epoch)]
        if cfg.lookahead_every
        else []
    )
    learner = Learner(
        model,
        optim,
        nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
        scheduler=sched,
        scheduler_interval=interval,
        metrics=["accuracy"],
        callbacks=callbacks,
        device=ctx.device,
        precision=cfg.precision,
        channels_last=cfg.channels_last,
    )
    return Setup(learner, train_loader, test=test_loader, info={"compiled": compiled})


def evaluate(learner: Learner, data, tta: bool, translate: int = 0) -> dict[str, float]:
    """Test loss/accuracy, with the mirror-image (and shifted-view) average if `tta` (same weights,
    a wrapped forward)."""
    if not tta:
        return learner.evaluate(data)
    plain = learner.model
    learner.model = FlipTTA(plain, translate)
    try:
        return learner.evaluate(data)
    finally:
        learner.model = plain


def run(cfg: CifarConfig, ctx: RunContext, title: str) -> dict:
    s = setup(cfg, ctx)
    start = time.perf_counter()
    history = ctx.fit(
        s.learner, s.train, cfg.epochs, val_data=s.test if cfg.eval_each_epoch else None
    )
    train_time_s = time.perf_counter() - start
    if history.rows:
        plot_history(
            history.rows,
            ctx.run_dir.plot_path("curves.png"),
            f"{title} on CIFAR-10",
            steps=ctx.run_dir.steps(),
        )
    plain = s.learner.evaluate(s.test)
    final = evaluate(s.learner, s.test, tta=True, translate=cfg.tta_translate) if cfg.tta else plain
    epochs_done = s.learner.epoch
    return {
        "test_accuracy": final["accuracy"],
        "test_loss": final["loss"],
        "test_accuracy_no_tta": plain["accuracy"],
        "train_time_s": train_time_s,
        "epochs": epochs_done,
        "steps": s.learner.global_step,
        "train_images_per_s": epochs_done * len(s.train) * cfg.batch_size / max(train_time_s, 1e-9),
        "precision": s.learner.precision,
        "compiled": s.info["compiled"],
        "processes": ctx.world_size,
    }

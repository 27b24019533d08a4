"""The TensorFlow post's convnet on MNIST: the tutorial's recipe and two of ours.

Claim: ≈ 99.2 % test accuracy with Adam 1e-4, batch 50, 20,000 steps (TF "Deep MNIST" tutorial;
the post stops at 5,000 steps and 98 %); ours: the same network to 99.2 % in ≤ 3 minutes on a
2-core CPU (1cycle Adam, batch 128, 3 epochs, fp32 + channels_last), and in a third of that time
with bf16, batch 256, 2 epochs (preset fast).
Run:   mlrepro run mnist-cnn --seeds 0,1,2    (tutorial: --preset tutorial; --preset fast)
Quick: mlrepro run mnist-cnn --quick
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import ExperimentConfig, opt
from ..data import TensorLoader
from ..data.fashion_mnist import FASHION_MNIST
from ..data.mnist import MNIST
from ..engine import Learner
from ..engine.schedules import ScheduleName
from ..experiment import DataSpec, Experiment, Preset, RunContext, Setup
from ..nn import create_model
from ..plotting import plot_history
from ..recipes import holdout, schedule

DATASETS = {"mnist": MNIST, "fashion-mnist": FASHION_MNIST}


@dataclass(frozen=True)
class Config(ExperimentConfig):
    dataset: Literal["mnist", "fashion-mnist"] = opt(
        "mnist", "TF tutorial", "the dataset to train on"
    )
    schedule: ScheduleName = opt("onecycle", "ours", "LR schedule (tutorial: constant)")
    lr: float = opt(3e-3, "ours", "Adam's learning rate, the 1cycle peak (tutorial: 1e-4)", gt=0)
    batch_size: int = opt(128, "ours", "minibatch size (tutorial: 50)", ge=1)
    epochs: int = opt(3, "ours", "training epochs (ignored when total_steps > 0)", ge=1)
    total_steps: int = opt(
        0, "TF tutorial", "stop after this many steps (tutorial: 20,000; 0 = epochs)", ge=0
    )
    warmup_frac: float = opt(
        0.25, "ours", "rising part of 1cycle (and of warmup-cosine)", gt=0, lt=1
    )
    weight_decay: float = opt(0.0, "TF tutorial", "Adam's L2 weight decay", ge=0)
    dropout: float = opt(
        0.5, "TF tutorial", "dropout before the last layer (keep_prob 0.5)", ge=0, lt=1
    )
    init: Literal["tf", "torch"] = opt(
        "torch", "ours", "weight init (tutorial: truncated normal 0.1)"
    )
    normalize: bool = opt(True, "ours", "normalise pixels by mean/std (tutorial: pixels in [0, 1])")
    val_size: int = opt(5000, "TF tutorial", "training images held out to validate (55k/5k)", ge=1)
    train_limit: int = opt(0, "ours", "training images used (0 = all)", ge=0)
    test_limit: int = opt(0, "ours", "test images used (0 = all 10,000)", ge=0)
    precision: Literal["fp32", "bf16"] = opt("fp32", "ours", "training precision (bf16 autocast)")
    channels_last: bool = opt(True, "ours", "NHWC memory layout (faster convolutions on CPU)")


PRESETS = {
    "tutorial": Preset(
        {
            "schedule": "constant",
            "lr": 1e-4,
            "batch_size": 50,
            "total_steps": 20_000,
            "init": "tf",
            "normalize": False,
        },
        "the TF tutorial's recipe: Adam 1e-4, batch 50, 20,000 steps",
        "≈ 18 min",
    ),
    "fast": Preset(
        # batch 256 runs ~1.4× the images/s of batch 128 in bf16 on a 2-core CPU (512: no more);
        # LR 5e-3 for the doubled batch. 3 seeds: 99.22 % in 0.28× the default's time (docs).
        {"precision": "bf16", "epochs": 2, "batch_size": 256, "lr": 5e-3},
        "bf16 autocast, batch 256, 1cycle to 5e-3, 2 epochs (CPUs with AVX512-BF16/AMX, GPUs)",
        "≈ 30 s on 2 cores",
    ),
    "quick": Preset(
        {"epochs": 1, "train_limit": 500, "val_size": 100, "test_limit": 500, "batch_size": 50},
        "smoke test: 1 epoch on 500 images",
        "seconds",
    ),
}


def build_model(cfg: Config) -> nn.Module:
    """The network a run of this config trains (`mlrepro export` rebuilds it from config.json)."""
    return create_model("tf_cnn_mnist", dropout=cfg.dropout, init=cfg.init)


def data_spec(cfg: Config) -> DataSpec:
    stats = DATASETS[cfg.dataset]
    return DataSpec(
        cfg.dataset, (1, 28, 28), 10, *((stats.mean, stats.std) if cfg.normalize else ())
    )


def setup(cfg: Config, ctx: RunContext) -> Setup:
    """Data loaders and a ready Learner (shared by `run` and `mlrepro lr-find`)."""
    train, test = ctx.load(cfg.dataset, "train", "test")
    x, y, vx, vy = holdout(train.images, train.labels, cfg.val_size, cfg.train_limit)
    norm = {"mean": train.mean, "std": train.std} if cfg.normalize else {}
    train_loader = TensorLoader(
        x, y, cfg.batch_size, shuffle=True, seed=ctx.seed, device=ctx.device, **norm
    )
    n_test = cfg.test_limit or len(test)

    total = cfg.total_steps or cfg.epochs * len(train_loader)
    model = build_model(cfg)
    # fused: one pass over each tensor per step instead of about a dozen (same update)
    optim = torch.optim.Adam(
        model.parameters(),
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        fused=ctx.device.type in ("cpu", "cuda") or None,
    )
    # Laid out over exactly `total` steps (the tutorial's budget need not be whole epochs), so one
    # schedule "epoch" is one step here; restarts come once per epoch, piecewise drops at the WRN
    # paper's 30/60/80 % of training.
    sched = schedule(
        cfg.schedule,
        optim,
        epochs=total,
        steps_per_epoch=1,
        pct_start=cfg.warmup_frac,
        warmup_frac=cfg.warmup_frac,
        cycle_epochs=len(train_loader),
        milestones_epochs=sorted({round(f * total) for f in (0.3, 0.6, 0.8)} - {0, total}),
    )
    learner = Learner(
        model,
        optim,
        nn.CrossEntropyLoss(),
        scheduler=sched,
        metrics=["accuracy"],
        device=ctx.device,
        precision=cfg.precision,
        channels_last=cfg.channels_last,
    )
    return Setup(
        learner,
        train_loader,
        val=TensorLoader(vx, vy, 1000, device=ctx.device, **norm),
        test=TensorLoader(
            test.images[:n_test], test.labels[:n_test], 1000, device=ctx.device, **norm
        ),
        info={"total_steps": total},
    )


def run(cfg: Config, ctx: RunContext) -> dict:
    s = setup(cfg, ctx)
    epochs = math.ceil(s.info["total_steps"] / len(s.train))
    start = time.perf_counter()
    history = ctx.fit(
        s.learner,
        s.train,
        epochs,
        val_data=s.val,
        # the tutorial counts steps, not epochs: the epoch that reaches them ends there
        max_steps=s.info["total_steps"],
    )
    train_time_s = time.perf_counter() - start
    if history.rows:
        plot_history(
            history.rows,
            ctx.run_dir.plot_path("curves.png"),
            f"tf_cnn_mnist on {cfg.dataset}",
            steps=ctx.run_dir.steps(),
        )
    test_logs = s.learner.evaluate(s.test)
    return {
        "test_accuracy": test_logs["accuracy"],
        "test_loss": test_logs["loss"],
        "val_accuracy": s.learner.evaluate(s.val)["accuracy"],
        "steps": s.learner.global_step,
        "epochs": s.learner.global_step / len(s.train),
        "train_time_s": train_time_s,
        "train_images": len(s.train.inputs),
    }


EXPERIMENT = Experiment(
    name="mnist-cnn",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim=(
        "≈ 99.2 % (TF tutorial, 20k steps); ours: 99.2 % in ≤ 3 min on a 2-core CPU, and in ≤ ⅓ of "
        "the default's time with --preset fast"
    ),
    headline=("test_accuracy", "wall_time_s"),
    data=data_spec,
    build_model=build_model,
    setup=setup,
)

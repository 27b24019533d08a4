"""Super-convergence: 1cycle at a range-test LR vs the WRN paper's piecewise schedule.

Claim: 1cycle reaches the piecewise schedule's final accuracy in a fraction of the epochs (Smith &
Topin, 2017; blog); target here: ≤ ¼ of the epochs, on a small pre-activation ResNet and
Fashion-MNIST, a size this 2-core CPU can train three times over.
Run:   mlrepro run superconvergence --preset full --seeds 0,1,2
Quick: mlrepro run superconvergence --quick

"Epochs needed" is the same count for both schedules: the first epoch whose validation accuracy is
≥ the target, the target being the piecewise run's final validation accuracy (so the piecewise
count is the first epoch at which it already stood at its final value). 1cycle budgets are tried
shortest first; the first run that reaches the target gives 1cycle's count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import ExperimentConfig, opt
from ..data import TensorLoader
from ..data.augment import CifarAugment
from ..engine import Learner
from ..engine.lr_finder import lr_find
from ..experiment import Experiment, Preset, RunContext
from ..nn.wide_resnet import WideResNet
from ..plotting import plot_lr_find, plt, save_figure
from ..recipes import holdout, schedule


@dataclass(frozen=True)
class Config(ExperimentConfig):
    dataset: Literal["fashion-mnist", "mnist"] = opt(
        "fashion-mnist", "ours", "a dataset this CPU fits"
    )
    depth: int = opt(10, "ours", "WRN depth: WRN-10-1 is the family's smallest", ge=4)
    k: int = opt(1, "ours", "WRN width multiplier", ge=1)
    first_width: int = opt(12, "ours", "channels of the first convolution (paper: 16)", ge=8)
    baseline_epochs: int = opt(12, "ours", "epochs of the piecewise baseline (paper: 200)", ge=2)
    baseline_lr: float = opt(0.1, "WRN paper", "the piecewise schedule's starting LR", gt=0)
    milestone_fracs: tuple[float, ...] = opt(
        (0.3, 0.6, 0.8), "WRN paper", "LR drops at these fractions of the epochs", gt=0, lt=1
    )
    gamma: float = opt(0.2, "WRN paper", "LR factor at each drop", gt=0)
    onecycle_budgets: tuple[int, ...] = opt(
        (2, 3, 6), "ours", "1cycle lengths tried, shortest first", ge=1
    )
    max_lr: float = opt(0.0, "ours", "1cycle peak; 0 = the LR range test's pick", ge=0)
    lr_suggestion: Literal["valley", "steepest", "minimum/10", "blog", "minimum"] = opt(
        "valley", "ours", "which range-test pick is the peak (minimum: Smith & Topin's upper bound)"
    )
    lr_find_steps: int = opt(100, "fastai", "batches of the LR range test", ge=5)
    momentum: float = opt(
        0.9, "WRN paper", "SGD momentum (1cycle cycles 0.95 → 0.85 → 0.95)", ge=0, lt=1
    )
    div_factor: float = opt(25.0, "torch, fastai", "1cycle starts at max_lr / this", gt=1)
    weight_decay: float = opt(5e-4, "WRN paper", "L2 weight decay", ge=0)
    onecycle_weight_decay: float | None = opt(
        None, "Smith 2018", "1cycle's weight decay (none = weight_decay; less with large LRs)", ge=0
    )
    batch_size: int = opt(128, "WRN paper", "minibatch size", ge=1)
    train_limit: int = opt(10_000, "ours", "training images used (0 = all)", ge=0)
    val_size: int = opt(5000, "ours", "training images held out to validate", ge=1)
    test_limit: int = opt(0, "ours", "test images used (0 = all)", ge=0)
    channels_last: bool = opt(True, "ours", "NHWC memory layout (faster convolutions on CPU)")
    crop_pad: int = opt(
        0, "WRN paper", "random crops from a border this wide, and flips (0 = none)", ge=0
    )

    renamed = {"augment_pad": "crop_pad"}  # old run folders' config.json

    def validate(self) -> None:
        if not self.onecycle_budgets:
            raise ValueError("onecycle_budgets: give at least one 1cycle length")


PRESETS = {
    # first_width=4 with channels_last crashes torch 2.13's CPU convolution backward ("double free
    # or corruption"); 8 and up are fine, so the quick preset stays at 8.
    "quick": Preset(
        {
            "train_limit": 600,
            "val_size": 200,
            "test_limit": 500,
            "baseline_epochs": 2,
            "onecycle_budgets": (1,),
            "first_width": 8,
            "lr_find_steps": 15,
        },
        "smoke test: 2 + 1 epochs on 600 images",
        "seconds",
    ),
    "long": Preset(
        {
            "baseline_epochs": 40,
            "onecycle_budgets": (5, 7, 10),
            "max_lr": 0.5,
            "onecycle_weight_decay": 1e-4,
        },
        "a 40-epoch baseline and 1cycle budgets of N/8 to N/4 with Smith's large-LR settings",
        "≈ 18 min on a 2-core CPU",
    ),
    "full": Preset(
        {
            "train_limit": 0,
            "val_size": 5000,
            "crop_pad": 2,
            "baseline_epochs": 20,
            "onecycle_budgets": (3, 5),
            "max_lr": 0.5,
            "onecycle_weight_decay": 1e-4,
        },
        "all of Fashion-MNIST with crops and flips, so the baseline improves to its end",
        "≈ 13.5 min on a 2-core CPU",
    ),
    # A network of the paper's size (WRN-16-4, 2.7M parameters; Smith & Topin: ResNet-56, 0.85M)
    # and the 1cycle peak from the range test.
    "gpu": Preset(
        {
            "depth": 16,
            "k": 4,
            "first_width": 16,
            "train_limit": 0,
            "val_size": 5000,
            "crop_pad": 2,
            "baseline_epochs": 20,
            "onecycle_budgets": (3, 5),
            "onecycle_weight_decay": 1e-4,
        },
        "WRN-16-4 on all of Fashion-MNIST with crops and flips, 1cycle at the range test's pick",
        "≈ 1–2 min on a recent GPU",
    ),
    "gpu-mnist": Preset(
        {
            "dataset": "mnist",
            "depth": 16,
            "k": 4,
            "first_width": 16,
            "train_limit": 0,
            "val_size": 5000,
            "baseline_epochs": 20,
            "onecycle_budgets": (3, 5),
            "onecycle_weight_decay": 1e-4,
        },
        "the gpu preset on MNIST, without crops and flips (mirrored digits change class)",
        "≈ 1–2 min on a recent GPU",
    ),
}


def epochs_to_reach(accuracies: Sequence[float], target: float) -> int | None:
    """The first epoch (1-based) whose accuracy is ≥ `target`, or None if none is."""
    return next((i + 1 for i, a in enumerate(accuracies) if a >= target), None)


def epoch_ratio(baseline: Sequence[float], onecycle_runs: Sequence[Sequence[float]]) -> dict:
    """Epochs each schedule needs to reach the baseline's final accuracy, and their ratio.

    `onecycle_runs` are the 1cycle validation curves, shortest budget first; the first one that
    reaches the target counts (None and a None ratio when none does). `schedule_ratio` compares
    whole schedule lengths instead (that run's budget over the baseline's), as Smith & Topin do.
    """
    target = baseline[-1]
    base = epochs_to_reach(baseline, target)  # never None: the last epoch reaches itself
    hit = next((run for run in onecycle_runs if epochs_to_reach(run, target) is not None), None)
    one = epochs_to_reach(hit, target) if hit is not None else None
    return {
        "target": target,
        "baseline_epochs": base,
        "onecycle_epochs": one,
        "epoch_ratio": one / base if one is not None else None,
        "onecycle_budget": len(hit) if hit is not None else None,
        "schedule_ratio": len(hit) / len(baseline) if hit is not None else None,
    }


def _learner(
    cfg: Config,
    ctx: RunContext,
    steps_per_epoch: int,
    name: str,
    epochs: int,
    lr: float,
    weight_decay: float,
) -> Learner:
    torch.manual_seed(ctx.seed)  # every arm starts from the same weights
    model = WideResNet(cfg.depth, cfg.k, 0.0, in_channels=1, first_width=cfg.first_width)
    optim = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=cfg.momentum, nesterov=True, weight_decay=weight_decay
    )
    milestones = sorted({round(f * epochs) for f in cfg.milestone_fracs} - {0, epochs})
    sched = schedule(
        name,
        optim,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        milestones_epochs=milestones,
        gamma=cfg.gamma,
        div_factor=cfg.div_factor,
    )
    return Learner(
        model,
        optim,
        nn.CrossEntropyLoss(),
        scheduler=sched,
        metrics=["accuracy"],
        device=ctx.device,
        channels_last=cfg.channels_last,
    )


def _train(
    cfg: Config,
    ctx: RunContext,
    data: dict,
    name: str,
    epochs: int,
    lr: float,
    wd: float,
    label: str,
) -> list[dict]:
    """One arm, a stage of the run (its own checkpoint; resumable): per-epoch logs, each with the
    arm's final test accuracy."""
    learner = _learner(cfg, ctx, len(data["train"]), name, epochs, lr, wd)
    ctx.log(f"-- {label}: {name}, {epochs} epochs, lr {lr:.3g}, wd {wd:g}")
    hist = ctx.fit(learner, data["train"], epochs, val_data=data["val"], stage=label)
    test = learner.evaluate(data["test"])["accuracy"]
    return [{**r, "stage": label, "test_accuracy": test} for r in hist.rows]


def _plot(rows: list[dict], result: dict, path, title: str) -> None:
    """Validation accuracy per epoch of every arm, the target and where each arm first reached
    it."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    target = result["target"]
    finals = {r["stage"]: r["val_accuracy"] for r in rows}.values()  # each arm's last epoch
    for arm in dict.fromkeys(r["stage"] for r in rows):
        acc = [r["val_accuracy"] for r in rows if r["stage"] == arm]
        (line,) = ax.plot(range(1, len(acc) + 1), acc, "o-", ms=3, label=arm)
        if (e := epochs_to_reach(acc, target)) is not None:
            ax.plot([e], [acc[e - 1]], "*", ms=12, color=line.get_color())
    ax.axhline(target, color="0.5", ls="--", lw=1, label=f"target {target:.4f} (piecewise final)")
    ratio = result["epoch_ratio"]
    ax.set(
        xlabel="epoch",
        ylabel="validation accuracy",
        title=(
            f"{title}: epoch ratio {ratio:.3f}"
            if ratio is not None
            else f"{title}: target not reached"
        ),
    )
    # every final shown
    ax.set_ylim(max(0.0, min(target - 0.1, *finals) - 0.01), min(1.0, target + 0.03))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def run(cfg: Config, ctx: RunContext) -> dict:
    train, test = ctx.load(cfg.dataset, "train", "test")
    x, y, vx, vy = holdout(train.images, train.labels, cfg.val_size, cfg.train_limit)
    norm = {"mean": train.mean, "std": train.std, "device": ctx.device}
    # The WRN paper's crops (zero padding: black pixels) and flips, on the uint8 batch.
    aug = CifarAugment(crop_pad=cfg.crop_pad, flip=True, cutout=0) if cfg.crop_pad else None
    data = {
        "train": TensorLoader(
            x, y, cfg.batch_size, shuffle=True, drop_last=True, seed=ctx.seed, augment=aug, **norm
        ),
        "val": TensorLoader(vx, vy, 1000, **norm),
        "test": TensorLoader(
            test.images[: cfg.test_limit or None],
            test.labels[: cfg.test_limit or None],
            1000,
            **norm,
        ),
    }

    # (a) the piecewise baseline; its final validation accuracy is the target.
    rows = _train(
        cfg,
        ctx,
        data,
        "piecewise",
        cfg.baseline_epochs,
        cfg.baseline_lr,
        cfg.weight_decay,
        "piecewise",
    )
    target = rows[-1]["val_accuracy"]

    # (b) 1cycle at the range test's LR, shortest budget first, until one reaches the target.
    wd = cfg.weight_decay if cfg.onecycle_weight_decay is None else cfg.onecycle_weight_decay
    # The range test always runs (its picks go into the metrics); a set max_lr overrides its pick.
    probe = _learner(cfg, ctx, len(data["train"]), "constant", 1, 1e-3, wd)
    data["train"].set_epoch(0)  # the same batches whether or not the baseline was resumed
    found = lr_find(
        probe,
        data["train"],
        start_lr=1e-5,
        end_lr=10,
        num_steps=cfg.lr_find_steps,
        progress=ctx.verbose,
    )
    found.suggestions["minimum"] = found.lrs[
        min(range(len(found.losses)), key=found.losses.__getitem__)
    ]
    found.default = cfg.lr_suggestion
    plot_lr_find(found, ctx.run_dir.plot_path("lr_find.png"), "LR range test")
    max_lr = cfg.max_lr or found.suggestion
    one_runs: list[list[dict]] = []
    for budget in cfg.onecycle_budgets:
        one_runs.append(_train(cfg, ctx, data, "onecycle", budget, max_lr, wd, f"1cycle-{budget}"))
        if epochs_to_reach([r["val_accuracy"] for r in one_runs[-1]], target) is not None:
            break
    one_rows = [r for run_rows in one_runs for r in run_rows]

    result = epoch_ratio(
        [r["val_accuracy"] for r in rows],
        [[r["val_accuracy"] for r in run_rows] for run_rows in one_runs],
    )
    _plot(
        rows + one_rows,
        result,
        ctx.run_dir.plot_path("accuracy_curves.png"),
        f"piecewise vs 1cycle ({cfg.dataset})",
    )
    last = one_runs[-1]  # the successful run, or the longest budget tried
    one_epochs = result["onecycle_epochs"]
    return {
        "baseline_val_accuracy": target,
        "baseline_test_accuracy": rows[-1]["test_accuracy"],
        "baseline_epochs": float(result["baseline_epochs"]),
        "onecycle_max_lr": float(max_lr),
        **{f"lr_find_{k.replace('/', '_')}": float(v) for k, v in found.suggestions.items()},
        "onecycle_budget": float(len(last)),
        "onecycle_epochs": float(one_epochs) if one_epochs is not None else None,
        "onecycle_val_accuracy": last[-1]["val_accuracy"],
        "onecycle_test_accuracy": last[-1]["test_accuracy"],
        "epoch_ratio": result["epoch_ratio"],
        "schedule_ratio": result["schedule_ratio"],
    }


EXPERIMENT = Experiment(
    name="superconvergence",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim="1cycle needs ≤ ¼ of the piecewise schedule's epochs (blog / Smith & Topin)",
    headline=("baseline_val_accuracy", "onecycle_val_accuracy", "epoch_ratio"),
    search_metric=("baseline_val_accuracy", "maximize"),
    reproduce="mlrepro run superconvergence --preset full --seeds 0,1,2",
)

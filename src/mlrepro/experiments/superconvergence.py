"""Super-convergence: 1cycle at a range-test LR vs the WRN paper's piecewise schedule.

Claim: 1cycle reaches the piecewise schedule's final accuracy in a fraction of the epochs (Smith &
Topin, 2017; blog); target here: ≤ ¼ of the epochs, on a small pre-activation ResNet and
Fashion-MNIST, a size this 2-core CPU can train three times over.
Run:   mlrepro run superconvergence --preset full --seeds 0,1,2   Quick: mlrepro run superconvergence --quick

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
from torch.nn import functional as F

from ..data import TensorLoader
from ..engine import Learner, ProgressBar
from ..engine.lr_finder import lr_find
from ..engine.schedules import build_scheduler
from ..nn.wide_resnet import WideResNet
from ..plotting import plt, save_figure
from . import load_splits

CLAIM = "1cycle needs ≤ ¼ of the piecewise schedule's epochs (blog / Smith & Topin)"
HEADLINE = ("baseline_val_accuracy", "onecycle_val_accuracy", "epoch_ratio")
SEARCH_METRIC = ("baseline_val_accuracy", "maximize")


@dataclass(frozen=True)
class Config:
    dataset: Literal["fashion-mnist", "mnist"] = "fashion-mnist"  # ours: fits this CPU
    depth: int = 10  # ours: WRN-10-1, the smallest pre-activation ResNet of the family
    k: int = 1
    first_width: int = 12  # ours: narrower than the paper's 16 to fit a CPU
    baseline_epochs: int = 12  # ours (the paper's 200, scaled down)
    baseline_lr: float = 0.1  # WRN paper
    milestone_fracs: tuple[float, ...] = (0.3, 0.6, 0.8)  # WRN paper: epochs 60/120/160 of 200
    gamma: float = 0.2  # WRN paper: LR × 0.2 at each milestone
    onecycle_budgets: tuple[int, ...] = (2, 3, 6)  # ours: 1cycle lengths tried, shortest first
    max_lr: float = 0.0  # 0 = the LR range test's pick (lr_suggestion); else this peak
    # Which range-test pick is 1cycle's peak: the engine's (valley: ours, the default) or "minimum",
    # the LR where the smoothed loss stops falling (Smith & Topin's upper bound).
    lr_suggestion: Literal["valley", "steepest", "minimum/10", "blog", "minimum"] = "valley"
    lr_find_steps: int = 100  # fastai's default sweep length
    momentum: float = 0.9  # WRN paper (1cycle cycles it 0.95 → 0.85 → 0.95: torch's defaults, Smith's values)
    div_factor: float = 25.0  # torch/fastai: 1cycle starts at max_lr / 25
    weight_decay: float = 5e-4  # WRN paper
    onecycle_weight_decay: float | None = None  # None = weight_decay (Smith 2018: less with large LRs)
    batch_size: int = 128  # WRN paper
    train_limit: int = 10_000  # ours: a 10k-image subset keeps 3 seeds within minutes
    val_size: int = 5000  # ours
    test_limit: int = 0  # ours: 0 = the whole test set
    channels_last: bool = True  # ours: faster convnets on CPU
    augment_pad: int = 0  # WRN paper: random crops from a 4-px border of 32 px, and flips; 0 = none

    def __post_init__(self):
        if self.baseline_epochs < 2 or not self.onecycle_budgets or min(self.onecycle_budgets) < 1:
            raise ValueError("baseline_epochs must be >= 2 and every onecycle budget >= 1 epoch")


# first_width=4 with channels_last crashes torch 2.13's CPU convolution backward ("double free or
# corruption"); 8 and up are fine, so the quick preset stays at 8.
PRESETS = {
    "quick": {"train_limit": 600, "val_size": 200, "test_limit": 500, "baseline_epochs": 2,
              "onecycle_budgets": (1,), "first_width": 8, "lr_find_steps": 15},
    # A long baseline, as in the paper's comparison: 40 epochs of the WRN schedule (its 200, scaled
    # to this CPU); 1cycle budgets of N/8, ~N/6 and N/4 epochs with Smith's large-LR settings:
    # momentum 0.95 → 0.85, weight decay 1e-4, and a peak of 0.5: between the valley pick (0.18)
    # and the loss minimum (0.8) of a calibration range test, and better than the valley pick in
    # 10-epoch 1cycle trials on a calibration seed (10) — docs/results.md.
    "long": {"baseline_epochs": 40, "onecycle_budgets": (5, 7, 10), "max_lr": 0.5,
             "onecycle_weight_decay": 1e-4},
    # The whole training set (55,000 images + 5,000 to validate on) with the WRN paper's crops and
    # flips (2-px border of 28 px), so the piecewise baseline keeps improving to its last LR drop
    # instead of standing at its final value after a third of its epochs, as `long` does on 12,000
    # un-augmented images. 20 epochs (the paper's 200, scaled to what this CPU trains in ~30 min);
    # 1cycle budgets of 3 and 5 epochs (≤ N/4), with `long`'s large-LR settings.
    "full": {"train_limit": 0, "val_size": 5000, "augment_pad": 2, "baseline_epochs": 20,
             "onecycle_budgets": (3, 5), "max_lr": 0.5, "onecycle_weight_decay": 1e-4},
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
    return {"target": target, "baseline_epochs": base, "onecycle_epochs": one,
            "epoch_ratio": one / base if one is not None else None,
            "onecycle_budget": len(hit) if hit is not None else None,
            "schedule_ratio": len(hit) / len(baseline) if hit is not None else None}


def crop_flip(pad: int, fill: float):
    """The WRN paper's augmentation as batch tensor ops (a TensorLoader transform): a random
    H×W window of the image padded by `pad` px of `fill`, mirrored left-right with probability ½."""

    def transform(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:  # (B, C, H, W)
        b, _, h, w = x.shape
        dy, dx = (torch.randint(2 * pad + 1, (b,), generator=gen).to(x.device) for _ in range(2))
        flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
        cols = torch.where(flip[:, None, None], cols.flip(-1), cols)
        padded = F.pad(x, (pad, pad, pad, pad), value=fill)  # (B, C, H + 2p, W + 2p)
        out = padded[torch.arange(b, device=x.device)[:, None, None], :, rows, cols]  # (B, H, W, C)
        return out.permute(0, 3, 1, 2).contiguous()

    return transform


def _learner(cfg, ctx, steps_per_epoch: int, schedule: str, epochs: int, lr: float,
             weight_decay: float) -> Learner:
    torch.manual_seed(ctx.seed)  # every arm starts from the same weights
    model = WideResNet(cfg.depth, cfg.k, 0.0, in_channels=1, first_width=cfg.first_width)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=weight_decay)
    milestones = sorted({round(f * epochs) for f in cfg.milestone_fracs} - {0, epochs})
    sched = build_scheduler(schedule, opt, epochs=epochs, steps_per_epoch=steps_per_epoch,
                            milestones_epochs=milestones, gamma=cfg.gamma, div_factor=cfg.div_factor)
    return Learner(model, opt, nn.CrossEntropyLoss(), scheduler=sched, metrics=["accuracy"],
                   device=ctx.device, channels_last=cfg.channels_last)


def _train(cfg, ctx, data, schedule: str, epochs: int, lr: float, wd: float, label: str) -> list[dict]:
    """One arm: per-epoch logs tagged with the arm's name and its final test accuracy."""
    learner = _learner(cfg, ctx, len(data["train"]), schedule, epochs, lr, wd)
    ctx.log(f"-- {label}: {schedule}, {epochs} epochs, lr {lr:.3g}, wd {wd:g}")
    hist = learner.fit(data["train"], epochs, val_data=data["val"],
                       callbacks=[ProgressBar()] if ctx.verbose else [])
    test = learner.evaluate(data["test"])["accuracy"]
    return [{**r, "arm": label, "test_accuracy": test} for r in hist.rows]


def _plot(rows: list[dict], result: dict, path, title: str) -> None:
    """Validation accuracy per epoch of every arm, the target and where each arm first reached it."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    target = result["target"]
    finals = {r["arm"]: r["val_accuracy"] for r in rows}.values()  # each arm's last epoch
    for arm in dict.fromkeys(r["arm"] for r in rows):
        acc = [r["val_accuracy"] for r in rows if r["arm"] == arm]
        (line,) = ax.plot(range(1, len(acc) + 1), acc, "o-", ms=3, label=arm)
        if (e := epochs_to_reach(acc, target)) is not None:
            ax.plot([e], [acc[e - 1]], "*", ms=12, color=line.get_color())
    ax.axhline(target, color="0.5", ls="--", lw=1, label=f"target {target:.4f} (piecewise final)")
    ratio = result["epoch_ratio"]
    ax.set(xlabel="epoch", ylabel="validation accuracy",
           title=f"{title}: epoch ratio {ratio:.3f}" if ratio is not None else f"{title}: target not reached")
    ax.set_ylim(max(0.0, min(target - 0.1, *finals) - 0.01), min(1.0, target + 0.03))  # every final shown
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def run(cfg: Config, ctx) -> dict:
    train, test = load_splits(ctx, cfg.dataset, "train", "test")
    n = min(len(train), cfg.train_limit + cfg.val_size) if cfg.train_limit else len(train)
    n_val = min(cfg.val_size, n // 5)
    x, y = train.images[:n], train.labels[:n]
    norm = {"mean": train.mean, "std": train.std, "device": ctx.device}
    # Padding is black in pixel space: (0 - mean) / std once normalised.
    aug = crop_flip(cfg.augment_pad, -train.mean[0] / train.std[0]) if cfg.augment_pad else None
    data = {"train": TensorLoader(x[:-n_val], y[:-n_val], cfg.batch_size, shuffle=True, drop_last=True,
                                  seed=ctx.seed, transform=aug, **norm),
            "val": TensorLoader(x[-n_val:], y[-n_val:], 1000, **norm),
            "test": TensorLoader(test.images[: cfg.test_limit or None], test.labels[: cfg.test_limit or None],
                                 1000, **norm)}

    # (a) the piecewise baseline; its final validation accuracy is the target.
    rows = _train(cfg, ctx, data, "piecewise", cfg.baseline_epochs, cfg.baseline_lr, cfg.weight_decay,
                  "piecewise")
    target = rows[-1]["val_accuracy"]

    # (b) 1cycle at the range test's LR, shortest budget first, until one reaches the target.
    wd = cfg.weight_decay if cfg.onecycle_weight_decay is None else cfg.onecycle_weight_decay
    # The range test always runs (its picks go into the metrics); a set max_lr overrides its pick.
    probe = _learner(cfg, ctx, len(data["train"]), "constant", 1, 1e-3, wd)
    found = lr_find(probe, data["train"], start_lr=1e-5, end_lr=10, num_steps=cfg.lr_find_steps)
    found.suggestions["minimum"] = found.lrs[min(range(len(found.losses)), key=found.losses.__getitem__)]
    found.default = cfg.lr_suggestion
    found.plot(ctx.run_dir.plot_path("lr_find.png"), "LR range test")
    max_lr = cfg.max_lr or found.suggestion
    one_runs: list[list[dict]] = []
    for budget in cfg.onecycle_budgets:
        one_runs.append(_train(cfg, ctx, data, "onecycle", budget, max_lr, wd, f"1cycle-{budget}"))
        if epochs_to_reach([r["val_accuracy"] for r in one_runs[-1]], target) is not None:
            break
    one_rows = [r for run_rows in one_runs for r in run_rows]
    ctx.run_dir.write_history(rows + one_rows)

    result = epoch_ratio([r["val_accuracy"] for r in rows],
                         [[r["val_accuracy"] for r in run_rows] for run_rows in one_runs])
    _plot(rows + one_rows, result, ctx.run_dir.plot_path("accuracy_curves.png"),
          f"piecewise vs 1cycle ({cfg.dataset})")
    last = one_runs[-1]  # the successful run, or the longest budget tried
    one_epochs = result["onecycle_epochs"]
    return {
        "baseline_val_accuracy": target, "baseline_test_accuracy": rows[-1]["test_accuracy"],
        "baseline_epochs": float(result["baseline_epochs"]), "onecycle_max_lr": float(max_lr),
        **{f"lr_find_{k.replace('/', '_')}": float(v) for k, v in found.suggestions.items()},
        "onecycle_budget": float(len(last)),
        "onecycle_epochs": float(one_epochs) if one_epochs is not None else None,
        "onecycle_val_accuracy": last[-1]["val_accuracy"], "onecycle_test_accuracy": last[-1]["test_accuracy"],
        "epoch_ratio": result["epoch_ratio"], "schedule_ratio": result["schedule_ratio"],
    }

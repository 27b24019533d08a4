"""LR range test (Smith 2015; fastai's `LRFinder`): an exponential LR sweep that leaves no trace.

The sweep trains for up to `num_steps` batches while the LR grows from `start_lr` to `end_lr`,
records an exponentially smoothed loss, stops once that loss exceeds `diverge_factor` × its best
(or turns NaN), and finally restores the model, optimizer, scheduler and every RNG exactly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .progress import Progress
from .runtime import get_rng_state, set_rng_state

SUGGESTIONS = ("valley", "steepest", "minimum/10", "blog")


@dataclass
class LRFinderResult:
    lrs: list[float]
    losses: list[float]  # smoothed, bias-corrected
    raw_losses: list[float]
    suggestions: dict[str, float] = field(default_factory=dict)
    default: str = "valley"
    stopped_early: bool = False

    @property
    def suggestion(self) -> float:
        return self.suggestions[self.default]


def _valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The middle (in log LR) of the descent: from the last point still on the starting plateau
    (within 10 % of the total drop) to the minimum. Anchoring on the *last* plateau point means an
    early noisy dip cannot drag the pick down; taking the middle keeps clear of the minimum, where
    the loss is about to blow up. (fastai's 'valley' takes a point 1/2 into the longest decreasing
    subsequence, which on a long flat start lands before the descent has begun.)"""
    i_min = int(np.argmin(losses))
    top = float(np.median(losses[: max(1, len(losses) // 10)]))
    drop = top - float(losses[i_min])
    if i_min < 2 or drop <= 0:
        return float(lrs[i_min]) / 10
    on_plateau = np.flatnonzero(losses[: i_min + 1] >= top - 0.1 * drop)
    start = int(on_plateau[-1]) if len(on_plateau) else 0
    return float(lrs[start + (i_min - start) // 2])


def suggest(lrs, losses) -> dict[str, float]:
    """The four suggestions for a (smoothed) loss curve.

    - valley: the default; the middle of the descent, robust to noise (see `_valley`).
    - steepest: most negative d loss / d log lr, on a further-smoothed curve between the first
      10 % of points and the minimum (raw finite differences on a noisy curve pick spikes).
    - minimum/10: one tenth of the LR at the minimum loss.
    - blog: "back off from the minimum by ~10×" rounded to the decade below the minimum's decade
      (the post reads 1e-1 off the plot and picks 1e-2).
    """
    lrs, losses = np.asarray(lrs, float), np.asarray(losses, float)
    i_min = int(np.nanargmin(losses))
    lr_min = float(lrs[i_min])
    out = {"valley": _valley(lrs, losses)}
    skip = len(losses) // 10  # the EMA's first points rest on a handful of batches: noise
    seg = losses[skip : i_min + 1]
    if len(seg) >= 5:
        k = max(3, len(seg) // 10) | 1
        smooth = np.convolve(np.pad(seg, k // 2, mode="edge"), np.ones(k) / k, mode="valid")
        grad = np.gradient(smooth, np.log(lrs[skip : i_min + 1]))
        out["steepest"] = float(lrs[skip + int(np.argmin(grad))])
    else:
        out["steepest"] = lr_min / 10
    out["minimum/10"] = lr_min / 10
    out["blog"] = 10.0 ** (math.floor(math.log10(lr_min)) - 1)
    return out


def lr_find(
    learner,
    data: Iterable,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    suggestion: str = "valley",
    progress: bool = False,
) -> LRFinderResult:
    """Run the LR range test on `learner` with batches from `data`; the learner is left untouched.
    `progress` reports the sweep on stderr (engine.progress)."""
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_find: need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    if num_steps < 5:
        raise ValueError(f"lr_find: num_steps must be >= 5, got {num_steps}")
    if suggestion not in SUGGESTIONS:
        raise ValueError(
            f"lr_find: unknown suggestion {suggestion!r}; valid: {', '.join(SUGGESTIONS)}"
        )
    if learner.optimizer is None or learner.loss_fn is None:
        raise ValueError("lr_find needs a Learner with an optimizer and a loss_fn")

    saved = {
        "model": copy.deepcopy(learner.model.state_dict()),
        "optimizer": copy.deepcopy(learner.optimizer.state_dict()),
        "scheduler": copy.deepcopy(learner.scheduler.state_dict()) if learner.scheduler else None,
        "rng": get_rng_state(),
        "counters": (learner.epoch, learner.global_step),
    }
    scheduler, learner.scheduler = learner.scheduler, None  # the sweep owns the LR
    gamma = (end_lr / start_lr) ** (1 / (num_steps - 1))
    lrs, raw, smoothed = [], [], []
    avg, best, stopped = 0.0, math.inf, False
    bar = Progress(num_steps, "LR range test", unit="step", enabled=progress)
    try:
        step, epoch = 0, 0
        while step < num_steps:
            if hasattr(data, "set_epoch"):
                data.set_epoch(epoch)
            for batch in data:
                lr = start_lr * gamma**step
                for group in learner.optimizer.param_groups:
                    group["lr"] = lr
                loss = float(learner.train_step(batch)[0])
                avg = smooth * avg + (1 - smooth) * loss
                value = avg / (1 - smooth ** (step + 1))  # bias correction
                lrs.append(lr)
                raw.append(loss)
                smoothed.append(value)
                step += 1
                bar.update(1, f"lr {lr:.2e}, loss {value:.4g}")
                if not math.isfinite(value) or value > diverge_factor * best:
                    stopped = True
                    break
                best = min(best, value)
                if step >= num_steps:
                    break
            if stopped:
                break
            epoch += 1
    finally:
        bar.close()
        learner.model.load_state_dict(saved["model"])
        learner.optimizer.load_state_dict(saved["optimizer"])
        learner.scheduler = scheduler
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        learner.epoch, learner.global_step = saved["counters"]
        set_rng_state(saved["rng"])

    # Drop the diverged tail point(s) before suggesting: they are not a usable part of the curve.
    keep = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    lrs_k = [lrs[i] for i in keep]
    sm_k = [smoothed[i] for i in keep]
    raw_k = [raw[i] if math.isfinite(raw[i]) else sm_k[-1] for i in keep]
    if len(lrs_k) < 3:
        raise ValueError(f"lr_find: the loss diverged after {len(lrs)} steps; lower start_lr")
    return LRFinderResult(lrs_k, sm_k, raw_k, suggest(lrs_k, sm_k), suggestion, stopped)

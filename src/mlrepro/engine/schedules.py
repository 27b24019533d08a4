"""LR schedules by name, stepped once per batch. torch's own schedulers wherever they exist
(OneCycleLR cycles momentum inversely and has `three_phase`; CosineAnnealingWarmRestarts has
`T_mult`; MultiStepLR is the WRN paper's piecewise schedule); pure functions of the step, in the
style of nanoGPT's `get_lr(it)`, only for what torch lacks: a cosine restart whose peak decays at
every restart, and linear warmup into cosine decay.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Sequence
from typing import Literal

import torch
from torch.optim.lr_scheduler import (
    CosineAnnealingWarmRestarts,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
)

ScheduleName = Literal[
    "constant", "onecycle", "cosine-restarts", "cosine-restarts-decay", "warmup-cosine", "piecewise"
]
SCHEDULES: tuple[str, ...] = typing.get_args(ScheduleName)


def cosine_restarts_factor(
    step: int, cycle_steps: int, t_mult: float = 1.0, decay: float = 1.0, min_factor: float = 0.0
) -> float:
    """LR multiplier at `step` for SGDR whose i-th cycle lasts cycle_steps·t_mult^i and peaks at
    decay^i."""
    i, start, length = 0, 0.0, float(cycle_steps)
    while step >= start + length:  # at most a few dozen cycles
        start += length
        length *= t_mult
        i += 1
    t = (step - start) / length
    peak = decay**i
    return min_factor + (peak - min_factor) * 0.5 * (1 + math.cos(math.pi * t))


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int, min_factor: float = 0.0
) -> float:
    """Linear warmup from ~0 to 1 over `warmup_steps`, then cosine decay to `min_factor`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))


def build_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    max_lr: float | None = None,
    pct_start: float = 0.3,
    three_phase: bool = False,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    cycle_epochs: float = 1.0,
    t_mult: float = 2.0,
    restart_decay: float = 0.5,
    warmup_frac: float = 0.05,
    min_lr_frac: float = 0.0,
    milestones_epochs: Sequence[int] = (60, 120, 160),
    gamma: float = 0.2,
    cycle_momentum: bool = True,
    anneal_strategy: Literal["cos", "linear"] = "cos",
) -> LRScheduler | None:
    """A per-batch scheduler for `epochs` × `steps_per_epoch` steps (None for "constant").

    `max_lr` defaults to each parameter group's current lr. Milestones are in epochs (WRN:
    60/120/160, ×0.2). A 1cycle whose warm-up or annealing phase would last at most one step is
    refused (torch would divide by zero or train at a constant LR).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    if epochs < 1 or steps_per_epoch < 1:
        raise ValueError(
            f"schedule {name}: epochs and steps_per_epoch must be >= 1, "
            f"got {epochs} and {steps_per_epoch}"
        )
    total = epochs * steps_per_epoch
    if max_lr is not None:
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] = max_lr
    if name == "constant":
        return None
    if name == "onecycle":
        if not 1 < pct_start * total < total - 1:
            raise ValueError(
                f"1cycle over {total} steps with a warm-up fraction of {pct_start:g} "
                "leaves a phase of at most one step; train for more steps"
            )
        has_momentum = any("momentum" in g or "betas" in g for g in optimizer.param_groups)
        return OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=total,
            pct_start=pct_start,
            three_phase=three_phase,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            anneal_strategy=anneal_strategy,
            cycle_momentum=cycle_momentum and has_momentum,
        )
    cycle = max(1, round(cycle_epochs * steps_per_epoch))
    if name == "cosine-restarts":
        if t_mult < 1 or t_mult != int(t_mult):
            raise ValueError(
                f"schedule cosine-restarts: t_mult must be an integer >= 1 (torch's "
                f"T_mult), got {t_mult}; use cosine-restarts-decay for other values"
            )
        eta_min = min_lr_frac * optimizer.param_groups[0]["lr"]
        return CosineAnnealingWarmRestarts(
            optimizer, T_0=cycle, T_mult=int(t_mult), eta_min=eta_min
        )
    if name == "cosine-restarts-decay":
        fn = functools.partial(
            cosine_restarts_factor,
            cycle_steps=cycle,
            t_mult=t_mult,
            decay=restart_decay,
            min_factor=min_lr_frac,
        )
        return LambdaLR(optimizer, fn)
    if name == "warmup-cosine":
        fn = functools.partial(
            warmup_cosine_factor,
            total_steps=total,
            warmup_steps=max(1, round(warmup_frac * total)),
            min_factor=min_lr_frac,
        )
        return LambdaLR(optimizer, fn)
    # piecewise: milestones in epochs, scaled to steps because every schedule here steps per batch.
    bad = [m for m in milestones_epochs if not 0 < m < epochs]
    if bad:
        raise ValueError(
            f"schedule piecewise: milestones {list(milestones_epochs)} must lie inside "
            f"(0, {epochs}) epochs"
        )
    return MultiStepLR(
        optimizer, milestones=[m * steps_per_epoch for m in milestones_epochs], gamma=gamma
    )


def trace(
    name: str, *, epochs: int, steps_per_epoch: int, lr: float = 0.1, momentum: float = 0.9, **kw
) -> tuple[list[float], list[float]]:
    """(lr, momentum) per iteration of a schedule, for plots; uses a throwaway SGD optimizer."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=momentum)
    sched = build_scheduler(name, opt, epochs=epochs, steps_per_epoch=steps_per_epoch, **kw)
    lrs, moms = [], []
    for _ in range(epochs * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        if sched is not None:
            sched.step()
    return lrs, moms

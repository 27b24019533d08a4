"""Recipe parts the experiments share: the train/validation split and schedules by name.

One implementation each, so every experiment splits, schedules and refuses bad settings the same way
(with errors that name the option to change).
"""

from __future__ import annotations

import torch

from .engine.schedules import build_scheduler
from .errors import ConfigError


def holdout(
    images: torch.Tensor, labels: torch.Tensor, val_size: int, train_limit: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train x, train y, val x, val y): the last `val_size` of the first `train_limit + val_size`
    images (all of them when train_limit is 0) validate, the rest train. Fixed across seeds, like
    the TF tutorial's 55,000 / 5,000 split of MNIST's training set."""
    n = len(images)
    if val_size < 1:
        raise ConfigError(f"option --val-size must be >= 1, got {val_size}")
    used = train_limit + val_size if train_limit else n
    if used > n or val_size >= used:
        what = (
            f"--train-limit {train_limit} + --val-size {val_size}"
            if train_limit
            else f"--val-size {val_size}"
        )
        hint = (
            " (the bundled sample is small: use --quick, or point --data-dir at the full data)"
            if n < 10_000
            else ""
        )
        raise ConfigError(f"{what} need more than the {n} training images{hint}")
    x, y = images[:used], labels[:used]
    return x[:-val_size], y[:-val_size], x[-val_size:], y[-val_size:]


def schedule(name: str, optimizer: torch.optim.Optimizer, **kw):
    """`engine.schedules.build_scheduler`, its refusals turned into one-line ConfigErrors."""
    try:
        return build_scheduler(name, optimizer, **kw)
    except ValueError as e:
        raise ConfigError(f"--schedule {name}: {e}") from None

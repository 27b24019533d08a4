"""The exploration rate ε as a pure function of training progress (like nanoGPT's `get_lr(it)`)."""

from __future__ import annotations


def epsilon(
    progress: float,
    *,
    start: float = 1.0,
    end: float = 0.1,
    hold_frac: float = 0.1,
    decay_end_frac: float = 0.6,
) -> float:
    """ε at `progress` ∈ [0, 1] of training: `start` until `hold_frac`, linear to `end` at
    `decay_end_frac`, then `end`.

    The blog (ViZDoom's 2018 example) calls this once per epoch with progress = epoch / epochs:
    ε = 1.0 for the first 10 % of epochs, decays linearly until 60 %, and stays at 0.1 after.
    """
    if not 0 <= hold_frac <= decay_end_frac <= 1:
        raise ValueError("need 0 <= hold_frac <= decay_end_frac <= 1")
    if progress < hold_frac:
        return start
    if progress >= decay_end_frac:
        return end
    return start - (progress - hold_frac) / (decay_end_frac - hold_frac) * (start - end)

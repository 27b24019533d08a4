"""Adversarial training (Madry et al., 2018): every step trains on attacked inputs.

`AdversarialLearner` is the engine's `Learner` with one change to its train step: the batch is
replaced by `attack(model, x, y)` first. With `fgsm_rs_attack` that is the "fast" recipe of Wong,
Rice & Kolter (2020, "Fast is better than free"): one FGSM step of α = 1.25·ε from a uniform
random start in the ε-box; with `pgd` bound to k steps it is Madry et al.'s PGD-k training.
"""

from __future__ import annotations

import functools

from ..engine import Learner
from .attacks import check_eps, pgd
from .robustness import Attack


def fgsm_rs_attack(eps: float, alpha_ratio: float = 1.25) -> Attack:
    """FGSM with a random start (Wong et al., 2020, Alg. 3): δ ~ U(−ε, ε), one step of α = 1.25ε."""
    check_eps(eps)
    return functools.partial(pgd, eps=eps, alpha=alpha_ratio * eps, steps=1, random_start=True)


def pgd_attack(eps: float, steps: int, alpha: float | None = None) -> Attack:
    """PGD-k with a random start; α defaults to 2.5·ε/k (Madry et al.)."""
    check_eps(eps)
    return functools.partial(
        pgd,
        eps=eps,
        alpha=2.5 * eps / steps if alpha is None else alpha,
        steps=steps,
        random_start=True,
    )


class AdversarialLearner(Learner):
    """A `Learner` that trains on `attack(model, x, y)` instead of x: the engine's own train step
    with the attack as its `transform_input` hook (so DDP, clipping, precision and callbacks stay).

    The attack runs the model in eval mode (dropout off, like evaluation); its random start draws
    from torch's global generator, which the engine's checkpoints save, so a resumed run repeats it.
    """

    def __init__(self, *args, attack: Attack, **kwargs):
        super().__init__(*args, transform_input=attack, **kwargs)
        self.attack = attack

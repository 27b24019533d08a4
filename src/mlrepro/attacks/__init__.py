"""Adversarial examples: FGSM, iterative FGSM, PGD (L∞ / L2), robustness curves, adversarial
training.

    >>> from mlrepro.attacks import Normalize, fgsm
    >>> model = torch.nn.Sequential(Normalize((0.1307,), (0.3081,)), net)  # doctest: +SKIP
    >>> x_adv = fgsm(model, x, y, eps=0.1)                                  # doctest: +SKIP

Inputs are pixels in [0, 1]; the model normalises them itself (`Normalize` as its first layer).
"""

from ..nn.normalize import Normalize
from .attacks import bim, check_eps, check_inputs, check_scores, eval_mode, fgsm, pgd
from .robustness import (
    ATTACKS,
    attack_batches,
    attack_stats,
    evaluate_attack,
    make_attack,
    pick_examples,
    plot_examples,
    plot_robustness,
    predict,
    robustness_curve,
)
from .training import AdversarialLearner, fgsm_rs_attack, pgd_attack

__all__ = [
    "ATTACKS",
    "AdversarialLearner",
    "Normalize",
    "attack_batches",
    "attack_stats",
    "bim",
    "check_eps",
    "check_inputs",
    "check_scores",
    "eval_mode",
    "evaluate_attack",
    "fgsm",
    "fgsm_rs_attack",
    "make_attack",
    "pgd",
    "pgd_attack",
    "pick_examples",
    "plot_examples",
    "plot_robustness",
    "predict",
    "robustness_curve",
]

"""FGSM on the adversarial-examples post's MLP, and robustness curves of the MLP and the CNN.

Claim: the post's 3-layer MLP has 97 % test accuracy and under 1 % under FGSM at ε = 0.1 (blog);
the convnet holds up far better across ε ∈ {0, 0.05, …, 0.3} (issue).
Run:   mlrepro run fgsm-mnist --seeds 0,1,2        Quick: mlrepro run fgsm-mnist --quick

The two networks are trained with mnist-mlp's and mnist-cnn's recipes (inputs normalised by the
loaders), then wrapped as `Normalize → network` so that every attack works on pixels in [0, 1].
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from torch import nn

from ..attacks import (
    Normalize,
    evaluate_attack,
    make_attack,
    plot_examples,
    plot_robustness,
    robustness_curve,
)
from ..data.mnist import MNIST
from ..engine import ProgressBar
from . import load_splits, mnist_cnn, mnist_mlp

CLAIM = "MLP: 97 % clean → < 1 % under FGSM at ε = 0.1 (blog); the CNN holds up far better"
HEADLINE = ("mlp_fgsm_accuracy", "mlp_test_accuracy", "cnn_fgsm_accuracy")


@dataclass(frozen=True)
class Config:
    eps_linf: float = 0.1  # blog
    curve_eps: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)  # issue
    mlp_epochs: int = 10  # mnist-mlp's recipe
    cnn_epochs: int = 3  # mnist-cnn's fast recipe
    batch_size: int = 128  # both recipes
    val_size: int = 5000  # TF tutorial's 55k/5k split
    train_limit: int = 0  # ours: 0 = every training image
    test_limit: int = 0  # ours: 0 = the whole test set
    pgd_steps: int = 40  # ours: a stronger attack next to FGSM, as in adv-train-mnist
    pgd_alpha: float = 0.01  # Madry et al. 2018 (MNIST)
    pgd_limit: int = 1000  # ours: PGD on the first 1,000 test images (CPU time)

    def __post_init__(self):
        if self.mlp_epochs < 1 or self.cnn_epochs < 1 or self.pgd_steps < 1:
            raise ValueError("mlp_epochs, cnn_epochs and pgd_steps must be >= 1")


PRESETS = {"quick": {"mlp_epochs": 2, "cnn_epochs": 1, "train_limit": 600, "val_size": 100,
                     "batch_size": 50, "test_limit": 500, "pgd_limit": 100, "pgd_steps": 10,
                     "curve_eps": (0.0, 0.1, 0.2, 0.3)}}


def _train(exp, cfg, ctx, verbose: bool) -> tuple[nn.Module, float, float]:
    """Train one network with its experiment's setup; returns (Normalize → net, clean acc, seconds)."""
    s = exp.setup(cfg, ctx)
    start = time.perf_counter()
    s.learner.fit(s.train, cfg.epochs, val_data=s.val, callbacks=[ProgressBar()] if verbose else [])
    seconds = time.perf_counter() - start
    acc = s.learner.evaluate(s.test)["accuracy"]
    return nn.Sequential(Normalize(MNIST.mean, MNIST.std), s.learner.model).eval(), acc, seconds


def run(cfg: Config, ctx) -> dict:
    common = {"train_limit": cfg.train_limit, "val_size": cfg.val_size, "batch_size": cfg.batch_size}
    mlp, mlp_acc, mlp_s = _train(mnist_mlp, mnist_mlp.Config(epochs=cfg.mlp_epochs, **common), ctx, ctx.verbose)
    cnn, cnn_acc, cnn_s = _train(mnist_cnn, mnist_cnn.Config(epochs=cfg.cnn_epochs, test_limit=cfg.test_limit,
                                                             **common), ctx, ctx.verbose)

    (test,) = load_splits(ctx, "mnist", "test")
    n = cfg.test_limit or len(test)
    x = test.images[:n].to(ctx.device).float().div_(255)  # pixels in [0, 1]: the models normalise
    y = test.labels[:n].to(ctx.device)
    n_pgd = min(cfg.pgd_limit, n)
    pgd = make_attack("pgd", cfg.eps_linf, steps=cfg.pgd_steps, alpha=cfg.pgd_alpha)

    metrics = {}
    curves = {}
    for name, model, acc, seconds in (("mlp", mlp, mlp_acc, mlp_s), ("cnn", cnn, cnn_acc, cnn_s)):
        stats, x_adv = evaluate_attack(model, x, y, make_attack("fgsm", cfg.eps_linf))
        pgd_stats, _ = evaluate_attack(model, x[:n_pgd], y[:n_pgd], pgd)
        curves[name] = robustness_curve(model, x, y, cfg.curve_eps, "fgsm")
        plot_examples(model, x, x_adv, ctx.run_dir.plot_path(f"examples_{name}.png"),
                      title=f"{name.upper()}, FGSM ε = {cfg.eps_linf}")
        metrics.update({
            f"{name}_fgsm_accuracy": stats["adversarial_accuracy"], f"{name}_test_accuracy": acc,
            f"{name}_fgsm_success_rate": stats["attack_success_rate"],
            f"{name}_fgsm_mean_l2": stats["mean_l2"], f"{name}_pgd_accuracy": pgd_stats["adversarial_accuracy"],
            f"{name}_train_time_s": seconds,
            f"{name}_fgsm_curve": dict(zip(map(str, cfg.curve_eps), curves[name]))})
    plot_robustness({"MLP 784-256-256-10": curves["mlp"], "CNN (TF post)": curves["cnn"]}, cfg.curve_eps,
                    ctx.run_dir.plot_path("robustness.png"), f"FGSM on {n} MNIST test images")
    return {**{k: metrics[k] for k in HEADLINE}, **metrics, "pgd_images": n_pgd, "test_images": n}

"""Adversarial training of the TensorFlow post's convnet on MNIST: fast FGSM (random start) and PGD.

Claim: ours (issue target) — trained on FGSM-with-random-start examples at ε = 0.1 (Wong, Rice &
Kolter, 2020), the CNN keeps ≥ 90 % accuracy under PGD-40 at ε = 0.1 with ≥ 98.5 % clean accuracy;
the blog's post leaves defences as an open question.
Run:   mlrepro run adv-train-mnist --seeds 0,1,2    (PGD-7 training: --preset pgd)
Quick: mlrepro run adv-train-mnist --quick

Inputs stay pixels in [0, 1]; the model's first layer normalises them, so attack and training see
the same input space. PGD-40 is evaluated on the first `eval_limit` test images (one random start,
α = 0.01, as Madry et al. evaluate MNIST); clean and FGSM accuracy on the whole test set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..attacks import (
    AdversarialLearner,
    evaluate_attack,
    fgsm_rs_attack,
    make_attack,
    pgd_attack,
    plot_examples,
    plot_robustness,
    robustness_curve,
)
from ..config import ExperimentConfig, opt
from ..data import TensorLoader
from ..data.mnist import MNIST
from ..engine import Learner
from ..experiment import DataSpec, Experiment, Preset, RunContext
from ..nn import Normalize, create_model
from ..plotting import plot_history
from ..recipes import holdout, schedule


@dataclass(frozen=True)
class Config(ExperimentConfig):
    method: Literal["fgsm-rs", "pgd", "none"] = opt(
        "fgsm-rs",
        "Wong et al. 2020",
        "training attack: FGSM with random start, PGD (Madry et al. 2018) or none",
    )
    eps_linf: float = opt(0.1, "issue", "L∞ radius of the attacks, pixels in [0, 1]", ge=0, le=1)
    alpha_ratio: float = opt(1.25, "Wong et al. 2020", "FGSM-RS step α = ratio × ε", gt=0)
    train_pgd_steps: int = opt(
        7, "ours", "PGD steps when training with pgd (α = 2.5·ε/steps)", ge=1
    )
    epochs: int = opt(4, "ours", "training epochs", ge=1)
    batch_size: int = opt(128, "ours", "minibatch size (mnist-cnn's default recipe)", ge=1)
    lr: float = opt(3e-3, "ours", "1cycle Adam peak (mnist-cnn's default recipe)", gt=0)
    warmup_frac: float = opt(0.25, "ours", "rising part of 1cycle", gt=0, lt=1)
    dropout: float = opt(0.5, "TF tutorial", "dropout before the last layer", ge=0, lt=1)
    val_size: int = opt(5000, "TF tutorial", "training images held out to validate (55k/5k)", ge=1)
    train_limit: int = opt(0, "ours", "training images used (0 = all)", ge=0)
    test_limit: int = opt(0, "ours", "test images for clean and FGSM accuracy (0 = all)", ge=0)
    eval_pgd_steps: int = opt(40, "issue", "PGD steps of the evaluation attack (PGD-40)", ge=1)
    eval_alpha: float = opt(0.01, "Madry et al. 2018", "PGD evaluation step size", gt=0)
    eval_limit: int = opt(2000, "ours", "test images attacked with PGD (CPU time)", ge=1)
    curve_eps: tuple[float, ...] = opt(
        (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
        "issue",
        "ε grid of the robustness curve",
        ge=0,
        le=1,
    )
    channels_last: bool = opt(True, "ours", "NHWC memory layout (faster convolutions on CPU)")


PRESETS = {
    "fgsm-rs": Preset(
        {"method": "fgsm-rs"},
        "fast adversarial training (Wong et al. 2020)",
        "≈ 7 min on a 2-core CPU",
    ),
    "pgd": Preset(
        {"method": "pgd", "epochs": 3},
        "PGD-7 adversarial training (Madry et al.)",
        "≈ 26 min on a 2-core CPU",
    ),
    "none": Preset({"method": "none", "epochs": 3}, "the undefended baseline", "≈ 3 min"),
    "quick": Preset(
        {
            "epochs": 1,
            "train_limit": 600,
            "val_size": 100,
            "test_limit": 300,
            "eval_limit": 100,
            "eval_pgd_steps": 10,
            "batch_size": 50,
            "curve_eps": (0.0, 0.1, 0.2, 0.3),
        },
        "smoke test: one epoch on 600 images",
        "seconds",
    ),
}


def build_model(cfg: Config) -> nn.Module:
    """[0, 1] pixels → MNIST normalisation → the TF post's convnet (`mlrepro attack` rebuilds
    it)."""
    return nn.Sequential(
        Normalize(MNIST.mean, MNIST.std),
        create_model("tf_cnn_mnist", dropout=cfg.dropout, init="torch"),
    )


def data_spec(cfg: Config) -> DataSpec:
    """Pixels in [0, 1]: the model normalises them itself."""
    return DataSpec("mnist", (1, 28, 28), 10)


def run(cfg: Config, ctx: RunContext) -> dict:
    train, test = ctx.load("mnist", "train", "test")
    x, y, vx, vy = holdout(train.images, train.labels, cfg.val_size, cfg.train_limit)
    # No mean/std: batches are pixels in [0, 1], as the attacks require.
    train_loader = TensorLoader(
        x, y, cfg.batch_size, shuffle=True, seed=ctx.seed, device=ctx.device
    )
    val_loader = TensorLoader(vx, vy, 1000, device=ctx.device)
    n_test = cfg.test_limit or len(test)
    x_test = test.images[:n_test].to(ctx.device).float().div_(255)
    y_test = test.labels[:n_test].to(ctx.device)

    model = build_model(cfg)
    optim = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, fused=ctx.device.type in ("cpu", "cuda") or None
    )
    sched = schedule(
        "onecycle",
        optim,
        epochs=cfg.epochs,
        steps_per_epoch=len(train_loader),
        pct_start=cfg.warmup_frac,
    )
    common = {
        "scheduler": sched,
        "metrics": ["accuracy"],
        "device": ctx.device,
        "channels_last": cfg.channels_last,
    }
    if cfg.method == "none":
        learner = Learner(model, optim, nn.CrossEntropyLoss(), **common)
    else:
        attack = (
            fgsm_rs_attack(cfg.eps_linf, cfg.alpha_ratio)
            if cfg.method == "fgsm-rs"
            else pgd_attack(cfg.eps_linf, cfg.train_pgd_steps)
        )
        learner = AdversarialLearner(model, optim, nn.CrossEntropyLoss(), attack=attack, **common)

    start = time.perf_counter()
    history = ctx.fit(learner, train_loader, cfg.epochs, val_data=val_loader)
    train_time_s = time.perf_counter() - start
    plot_history(
        history.rows,
        ctx.run_dir.plot_path("curves.png"),
        f"tf_cnn_mnist, {cfg.method} training at ε = {cfg.eps_linf}",
        steps=ctx.run_dir.steps(),
    )

    # --- evaluate: clean and FGSM on the test set, PGD-k on its first eval_limit images ---
    model = learner.model.eval()
    start = time.perf_counter()
    fgsm_stats, _ = evaluate_attack(model, x_test, y_test, make_attack("fgsm", cfg.eps_linf))
    n_eval = min(cfg.eval_limit, n_test)
    pgd_stats, x_adv = evaluate_attack(
        model,
        x_test[:n_eval],
        y_test[:n_eval],
        make_attack("pgd", cfg.eps_linf, steps=cfg.eval_pgd_steps, alpha=cfg.eval_alpha),
    )
    eval_time_s = time.perf_counter() - start  # FGSM on the test set + PGD on the subset
    curve = robustness_curve(model, x_test[:n_eval], y_test[:n_eval], cfg.curve_eps, "fgsm")
    plot_robustness(
        {f"{cfg.method}-trained CNN, FGSM": curve},
        cfg.curve_eps,
        ctx.run_dir.plot_path("robustness.png"),
        f"first {n_eval} MNIST test images",
    )
    plot_examples(
        model,
        x_test[:n_eval],
        x_adv,
        ctx.run_dir.plot_path("examples_pgd.png"),
        y=y_test[:n_eval],
        title=f"PGD-{cfg.eval_pgd_steps}, ε = {cfg.eps_linf}",
    )
    return {
        "pgd_accuracy": pgd_stats["adversarial_accuracy"],
        "test_accuracy": fgsm_stats["clean_accuracy"],
        "fgsm_accuracy": fgsm_stats["adversarial_accuracy"],
        "pgd_clean_accuracy": pgd_stats["clean_accuracy"],  # on the PGD subset
        "pgd_attack_success_rate": pgd_stats["attack_success_rate"],
        "pgd_mean_linf": pgd_stats["mean_linf"],
        "pgd_images": n_eval,
        "val_accuracy": history.rows[-1]["val_accuracy"],
        "fgsm_curve": dict(zip(map(str, cfg.curve_eps), curve)),
        "train_time_s": train_time_s,
        "eval_time_s": eval_time_s,
        "epochs": learner.epoch,
        "steps": learner.global_step,
    }


EXPERIMENT = Experiment(
    name="adv-train-mnist",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim="ours: ≥ 90 % under PGD-40 at ε = 0.1 with ≥ 98.5 % clean (FGSM-RS training, Wong et al. "
    "2020)",
    headline=("pgd_accuracy", "test_accuracy", "train_time_s"),
    data=data_spec,
    build_model=build_model,
)

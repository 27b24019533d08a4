"""Linear regression by batch gradient descent on the blog's noisy house-size → price line.

Claim: R² 0.9980 on the held-out 30 % after ~25,000 GD iterations (blog); ours: R² ≥ 0.998, matching
the closed-form least-squares fit, in a few hundred iterations thanks to standardized features.
Run:   mlrepro run linreg-line --seeds 0,1,2        Quick: mlrepro run linreg-line --quick
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..classic import LinearRegressionGD, make_line_data
from ..config import ExperimentConfig, opt
from ..experiment import Experiment, Preset, RunContext
from ..plotting import plt, save_figure


@dataclass(frozen=True)
class Config(ExperimentConfig):
    n_samples: int = opt(200, "ours", "points on the noisy line (the blog does not say)", ge=10)
    test_frac: float = opt(
        0.3, "blog", "share of points held out to test (70/30 split)", gt=0, lt=1
    )
    solver: Literal["gd", "closed_form"] = opt(
        "gd", "blog", "batch gradient descent or least squares"
    )
    lr: float = opt(
        0.1, "ours", "GD step on standardized features (blog: 0.0003 on raw ones)", gt=0
    )
    max_iter: int = opt(
        25_000, "blog", "GD iterations at most (the blog converged after ~25,000)", ge=1
    )
    tol: float = opt(1e-12, "ours", "stop when the cost changes by less than this (relative)", ge=0)


PRESETS = {
    "quick": Preset({"n_samples": 100, "max_iter": 2_000}, "smoke test: 100 points", "seconds")
}


def run(cfg: Config, ctx: RunContext) -> dict:
    X, y = make_line_data(n=cfg.n_samples, seed=ctx.seed)
    order = np.random.default_rng(ctx.seed).permutation(len(X))
    n_test = round(cfg.test_frac * len(X))
    test, train = order[:n_test], order[n_test:]

    start = time.perf_counter()
    model = LinearRegressionGD(cfg.lr, max_iter=cfg.max_iter, tol=cfg.tol, solver=cfg.solver)
    model.fit(X[train], y[train])
    fit_s = time.perf_counter() - start
    exact = LinearRegressionGD(solver="closed_form").fit(X[train], y[train])

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(X[train, 0], y[train], ".", color="tab:blue", label="train")
    ax1.plot(X[test, 0], y[test], ".", color="tab:red", label="test (held out)")
    grid = np.linspace(X[:, 0].min(), X[:, 0].max(), 50)[:, None]
    ax1.plot(grid[:, 0], model.predict(grid), "k-", label="fit")
    ax1.set(xlabel="house size (sq ft)", ylabel="price ($)", title="data and fitted line")
    ax1.legend()
    if len(model.cost_history_):
        ax2.semilogy(np.arange(1, len(model.cost_history_) + 1), model.cost_history_)
    ax2.set(xlabel="iteration", ylabel="cost J(θ)", title="cost per iteration")
    save_figure(fig, ctx.run_dir.plot_path("fit.png"))

    return {
        "test_r2": model.score(X[test], y[test]),
        "train_r2": model.score(X[train], y[train]),
        "slope": float(np.ravel(model.coef_)[0]),
        "intercept": float(np.ravel(model.intercept_)[0]),
        "slope_rel_err_vs_closed_form": float(
            abs(np.ravel(model.coef_)[0] - np.ravel(exact.coef_)[0]) / abs(np.ravel(exact.coef_)[0])
        ),
        "n_iter": int(model.n_iter_),
        "fit_time_s": fit_s,
    }


EXPERIMENT = Experiment(
    name="linreg-line",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim="R² 0.9980 on the held-out 30 % (blog)",
    headline=("test_r2",),
)

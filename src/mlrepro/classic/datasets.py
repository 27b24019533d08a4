"""The blogs' toy data sets, regenerated: house size -> price (linear regression) and the
Cola C vs Cola P survey (k-means). The posts show only plots, so the parameters below are ours,
chosen to match what the plots and the reported numbers imply."""

from __future__ import annotations

import numpy as np

from mlrepro.errors import InputError

# Cola survey: (rating of Cola C, rating of Cola P) on a 0-100 scale; one centre per group.
COLA_GROUPS = ("prefers C", "prefers P", "likes neither")  # label 0, 1, 2
_COLA_CENTRES = np.array([[78.0, 22.0], [22.0, 78.0], [22.0, 19.0]])  # ours; blog: e.g. (22, 19)
_COLA_STD = 8.0  # ours: rating spread within a group


def make_line_data(n: int = 200, *, seed: int = 0, noise: float = 5_000.0):
    """House size (sq ft) -> sale price ($): a noisy line like the blog's first plot.

    Sizes are uniform on [500, 3500]; price = 50,000 + 150 * size + N(0, noise^2). With the default
    noise the line explains ~99.85 % of the variance (the blog reports R^2 = 0.9980).

    Returns X of shape (n, 1) and y of shape (n,), both float64.
    """
    if n < 2:
        raise InputError(f"n must be >= 2; got {n}")
    rng = np.random.default_rng(seed)
    size = rng.uniform(500.0, 3500.0, n)  # sq ft
    price = 50_000.0 + 150.0 * size + rng.normal(0.0, noise, n)  # $
    return size[:, None], price


def make_cola_data(n_per_cluster: int = 50, *, seed: int = 0):
    """The blog's Cola C vs Cola P survey: three groups of respondents in 2-D ratings (0-100).

    Returns X of shape (3 * n_per_cluster, 2) (shuffled, clipped to [0, 100]) and the true group
    of every row (0 prefers C, 1 prefers P, 2 likes neither; see COLA_GROUPS).
    """
    if n_per_cluster < 1:
        raise InputError(f"n_per_cluster must be >= 1; got {n_per_cluster}")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_cluster)
    X = _COLA_CENTRES[labels] + rng.normal(0.0, _COLA_STD, (labels.size, 2))
    order = rng.permutation(labels.size)
    return np.clip(X[order], 0.0, 100.0), labels[order]


def train_test_split(X, y, *, test_frac: float = 0.3, seed: int = 0):
    """Shuffle and split into (X_train, X_test, y_train, y_test); the blog's 70 / 30 split."""
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise InputError(f"X and y have different numbers of rows: {len(X)} and {len(y)}")
    if not 0.0 < test_frac < 1.0:
        raise InputError(f"test_frac must be in (0, 1); got {test_frac}")
    n_test = round(test_frac * len(X))
    if n_test < 1 or n_test >= len(X):
        raise InputError(f"test_frac={test_frac} leaves an empty split of {len(X)} rows")
    order = np.random.default_rng(seed).permutation(len(X))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]

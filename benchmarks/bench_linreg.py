"""Linear regression: LinearRegressionGD vs the blog's pure-Python gradient descent, and vs sklearn.

1. Speed: the blog's three Python functions (hypothesis, cost, descend; its two bugs fixed) against
   LinearRegressionGD on the same training data, the same learning rate, the same starting point
   and exactly `--iters` gradient steps each (the cost is evaluated every step in both, as the
   blog's convergence test needs). Both compute the same iterates, so their final thetas agree.
2. Accuracy: coefficients of LinearRegressionGD (closed_form, and gd run to convergence) against
   scikit-learn's LinearRegression, and R^2 on the held-out 30 % (the blog reports 0.9980).

Run:   python benchmarks/bench_linreg.py        (50,000 points, 70 % for training, 200 steps)
       python benchmarks/bench_linreg.py --n 100000 --iters 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch

# --- the blog's code (2016-11-10), with its bugs fixed where marked ---


def hypothesis(theta0, theta1, x):
    return theta0 + (theta1 * x)


def cost(theta0, theta1, X, Y):
    errors = [hypothesis(theta0, theta1, x) - y for (x, y) in zip(X, Y)]
    squared = [i * i for i in errors]
    return 1 / (2 * len(X)) * sum(squared)


def descend(t0, t1, X, Y, learning_rate):
    xy = list(zip(X, Y))  # fix (b): a bare zip() is used up by the first comprehension
    N = len(X)

    # Calculate partial wrt theta0
    p0 = [hypothesis(t0, t1, x) - y for (x, y) in xy]
    p0 = (1 / N) * sum(p0)

    # Calculate partial wrt theta1
    p1 = [(hypothesis(t0, t1, x) - y) * x for (x, y) in xy]
    p1 = (1 / N) * sum(p1)

    new_t0 = t0 - learning_rate * p0
    new_t1 = t1 - learning_rate * p1
    return (new_t0, new_t1)


def blog_gradient_descent(X, Y, learning_rate, max_steps, epsilon):
    """The blog's main() loop; returns (theta0, theta1, steps)."""
    theta0, theta1 = 0, 0
    old_cost = cost(theta0, theta1, X, Y)
    steps = 0
    while steps < max_steps:
        theta0, theta1 = descend(theta0, theta1, X, Y, learning_rate)
        steps += 1
        new_cost = cost(theta0, theta1, X, Y)

        # Check for convergence. Fix (a): the blog breaks when the change is LARGE (`> EPSILON`).
        if abs(new_cost - old_cost) <= epsilon:
            break
        else:
            old_cost = new_cost
    return theta0, theta1, steps


def rel_err(a, b) -> float:
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="points (70 %% train)")
    parser.add_argument("--iters", type=int, default=200, help="gradient steps in the speed test")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (x in 1000 sq ft)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of LinearRegressionGD")
    parser.add_argument("--py-repeats", type=int, default=1, help="timed runs of the Python loop")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import sklearn
    from sklearn.linear_model import LinearRegression

    from mlrepro.classic import LinearRegressionGD, make_line_data, train_test_split

    X, y = make_line_data(n=args.n, seed=args.seed)
    X = X / 1000.0  # size in 1000 sq ft, so that raw-feature gradient descent has a usable lr
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_frac=0.3, seed=args.seed)
    n_train = len(X_train)

    print(f"linear regression, house size -> price, {args.n:,} points ({n_train:,} train)")
    print(
        f"  cpu: {os.cpu_count()} logical cores; torch {torch.__version__} "
        f"(threads {torch.get_num_threads()}), scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}; load average {os.getloadavg()[0]:.2f}"
    )

    # --- 1. speed: same data, same lr, same number of steps, raw feature (the blog's setting) ---
    xs, ys = X_train[:, 0].tolist(), y_train.tolist()
    py_t, _py_times, (t0, t1, py_steps) = timed(
        lambda: blog_gradient_descent(xs, ys, args.lr, args.iters, epsilon=0.0), args.py_repeats
    )
    model = LinearRegressionGD(args.lr, max_iter=args.iters, tol=0.0, standardize=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stopping at max_iter is the point here
        model.fit(X_train, y_train)  # warm-up
        ours_t, _ours_times, _ = timed(lambda: model.fit(X_train, y_train), args.repeats)
    print(
        f"  {args.iters} steps, lr {args.lr}: blog Python loop {py_t:.3f} s ({py_steps} steps, "
        f"{1e6 * py_t / py_steps:.0f} us/step); LinearRegressionGD {1e3 * ours_t:.1f} ms "
        f"({model.n_iter_} steps, {1e6 * ours_t / model.n_iter_:.1f} us/step)"
    )
    print(
        f"  same iterates: theta0 rel diff {rel_err(model.intercept_, t0):.1e}, "
        f"theta1 rel diff {rel_err(model.coef_, t1):.1e}"
    )

    # --- 2. accuracy against scikit-learn ---
    sk = LinearRegression().fit(X_train, y_train)
    closed = LinearRegressionGD(solver="closed_form").fit(X_train, y_train)
    gd = LinearRegressionGD(0.1, tol=1e-16).fit(X_train, y_train)
    default = LinearRegressionGD().fit(X_train, y_train)
    for name, m in [("closed_form", closed), ("gd tol=1e-16", gd), ("gd defaults", default)]:
        print(
            f"  {name:13s} coef rel err vs sklearn {rel_err(m.coef_, sk.coef_):.1e}, "
            f"intercept {rel_err(m.intercept_, sk.intercept_):.1e}, steps {m.n_iter_}, "
            f"converged {m.converged_}, held-out R^2 {m.score(X_test, y_test):.4f}"
        )
    print(
        f"RATIO time blog-python/LinearRegressionGD = {py_t / ours_t:.0f}x for {args.iters} steps "
        f"on {n_train:,} points; gd coef rel err vs sklearn = {rel_err(gd.coef_, sk.coef_):.1e}, "
        f"closed_form = {rel_err(closed.coef_, sk.coef_):.1e}"
    )


if __name__ == "__main__":
    main()

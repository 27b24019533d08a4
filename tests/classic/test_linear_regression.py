import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score as sk_r2_score

from mlrepro.classic import (
    ConvergenceWarning,
    LinearRegressionGD,
    make_line_data,
    r2_score,
    train_test_split,
)
from mlrepro.errors import InputError


def regression_data(n=300, n_targets=None, seed=0):
    """Three features of very different scales and offsets, noisy linear targets."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 0.5]
    W = rng.normal(size=(3, n_targets or 1))
    Y = X @ W + [2.0, -1.0][: n_targets or 1] + 0.1 * rng.normal(size=(n, n_targets or 1))
    return X, (Y[:, 0] if n_targets is None else Y)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("n_targets", [None, 2])
def test_closed_form_matches_lstsq_and_sklearn(n_targets):
    X, y = regression_data(n_targets=n_targets)
    model = LinearRegressionGD(solver="closed_form").fit(X, y)

    theta = np.linalg.lstsq(np.c_[np.ones(len(X)), X], y, rcond=None)[0]  # (1+p,) or (1+p, t)
    assert rel_err(model.intercept_, theta[0]) <= 1e-9
    assert rel_err(model.coef_, theta[1:].T) <= 1e-9

    sk = LinearRegression().fit(X, y)
    assert model.coef_.shape == sk.coef_.shape
    assert np.shape(model.intercept_) == np.shape(sk.intercept_)
    assert rel_err(model.coef_, sk.coef_) <= 1e-9
    assert rel_err(model.intercept_, sk.intercept_) <= 1e-9
    assert model.n_iter_ == 0 and model.converged_


@pytest.mark.parametrize("n_targets", [None, 2])
def test_gradient_descent_converges_to_least_squares(n_targets):
    X, y = regression_data(n_targets=n_targets)
    # |change in J| <= tol * var(y) / 2 bounds the squared error of theta: tol=1e-16 -> ~1e-7
    model = LinearRegressionGD(lr=0.5, tol=1e-16).fit(X, y)
    sk = LinearRegression().fit(X, y)
    assert model.converged_ and model.n_iter_ > 1
    assert rel_err(model.coef_, sk.coef_) <= 1e-6
    assert rel_err(model.intercept_, sk.intercept_) <= 1e-6
    np.testing.assert_allclose(model.predict(X), sk.predict(X), rtol=0, atol=1e-6 * np.std(y))


def test_cost_history_is_the_blog_cost_and_never_increases():
    X, y = regression_data()
    model = LinearRegressionGD(lr=0.1).fit(X, y)
    history = model.cost_history_
    assert len(history) == model.n_iter_ + 1
    assert history[0] == pytest.approx(np.mean(y**2) / 2, rel=1e-12)  # J at theta = 0
    final = np.mean((model.predict(X) - y) ** 2) / 2  # J = 1/(2N) sum (h - y)^2
    assert history[-1] == pytest.approx(final, rel=1e-9)
    assert np.all(np.diff(history) <= 1e-12 * history[0])


def test_convergence_test_is_not_inverted():
    # The blog's `if abs(new_cost - old_cost) > EPSILON: break` stops after one step.
    X, y = make_line_data(seed=1)
    model = LinearRegressionGD().fit(X, y)
    assert model.converged_ and model.n_iter_ > 1
    j_ref = np.var(y) / 2
    assert abs(model.cost_history_[-2] - model.cost_history_[-1]) <= model.tol * j_ref
    assert abs(model.cost_history_[1] - model.cost_history_[0]) > model.tol * j_ref


def test_slope_is_learned_without_standardizing():
    # The blog's consumed zip() left theta_1 at 0; the raw-feature path must move it.
    x = np.linspace(0.0, 1.0, 50)[:, None]
    model = LinearRegressionGD(lr=0.5, standardize=False, tol=1e-15, max_iter=100_000)
    model.fit(x, 1.0 + 2.0 * x[:, 0])
    assert model.converged_
    assert model.coef_[0] == pytest.approx(2.0, rel=1e-6)
    assert model.intercept_ == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("n_targets", [None, 2])
def test_score_is_sklearn_r2(n_targets):
    X, y = regression_data(n_targets=n_targets)
    model = LinearRegressionGD(solver="closed_form").fit(X[:200], y[:200])
    expected = sk_r2_score(y[200:], model.predict(X[200:]))
    assert model.score(X[200:], y[200:]) == pytest.approx(expected, rel=1e-12)
    assert r2_score(y, y) == 1.0


def test_blog_line_data_reaches_the_blogs_r2_on_held_out_data():
    X, y = make_line_data()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_frac=0.3, seed=0)
    for solver in ("gd", "closed_form"):
        model = LinearRegressionGD(solver=solver).fit(X_train, y_train)
        assert model.score(X_test, y_test) >= 0.998  # blog: R^2 = 0.9980
        assert model.coef_[0] == pytest.approx(150.0, rel=0.01)  # $ per sq ft


def test_running_out_of_iterations_warns():
    X, y = regression_data()
    with pytest.warns(ConvergenceWarning, match="max_iter=5"):
        model = LinearRegressionGD(lr=0.01, max_iter=5).fit(X, y)
    assert not model.converged_ and model.n_iter_ == 5 and len(model.cost_history_) == 6


def test_divergence_is_a_clear_error():
    X, y = make_line_data()
    with pytest.raises(InputError, match="lr=3"):
        LinearRegressionGD(lr=3.0).fit(X, y)


def test_float32():
    X, y = regression_data()
    model = LinearRegressionGD(lr=0.5, tol=1e-6, dtype=torch.float32).fit(X, y)
    sk = LinearRegression().fit(X, y)
    assert model.converged_
    assert rel_err(model.coef_, sk.coef_) <= 1e-2


def test_y_must_match_X():
    X, y = regression_data()
    with pytest.raises(InputError, match="different numbers of rows"):
        LinearRegressionGD().fit(X, y[:-1])
    with pytest.raises(InputError, match="y must be 1-D or 2-D"):
        LinearRegressionGD().fit(X, y[:, None, None])
    with pytest.raises(InputError, match="y contains NaN"):
        LinearRegressionGD().fit(X, np.where(np.arange(len(y)) == 3, np.nan, y))

"""One API check for every classic estimator: scikit-learn's conventions, clear errors."""

import inspect

import numpy as np
import pytest
import torch

from mlrepro.classic import KMeans, LinearRegressionGD, NotFittedError
from mlrepro.errors import InputError


def small_xy():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0.0, 1.0, (30, 2)), rng.normal(8.0, 1.0, (30, 2))]
    y = X @ [1.5, -2.0] + 0.5
    return X, y


# (estimator with non-default settings, fitted attributes, whether fit needs y)
CASES = {
    "LinearRegressionGD": (
        lambda: LinearRegressionGD(
            0.2,
            max_iter=5000,
            tol=1e-12,
            standardize=True,
            solver="gd",
            device="cpu",
            dtype=torch.float64,
        ),
        ["coef_", "intercept_", "cost_history_", "n_iter_", "converged_"],
        True,
    ),
    "KMeans": (
        lambda: KMeans(
            2,
            init=np.array([[0.0, 0.0], [8.0, 8.0]]),
            n_init=1,
            max_iter=50,
            tol=1e-6,
            metric="euclidean",
            random_state=3,
            device="cpu",
            chunk_size=16,
        ),
        ["cluster_centers_", "labels_", "inertia_", "n_iter_"],
        False,
    ),
}


def fit(est, X, y, needs_y):
    return est.fit(X, y) if needs_y else est.fit(X)


@pytest.fixture(params=list(CASES))
def case(request):
    make, attrs, needs_y = CASES[request.param]
    return make, attrs, needs_y


def test_hyperparameters_are_stored_unchanged(case):
    make, _, _ = case
    est = make()
    signature = inspect.signature(type(est).__init__)
    names = [p for p in signature.parameters if p != "self"]
    assert list(est.get_params()) == names
    for name in names[1:]:  # keyword-only after the first
        assert signature.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    again = make()
    for name, value in est.get_params().items():
        expected = getattr(again, name)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, expected)
        else:
            assert value == expected
    clone = type(est)(**est.get_params())  # sklearn.base.clone works the same way
    assert repr(clone) == repr(est)


def test_init_does_no_validation(case):
    make, _, _ = case
    est = type(make())(max_iter=-5)  # accepted here, rejected by fit
    assert est.max_iter == -5
    X, y = small_xy()
    with pytest.raises(InputError, match="max_iter"):
        fit(est, X, y, case[2])


def test_fit_returns_self_and_learns_underscore_attributes(case):
    make, attrs, needs_y = case
    X, y = small_xy()
    est = make()
    for attr in attrs:
        assert not hasattr(est, attr)
    assert fit(est, X, y, needs_y) is est
    for attr in attrs:
        assert hasattr(est, attr)
    assert est.n_features_in_ == 2
    params_before = est.get_params()
    fit(est, X, y, needs_y)
    assert est.get_params().keys() == params_before.keys()


def test_predict_before_fit_is_a_clear_error(case):
    make, _, _ = case
    est = make()
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        est.predict(np.zeros((3, 2)))
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), "X contains NaN"),
        (
            lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.inf, X),
            "X contains infinity",
        ),
        (lambda X: X[:, 0], "X must be a 2-D array; got 1-D.*reshape"),
        (lambda X: X[:, :, None], "X must be a 2-D array; got 3-D"),
        (lambda X: X[:0], "X is empty"),
        (lambda X: np.full(X.shape, "a"), "X must be a numeric array"),
    ],
)
def test_bad_X_is_a_clear_error(case, bad, message):
    make, _, needs_y = case
    X, y = small_xy()
    with pytest.raises(InputError, match=message):
        fit(make(), bad(X), y, needs_y)


def test_predict_checks_features(case):
    make, _, needs_y = case
    X, y = small_xy()
    est = fit(make(), X, y, needs_y)
    with pytest.raises(InputError, match="X has 3 features, but the estimator was fitted with 2"):
        est.predict(np.zeros((4, 3)))
    with pytest.raises(InputError, match="X contains NaN"):
        est.predict(np.full((4, 2), np.nan))


def test_unknown_parameter_is_rejected(case):
    make, _, _ = case
    with pytest.raises(InputError, match="has no parameter 'learning_rate'"):
        make().set_params(learning_rate=1.0)
    assert make().set_params(max_iter=7).max_iter == 7


def test_more_clusters_than_samples():
    X, _ = small_xy()
    with pytest.raises(InputError, match="n_clusters=61 is larger than the number of samples"):
        KMeans(61).fit(X)


def test_accepts_lists_and_tensors(case):
    make, _, needs_y = case
    X, y = small_xy()
    a = fit(make(), X, y, needs_y).predict(X)
    b = fit(make(), X.tolist(), y.tolist(), needs_y).predict(torch.from_numpy(X))
    np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("module", ["kmeans", "linear_regression"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"mlrepro.classic.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

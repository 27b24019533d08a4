import numpy as np
import pytest

from mlrepro.classic import make_cola_data, make_line_data, train_test_split
from mlrepro.classic.datasets import COLA_GROUPS
from mlrepro.errors import InputError


def test_line_data_is_the_blogs_house_prices():
    X, y = make_line_data(n=500, seed=3)
    assert X.shape == (500, 1) and y.shape == (500,)
    assert X.min() >= 500 and X.max() <= 3500
    slope, intercept = np.polyfit(X[:, 0], y, 1)
    assert slope == pytest.approx(150, rel=0.02) and intercept == pytest.approx(50_000, rel=0.1)
    np.testing.assert_array_equal(make_line_data(n=500, seed=3)[1], y)


def test_cola_data_has_three_labelled_groups_on_a_rating_scale():
    X, labels = make_cola_data(n_per_cluster=40, seed=1)
    assert X.shape == (120, 2) and np.bincount(labels).tolist() == [40, 40, 40]
    assert X.min() >= 0 and X.max() <= 100 and len(COLA_GROUPS) == 3
    means = np.array([X[labels == g].mean(0) for g in range(3)])
    assert means[0, 0] > means[0, 1] + 30  # prefers C
    assert means[1, 1] > means[1, 0] + 30  # prefers P
    assert means[2].max() < 40  # likes neither


def test_train_test_split_is_seventy_thirty_and_disjoint():
    X = np.arange(100)[:, None]
    y = np.arange(100)
    X_train, X_test, y_train, y_test = train_test_split(X, y, seed=1)
    assert len(X_test) == 30 and len(X_train) == 70
    assert set(y_train) | set(y_test) == set(range(100)) and not set(y_train) & set(y_test)
    np.testing.assert_array_equal(X_train[:, 0], y_train)
    with pytest.raises(InputError, match="test_frac"):
        train_test_split(X, y, test_frac=1.5)

"""scikit-learn-style estimators from the blog posts: linear regression by gradient descent and
k-means, plus the posts' toy data and a CSV reader for the command line."""

from mlrepro.classic._base import ConvergenceWarning, NotFittedError
from mlrepro.classic.csvdata import read_csv
from mlrepro.classic.datasets import make_cola_data, make_line_data, train_test_split
from mlrepro.classic.kmeans import KMeans
from mlrepro.classic.linear_regression import LinearRegressionGD, r2_score

__all__ = [
    "ConvergenceWarning",
    "KMeans",
    "LinearRegressionGD",
    "NotFittedError",
    "make_cola_data",
    "make_line_data",
    "r2_score",
    "read_csv",
    "train_test_split",
]

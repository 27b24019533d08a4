"""`mnist.load_data()` and `fashion_mnist.load_data()`, read by mlrepro's data loaders."""

from . import fashion_mnist, mnist

__all__ = ["fashion_mnist", "mnist"]

"""A Keras-style Sequential API on mlrepro's engine.

The Keras post's program runs with only its imports changed:

    from mlrepro.keras.models import Sequential
    from mlrepro.keras.layers import Dense, Conv2D, MaxPooling2D, Dropout, Flatten
    from mlrepro.keras.optimizers import Adadelta
    from mlrepro.keras.datasets import mnist
    from mlrepro.keras.utils import to_categorical

`fit` delegates to `mlrepro.engine.Learner`; this package only translates Keras's surface (shapes
written channels-last, losses and optimizers by name, Keras-style callbacks and error messages).
"""

from . import callbacks, datasets, layers, losses, optimizers, utils
from .layers import Activation, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from .models import Sequential
from .utils import to_categorical

__all__ = [
    "Activation",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "MaxPooling2D",
    "Sequential",
    "callbacks",
    "datasets",
    "layers",
    "losses",
    "optimizers",
    "to_categorical",
    "utils",
]

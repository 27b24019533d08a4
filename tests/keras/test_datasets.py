"""`mlrepro.keras.datasets`: `load_data()` returns what Keras's does (uint8 arrays, same splits)."""

import numpy as np
import pytest

from mlrepro.data import load_dataset
from mlrepro.keras.datasets import fashion_mnist, mnist


@pytest.mark.parametrize("module,name", [(mnist, "mnist"), (fashion_mnist, "fashion-mnist")])
def test_load_data_is_keras_shaped_uint8_and_the_same_images(module, name, data_dir):
    path = str(data_dir) if data_dir else None
    (x_train, y_train), (x_test, y_test) = module.load_data(path)
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        ds = load_dataset(name, split, path)
        assert x.dtype == y.dtype == np.uint8
        assert x.shape == (len(ds), 28, 28) and y.shape == (len(ds),)  # Keras: no channel axis
        np.testing.assert_array_equal(x, ds.images[:, 0].numpy())
        np.testing.assert_array_equal(y, ds.labels.numpy())
        assert set(np.unique(y)) <= set(range(10)) and len(np.unique(y)) == 10
    if data_dir is not None and (data_dir / name).is_dir():
        assert len(x_train) == 60_000 and len(x_test) == 10_000  # Keras's split sizes

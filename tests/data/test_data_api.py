"""The package surface: folders, the dataset record, load_dataset, atomic cache writes."""

import numpy as np
import pytest
import torch

from mlrepro.data import (
    DATASETS,
    ImageDataset,
    SampleDataWarning,
    cache_dir,
    core,
    load_cifar10,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    locate_data_dir,
    resolve_data_dir,
)
from mlrepro.errors import DataError


def test_data_dir_precedence(tmp_path, monkeypatch):
    assert resolve_data_dir() == tmp_path / "home" / ".local" / "share" / "mlrepro"
    assert locate_data_dir()[1] == "default"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert locate_data_dir() == (tmp_path / "xdg" / "mlrepro", "default")
    monkeypatch.setenv("MLREPRO_DATA", "")  # empty: not set
    assert locate_data_dir() == (tmp_path / "xdg" / "mlrepro", "default")
    monkeypatch.setenv("MLREPRO_DATA", str(tmp_path / "env"))
    assert locate_data_dir() == (tmp_path / "env", "MLREPRO_DATA")
    assert locate_data_dir(tmp_path / "arg") == (tmp_path / "arg", "argument")
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir("rel") == tmp_path / "rel"  # made absolute


def test_cache_dir_precedence_and_creation(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "cache" and cache_dir().is_dir()
    monkeypatch.delenv("MLREPRO_CACHE")
    assert cache_dir() == tmp_path / "home" / ".cache" / "mlrepro"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    assert cache_dir() == tmp_path / "xdg-cache" / "mlrepro" and cache_dir().is_dir()


def test_registry_and_aliases(tmp_path):
    # SIM300 takes the upper-case DATASETS for a constant; it is the registry under test.
    assert DATASETS == {  # noqa: SIM300
        "mnist": load_mnist,
        "fashion-mnist": load_fashion_mnist,
        "cifar10": load_cifar10,
    }
    for name, expected in (
        ("MNIST", "mnist"),
        ("fashion_mnist", "fashion-mnist"),
        ("FashionMNIST", "fashion-mnist"),
        ("CIFAR-10", "cifar10"),
    ):
        with pytest.warns(SampleDataWarning):
            assert load_dataset(name, "test").name == expected
    with pytest.raises(DataError, match="unknown dataset 'svhn'; expected one of mnist"):
        load_dataset("svhn")
    with pytest.raises(DataError, match="split must be 'train' or 'test', got 'val'"):
        load_dataset("mnist", "val")
    with pytest.raises(DataError, match="missing"):
        load_dataset("cifar10", "test", tmp_path, allow_sample=False)


def test_image_dataset_record():
    ds = ImageDataset(
        images=torch.zeros(4, 1, 28, 28, dtype=torch.uint8),
        labels=torch.tensor([0, 1, 2, 3]),
        classes=tuple("0123456789"),
        name="mnist",
        split="test",
        source="x",
        is_sample=False,
        mean=(0.1307,),
        std=(0.3081,),
    )
    assert len(ds) == 4 and "n=4" in repr(ds) and "tensor" not in repr(ds)
    assert ds.provenance is None and ds.provenance_dict() == {
        "dataset": "mnist",
        "split": "test",
        "source": "x",
        "sample": False,
        "n": 4,
    }
    with pytest.raises(AttributeError):
        ds.name = "other"  # frozen
    with pytest.raises(DataError, match="labels must be int64"):
        ImageDataset(
            images=ds.images,
            labels=ds.labels.int(),
            classes=(),
            name="",
            split="",
            source="x",
            is_sample=False,
            mean=(),
            std=(),
        )


def test_a_failed_load_writes_nothing(tmp_path):
    with pytest.raises(DataError):
        load_mnist("test", tmp_path)
    assert not (tmp_path / "cache").exists()  # not even the cache folder


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "a.npy"
    core.atomic_write(target, lambda f: np.save(f, np.arange(3)))

    def fails_half_way(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        core.atomic_write(target, fails_half_way)
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]  # no temp file left


def test_unwritable_cache_only_warns(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MLREPRO_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning) as caught:
        ds = load_mnist("test")
    assert len(ds) == 1000
    assert any("could not write the cache" in str(w.message) for w in caught)

"""MNIST and Fashion-MNIST: full files, the layouts users have, checksums, samples, downloads."""

import gzip
import os
import shutil
import time
import urllib.error
import warnings

import numpy as np
import pytest
import torch
from datafiles import write_idx

from mlrepro.data import (
    SampleDataWarning,
    core,
    idx,
    load_fashion_mnist,
    load_mnist,
    verify_provenance,
)
from mlrepro.data.files import gzip_bound
from mlrepro.data.idx import LABELS_MAX_BYTES
from mlrepro.data.mnist import MNIST
from mlrepro.errors import DataError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _check_shape(ds, n):
    assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.shape == (n,) and ds.labels.dtype == torch.int64
    assert ds.images.is_contiguous() and len(ds) == n and len(ds.classes) == 10


def _pixel_mean(ds) -> float:
    return ds.images.sum(dtype=torch.float64).item() / (ds.images.numel() * 255)


# --- the full datasets ---


def test_full_mnist(full_data):
    train, test = load_mnist("train", full_data), load_mnist("test", full_data)
    _check_shape(train, 60000)
    _check_shape(test, 10000)
    assert train.labels.bincount().tolist() == MNIST_TRAIN_COUNTS
    assert test.labels.bincount().tolist() == MNIST_TEST_COUNTS
    assert _pixel_mean(train) == pytest.approx(0.1307, abs=5e-4)
    assert train.mean == (0.1307,) and train.std == (0.3081,)
    assert not train.is_sample and train.source == str(full_data / "mnist")
    assert (train.name, train.split, test.split) == ("mnist", "train", "test")


def test_full_fashion_mnist(full_data):
    train, test = load_fashion_mnist("train", full_data), load_fashion_mnist("test", full_data)
    _check_shape(train, 60000)
    _check_shape(test, 10000)
    assert train.labels.bincount().tolist() == [6000] * 10
    assert test.labels.bincount().tolist() == [1000] * 10
    assert _pixel_mean(train) == pytest.approx(0.2860, abs=5e-4)
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert not train.is_sample


# --- where the files may be ---


def _link_t10k(full_data, name, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for f in T10K:
        (folder / f).symlink_to(full_data / name / f)


@pytest.mark.parametrize("layout", ["mnist", "", "MNIST/raw"])
def test_mnist_layouts(full_data, tmp_path, layout):
    folder = tmp_path / "data" / layout
    _link_t10k(full_data, "mnist", folder)
    ds = load_mnist("test", tmp_path / "data")
    assert len(ds) == 10000 and ds.source == str(folder)


def test_fashion_torchvision_layout_and_uncompressed_files(full_data, tmp_path):
    _link_t10k(full_data, "fashion-mnist", tmp_path / "tv" / "FashionMNIST" / "raw")
    assert len(load_fashion_mnist("test", tmp_path / "tv")) == 10000
    raw = tmp_path / "raw" / "fashion-mnist"
    raw.mkdir(parents=True)
    for f in T10K:
        (raw / f.removesuffix(".gz")).write_bytes(
            gzip.decompress((full_data / "fashion-mnist" / f).read_bytes())
        )
    ds = load_fashion_mnist("test", tmp_path / "raw")
    assert ds.labels.bincount().tolist() == [1000] * 10


def test_data_dir_from_environment(full_data, tmp_path, monkeypatch):
    _link_t10k(full_data, "mnist", tmp_path / "env" / "mnist")
    monkeypatch.setenv("MLREPRO_DATA", str(tmp_path / "env"))
    assert not load_mnist("test").is_sample


# --- verification ---


def _write_mnist(folder, images, labels, split="t10k"):
    write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)


def test_checksum_mismatch_names_file_expected_and_got(tmp_path):
    _write_mnist(tmp_path / "mnist", np.zeros((5, 28, 28), np.uint8), np.arange(5, dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_mnist("test", tmp_path)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "sha256" in msg and "\n" not in msg
    assert "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7" in msg


@pytest.mark.parametrize(
    "images, labels, expected",
    [
        (np.zeros((5, 28, 28)), np.array([0, 1, 2, 3, 10]), "label 10 out of range 0..9"),
        (
            np.zeros((5, 28, 28)),
            np.arange(4),
            "4 labels but t10k-images-idx3-ubyte.gz has 5 images",
        ),
        (np.zeros((5, 32, 32)), np.arange(5), "expected 28x28 images, got 32x32"),
    ],
)
def test_structure_errors(tmp_path, images, labels, expected):
    _write_mnist(tmp_path / "mnist", images.astype(np.uint8), labels.astype(np.uint8))
    with pytest.raises(DataError, match=expected):
        load_mnist("test", tmp_path)


def test_truncated_real_file(full_data, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / T10K[1]).symlink_to(full_data / "mnist" / T10K[1])
    data = (full_data / "mnist" / T10K[0]).read_bytes()
    (folder / T10K[0]).write_bytes(data[:100_000])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: truncated gzip stream"):
        load_mnist("test", tmp_path)


def test_verified_once_then_cached_outside_the_source(full_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "cache"))
    _link_t10k(full_data, "mnist", tmp_path / "data" / "mnist")
    first = load_mnist("test", tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == sorted(T10K)
    assert len(list((tmp_path / "cache").rglob("mnist-test-*.npy"))) == 2

    def boom(*args):
        raise AssertionError("a cached load must not read or hash the source again")

    monkeypatch.setattr(idx, "read_idx_file", boom)
    second = load_mnist("test", tmp_path / "data")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.provenance == first.provenance  # recorded in the cache, not recomputed


# --- bundled samples ---


@pytest.mark.parametrize(
    "loader, name", [(load_mnist, "mnist"), (load_fashion_mnist, "fashion-mnist")]
)
def test_sample_fallback_with_one_warning(tmp_path, loader, name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = loader("train")  # no folder named; the user data folder (under HOME) is empty
        test = loader("test")
    _check_shape(train, 2000)
    _check_shape(test, 1000)
    assert train.is_sample and test.is_sample and train.name == name
    assert len(caught) == 2 and all(w.category is SampleDataWarning for w in caught)
    msg = str(caught[0].message)
    assert "2000-image" in msg and "MLREPRO_DATA" in msg and "--data-dir" in msg
    assert "\n" not in msg and str(tmp_path / "home" / ".local" / "share" / "mlrepro") in msg
    assert set(train.labels.tolist()) == set(range(10))
    prov = train.provenance_dict()
    assert prov["sample"] and prov["data_dir_from"] == "bundled-sample" and prov["n"] == 2000
    assert prov["data_dir"] == str(core.SAMPLES_DIR) and all(f["verified"] for f in prov["files"])


def test_sample_is_the_head_of_the_full_data(full_data):
    with pytest.warns(SampleDataWarning):
        sample = load_mnist("test")
    full = load_mnist("test", full_data)
    assert torch.equal(sample.images, full.images[:1000])
    assert torch.equal(sample.labels, full.labels[:1000])


def test_damaged_sample_fails_its_own_checksum(tmp_path, monkeypatch):
    samples = tmp_path / "samples"
    shutil.copytree(core.SAMPLES_DIR / "mnist", samples / "mnist")
    labels = samples / "mnist" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(labels.read_bytes()))
    data[8] = (data[8] + 1) % 10  # still a valid label, so only the checksum can tell
    labels.write_bytes(gzip.compress(bytes(data)))
    monkeypatch.setattr(idx, "SAMPLES_DIR", samples)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: sha256"):
        load_mnist("test")


# --- missing files and downloads ---


def test_missing_files_listed_with_every_folder(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist("train", tmp_path, allow_sample=False)
    msg = str(info.value)
    assert "train-images-idx3-ubyte[.gz]" in msg and "train-labels-idx1-ubyte[.gz]" in msg
    for folder in (tmp_path / "mnist", tmp_path, tmp_path / "MNIST" / "raw"):
        assert f"{folder}," in msg or f"{folder};" in msg
    assert "MLREPRO_OFFLINE" in msg and "\n" not in msg


def test_offline_never_touches_the_network(tmp_path, monkeypatch):
    def no_network(*args, **kw):
        raise AssertionError("network used although MLREPRO_OFFLINE=1")

    monkeypatch.setattr(core, "urlopen", no_network)
    start = time.perf_counter()
    with pytest.raises(DataError, match="MLREPRO_OFFLINE"):
        load_fashion_mnist("test", tmp_path, allow_sample=False)
    assert time.perf_counter() - start < 2
    assert not (tmp_path / "fashion-mnist").exists()


class _Response:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n=-1):
        n = len(self.data) - self.pos if n < 0 else n
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_tries_mirrors_and_verifies(full_data, tmp_path, monkeypatch):
    monkeypatch.delenv("MLREPRO_OFFLINE")
    asked = []

    def fake_urlopen(url, timeout):
        asked.append(url)
        assert timeout <= 10
        if "ossci" in url:  # the first mirror is down
            raise urllib.error.URLError("unreachable")
        return _Response((full_data / "mnist" / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(core, "urlopen", fake_urlopen)
    ds = load_mnist("test", tmp_path / "new")
    assert not ds.is_sample and len(ds) == 10000
    assert sorted(p.name for p in (tmp_path / "new" / "mnist").iterdir()) == sorted(T10K)
    assert [u.split("/")[2] for u in asked] == [
        "ossci-datasets.s3.amazonaws.com",
        "yann.lecun.com",
    ] * 2


def test_download_with_wrong_content_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("MLREPRO_OFFLINE")
    sample = core.SAMPLES_DIR / "fashion-mnist"

    def serve_the_sample(url, timeout):
        return _Response((sample / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(core, "urlopen", serve_the_sample)
    with pytest.raises(DataError, match="download failed .*sha256"):  # a named folder: no sample
        load_fashion_mnist("test", tmp_path / "data")
    assert not (tmp_path / "data").exists()  # nothing half-done left behind
    with pytest.warns(SampleDataWarning, match="download failed .*sha256"):
        ds = load_fashion_mnist("test")  # no folder named
    assert ds.is_sample
    assert not (tmp_path / "home" / ".local" / "share" / "mlrepro").exists()


def test_unwritable_data_dir_falls_back(tmp_path, monkeypatch):
    monkeypatch.delenv("MLREPRO_OFFLINE")
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setattr(core, "urlopen", lambda *a, **k: pytest.fail("should not download"))
    with pytest.raises(DataError, match="cannot download into"):
        load_mnist("test", blocker / "data", allow_sample=False)


# --- a named folder must hold the files: the sample never stands in for it ---


def _named_folder(tmp_path, case: str):
    """A data folder as a user might name it, and the part of the error that says why."""
    folder = tmp_path / "named"
    folder.mkdir()
    images = folder / "mnist" / "t10k-images-idx3-ubyte"
    if case == "empty":
        return folder, "missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
    if case == "junk":
        (folder / "mnist").mkdir()
        for i in range(5):
            (folder / "mnist" / f"junk{i}.bin").write_bytes(bytes(range(256)) * 4)
        (folder / "t10k-images").mkdir()
        return folder, "missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
    write_idx(folder / "mnist" / "t10k-labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))
    if case == "directory":
        images.mkdir()
        return folder, f"{images} is a directory, expected a file"
    if case == "broken-link":
        images.symlink_to(tmp_path / "deleted")
        return folder, f"{images} is a broken symbolic link"
    if case == "fifo":
        os.mkfifo(images)  # reading it would hang: it must be refused, not opened
        return folder, f"{images} is not a regular file"
    raise ValueError(case)


@pytest.mark.parametrize("named_by", ["argument", "MLREPRO_DATA"])
@pytest.mark.parametrize("case", ["empty", "junk", "directory", "broken-link", "fifo"])
def test_a_named_folder_without_the_files_is_an_error(tmp_path, monkeypatch, case, named_by):
    folder, expected = _named_folder(tmp_path, case)
    if named_by == "MLREPRO_DATA":
        monkeypatch.setenv("MLREPRO_DATA", str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no SampleDataWarning either
        with pytest.raises(DataError) as info:
            load_mnist("test", folder if named_by == "argument" else None)
    message = str(info.value)
    assert message.startswith("mnist test: ") and expected in message and "\n" not in message
    assert not (tmp_path / "cache").exists()  # nothing written


def test_train_files_without_test_files_is_an_error_not_the_sample(tmp_path):
    folder = tmp_path / "named" / "mnist"
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(3, dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_mnist("test", tmp_path / "named")
    message = str(info.value)
    assert "missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]" in message
    assert f"{folder} has the train files but not the test files" in message
    assert "so the bundled sample is not used" in message

    # The same in the user data folder: no folder named, but the sample must not be mixed in.
    default = tmp_path / "home" / ".local" / "share" / "mlrepro"
    folder.rename(tmp_path / "moved")
    default.mkdir(parents=True)
    (tmp_path / "moved").rename(default / "mnist")
    with pytest.raises(DataError, match="has the train files but not the test files"):
        load_mnist("test")


def test_empty_mlrepro_data_names_nothing(monkeypatch):
    monkeypatch.setenv("MLREPRO_DATA", "")
    with pytest.warns(SampleDataWarning):
        assert load_mnist("test").is_sample
    with pytest.raises(DataError, match="pass --data-dir or set MLREPRO_DATA"):
        load_mnist("test", allow_sample=False)


# --- provenance ---


def test_provenance_of_the_full_mnist(full_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "cache"))
    _link_t10k(full_data, "mnist", tmp_path / "data" / "mnist")
    ds = load_mnist("test", tmp_path / "data")
    prov = ds.provenance_dict()
    assert list(prov) == [
        "dataset",
        "split",
        "format",
        "lossy",
        "data_dir",
        "data_dir_from",
        "sample",
        "n",
        "files",
    ]
    assert prov == {
        "dataset": "mnist",
        "split": "test",
        "format": "idx-gzip",
        "lossy": False,
        "data_dir": str(tmp_path / "data"),
        "data_dir_from": "argument",
        "sample": False,
        "n": 10000,
        "files": [
            {
                "path": str(tmp_path / "data" / "mnist" / name),
                "size": (full_data / "mnist" / name).stat().st_size,
                "sha256": core.sha256_of(full_data / "mnist" / name),
                "decompressed_sha256": MNIST.sha256[name.removesuffix(".gz")],
                "verified": True,
            }
            for name in T10K
        ],
    }
    assert load_mnist("test", tmp_path / "data").provenance_dict() == prov  # from the cache
    monkeypatch.setenv("MLREPRO_DATA", str(tmp_path / "data"))
    assert load_mnist("test").provenance_dict() == {**prov, "data_dir_from": "MLREPRO_DATA"}
    assert verify_provenance(prov) is None

    # A changed file is named, with what changed; nothing is decoded to find out.
    labels = tmp_path / "data" / "mnist" / T10K[1]
    labels.unlink()
    data = bytearray((full_data / "mnist" / T10K[1]).read_bytes())
    data[-9] ^= 1
    labels.write_bytes(bytes(data))
    assert verify_provenance(prov) == (
        f"{labels}: sha256 is {core.sha256_of(labels)} now, "
        f"{prov['files'][1]['sha256']} when recorded"
    )
    labels.write_bytes(bytes(data) + b"\0")
    assert verify_provenance(prov) == (
        f"{labels}: {len(data) + 1:,} bytes now, {len(data):,} when recorded"
    )
    labels.unlink()
    assert verify_provenance(prov) == f"{labels} is missing"


def test_provenance_of_uncompressed_files(tmp_path, monkeypatch):
    images = np.zeros((2, 28, 28), np.uint8)
    labels = np.array([3, 4], np.uint8)
    folder = tmp_path / "mnist"
    write_idx(folder / "t10k-images-idx3-ubyte", images)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels)
    sums = {p.name: core.sha256_of(p) for p in folder.iterdir()}
    monkeypatch.setitem(MNIST.sha256, "t10k-images-idx3-ubyte", sums["t10k-images-idx3-ubyte"])
    monkeypatch.setitem(MNIST.sha256, "t10k-labels-idx1-ubyte", sums["t10k-labels-idx1-ubyte"])
    prov = load_mnist("test", tmp_path).provenance_dict()
    assert prov["format"] == "idx" and prov["n"] == 2
    assert [f.get("decompressed_sha256") for f in prov["files"]] == [None, None]
    assert [f["sha256"] for f in prov["files"]] == [
        sums["t10k-images-idx3-ubyte"],
        sums["t10k-labels-idx1-ubyte"],
    ]


# --- bounded reading ---


def test_a_huge_labels_file_is_refused_before_reading(tmp_path):
    folder = tmp_path / "mnist"
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    with open(folder / "t10k-labels-idx1-ubyte", "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB that takes no disk
    with pytest.raises(DataError) as info:
        load_mnist("test", tmp_path)
    assert str(info.value) == (
        f"{folder / 't10k-labels-idx1-ubyte'} is 1,073,741,824 bytes, more than the "
        f"{gzip_bound(LABELS_MAX_BYTES):,} bytes an IDX file of at most 70,000 labels can take"
    )


def _bomb(header: bytes, inflated: int) -> bytes:
    """A small .gz that inflates to `inflated` bytes: the header, then zeros (in 16 MiB members)."""
    member = gzip.compress(bytes(16 << 20), compresslevel=9)
    first = gzip.compress(header + bytes((16 << 20) - len(header)), compresslevel=9)
    return first + member * (inflated // (16 << 20) - 1)


def test_a_gzip_bomb_stops_after_the_claimed_size(tmp_path):
    import tracemalloc

    folder = tmp_path / "mnist"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (10, 28, 28))
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(_bomb(header, 1 << 30))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8))
    assert (folder / "t10k-images-idx3-ubyte.gz").stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"expected 7856 bytes for 10x28x28, got more"):
            load_mnist("test", tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


@pytest.mark.parametrize(
    "dims, expected",
    [
        (
            (0xFFFFFFFF, 28, 28),
            "the header claims 4,294,967,295 images; a file of MNIST holds 1 to 70,000",
        ),
        ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), "expected 28x28 images, got 4294967295x4294967295"),
        ((0, 28, 28), "the header claims 0 images"),
    ],
)
def test_lying_headers_are_one_line_errors(tmp_path, dims, expected):
    folder = tmp_path / "mnist"
    folder.mkdir()
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in dims)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(100)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_mnist("test", tmp_path)
    assert expected in str(info.value) and "\n" not in str(info.value)

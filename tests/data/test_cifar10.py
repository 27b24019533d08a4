"""CIFAR-10 in its three layouts, the restricted unpickler, the cache, and the bundled sample."""

import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
import time
import urllib.error
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import (
    CLASSES,
    binary_batch,
    cifar_arrays,
    cifar_rows,
    cifar_splits,
    image_folder,
    jpeg_bytes,
    md5s,
    pickle_batch,
    pickle_meta,
    png_bytes,
    py2_pickle_batch,
    train_test,
    write_binary_batches,
    write_pickle_batches,
    write_tar_gz,
)

from mlrepro.data import SampleDataWarning, cifar10, core, load_cifar10, verify_provenance
from mlrepro.errors import DataError

REAL = cifar10.OFFICIAL  # before the fixture below replaces it


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Batches of 4 images with no published checksums: the generated files stand in for the
    official ones (tests that check verification put their files' md5s in the table)."""
    monkeypatch.setattr(cifar10, "OFFICIAL", cifar10.Checksums(batch_rows=4, md5={}))


def trust(monkeypatch, sums: dict[str, str]) -> None:
    """Publish md5 sums for generated files, as OFFICIAL does for the real ones."""
    monkeypatch.setattr(cifar10, "OFFICIAL", cifar10.Checksums(batch_rows=4, md5=sums))


def _assert_same(ds, images, labels):
    assert ds.images.dtype == torch.uint8 and ds.images.is_contiguous()
    assert ds.labels.dtype == torch.int64
    np.testing.assert_array_equal(ds.images.numpy(), images)
    np.testing.assert_array_equal(ds.labels.numpy(), labels)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- the three layouts ---


def test_pickle_batches(tmp_path):
    batches = cifar_splits()
    write_pickle_batches(tmp_path / "cifar-10-batches-py", batches)
    (train_x, train_y), (test_x, test_y) = train_test(batches)
    train = load_cifar10("train", tmp_path)
    _assert_same(train, train_x, train_y)
    _assert_same(load_cifar10("test", tmp_path), test_x, test_y)
    assert train.classes == CLASSES and not train.is_sample
    assert train.source == str(tmp_path / "cifar-10-batches-py")


def test_pixel_layout_is_channel_planes(tmp_path):
    """A row is 1024 red bytes, then 1024 green, then 1024 blue, each plane row-major."""
    batches = cifar_splits()
    rows = np.zeros((4, 3072), np.uint8)
    rows[0, :1024] = 255  # pure red
    rows[1, 1024:2048] = 255  # pure green
    rows[2, 2048 + 32 * 5 + 7] = 200  # one blue pixel at y=5, x=7
    rows[3] = np.arange(3072) % 251
    images = rows.reshape(4, 3, 32, 32)
    batches["data_batch_1"] = (images, np.array([0, 1, 2, 3]))
    write_binary_batches(tmp_path / "bin" / "cifar-10-batches-bin", batches)
    write_pickle_batches(tmp_path / "py" / "cifar-10-batches-py", batches)
    for root in (tmp_path / "bin", tmp_path / "py"):
        x = load_cifar10("train", root).images.numpy()
        assert (x[0, 0] == 255).all() and (x[0, 1:] == 0).all()
        assert (x[1, 1] == 255).all() and (x[1, 0] == 0).all() and (x[1, 2] == 0).all()
        assert x[2, 2, 5, 7] == 200 and x[2].sum() == 200
        c, y, xx = np.indices((3, 32, 32))
        np.testing.assert_array_equal(x[3], (c * 1024 + y * 32 + xx) % 251)


def test_binary_batches(tmp_path):
    batches = cifar_splits(seed=5)
    write_binary_batches(tmp_path / "cifar-10-batches-bin", batches)
    (train_x, train_y), (test_x, test_y) = train_test(batches)
    _assert_same(load_cifar10("train", tmp_path), train_x, train_y)
    _assert_same(load_cifar10("test", tmp_path), test_x, test_y)


def test_archives_are_read_without_unpacking(tmp_path):
    batches = cifar_splits(seed=9)
    (train_x, train_y), (test_x, test_y) = train_test(batches)
    py = {f"cifar-10-batches-py/{n}": pickle_batch(*b, n.encode()) for n, b in batches.items()}
    py["cifar-10-batches-py/batches.meta"] = pickle_meta()
    write_tar_gz(tmp_path / "py" / "cifar-10-python.tar.gz", py)
    binary = {f"cifar-10-batches-bin/{n}.bin": binary_batch(*b) for n, b in batches.items()}
    write_tar_gz(tmp_path / "bin" / "cifar-10-binary.tar.gz", binary)
    for root, archive in (
        (tmp_path / "py", "cifar-10-python.tar.gz"),
        (tmp_path / "bin", "cifar-10-binary.tar.gz"),
    ):
        ds = load_cifar10("train", root)
        _assert_same(ds, train_x, train_y)
        _assert_same(load_cifar10("test", root), test_x, test_y)
        assert ds.source == str(root / archive) and _files(root) == [archive]


def test_pickle_layout_wins_over_binary(tmp_path):
    write_pickle_batches(tmp_path / "cifar-10-batches-py", cifar_splits(seed=1))
    write_binary_batches(tmp_path / "cifar-10-batches-bin", cifar_splits(seed=2))
    (train_x, _), _ = train_test(cifar_splits(seed=1))
    ds = load_cifar10("train", tmp_path)
    assert ds.source.endswith("cifar-10-batches-py")
    np.testing.assert_array_equal(ds.images.numpy(), train_x)


def test_incomplete_pickle_folder_falls_through_to_binary(tmp_path):
    write_pickle_batches(tmp_path / "cifar-10-batches-py", cifar_splits(seed=1))
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    write_binary_batches(tmp_path / "cifar-10-batches-bin", cifar_splits(seed=2))
    assert load_cifar10("train", tmp_path).source.endswith("cifar-10-batches-bin")


def test_bundled_sample_is_an_image_folder_archive():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = load_cifar10("train")  # no folder named, and the user data folder is empty
        test = load_cifar10("test")
    assert train.is_sample and test.is_sample
    assert train.images.shape == (300, 3, 32, 32) and test.images.shape == (100, 3, 32, 32)
    assert train.labels.bincount().tolist() == [30] * 10
    assert test.labels.bincount().tolist() == [10] * 10
    assert train.source.endswith("cifar-10-jpeg.tar.gz") and train.classes == CLASSES
    # Real photos, not noise: the mean is near CIFAR-10's and neighbouring pixels correlate.
    x = train.images.double() / 255
    assert x.mean().item() == pytest.approx(0.47, abs=0.05)
    assert torch.corrcoef(torch.stack([x[..., :-1].flatten(), x[..., 1:].flatten()]))[0, 1] > 0.8
    assert [w.category for w in caught] == [SampleDataWarning] * 2
    assert "300-image train sample" in str(caught[0].message)
    assert "100-image test sample" in str(caught[1].message)
    prov = train.provenance_dict()
    assert prov["sample"] and prov["data_dir_from"] == "bundled-sample" and prov["lossy"]
    assert prov["format"] == "image-archive" and prov["files"][0]["verified"]
    assert prov["data_dir"] == str(core.SAMPLES_DIR)


def test_image_folder_loose_and_archived_agree(tmp_path):
    sample = core.SAMPLES_DIR / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"
    with tarfile.open(sample) as tar:
        tar.extractall(tmp_path / "loose", filter="data")
    packed = tmp_path / "packed" / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"
    packed.parent.mkdir(parents=True)
    packed.write_bytes(sample.read_bytes())
    loose = load_cifar10("train", tmp_path / "loose")
    packed = load_cifar10("train", tmp_path / "packed")
    assert not loose.is_sample and not packed.is_sample
    assert loose.source == str(tmp_path / "loose" / "cifar-10-jpeg" / "train")
    assert torch.equal(loose.images, packed.images) and torch.equal(loose.labels, packed.labels)
    assert _files(tmp_path / "packed") == ["cifar-10-jpeg", "cifar-10-jpeg/cifar-10-jpeg.tar.gz"]


def test_image_folder_errors(tmp_path):
    def archive(members):
        write_tar_gz(tmp_path / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz", members)
        with pytest.raises(DataError) as info:
            load_cifar10("train", tmp_path)
        assert "cifar-10-jpeg.tar.gz" in str(info.value) and "\n" not in str(info.value)
        return str(info.value)

    good = {f"cifar-10-jpeg/train/{c}/0000.png": png_bytes() for c in CLASSES}
    renamed = {k.replace("airplane", "plane"): v for k, v in good.items()}
    assert "class folders are" in archive(renamed)
    assert "expected 32x32" in archive(
        {**good, "cifar-10-jpeg/train/cat/0001.png": png_bytes((8, 8))}
    )
    message = archive({**good, "cifar-10-jpeg/train/dog/0001.png": b"not an image"})
    assert "train/dog/0001.png: not a readable image" in message
    assert "no images under train/" in archive(
        {k.replace("/train/", "/test/"): v for k, v in good.items()}
    )


# --- damaged batches ---


def test_damaged_batches(tmp_path):
    batches = cifar_splits()
    folder = write_binary_batches(tmp_path / "cifar-10-batches-bin", batches)
    (folder / "data_batch_2.bin").write_bytes(binary_batch(*batches["data_batch_2"])[:-10])
    with pytest.raises(DataError, match=r"data_batch_2.bin: 12282 bytes is not a whole number"):
        load_cifar10("train", tmp_path)

    bad_labels = binary_batch(*batches["data_batch_2"])
    (folder / "data_batch_2.bin").write_bytes(b"\x0c" + bad_labels[1:])
    with pytest.raises(DataError, match="label 12 out of range 0..9"):
        load_cifar10("train", tmp_path)


def test_damaged_pickles(tmp_path):
    folder = write_pickle_batches(tmp_path / "cifar-10-batches-py", cifar_splits())
    batch = folder / "data_batch_4"
    batch.write_bytes(
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2)
    )
    with pytest.raises(DataError, match=r"data_batch_4: expected 'data' as uint8 \(N, 3072\)"):
        load_cifar10("train", tmp_path)
    batch.write_bytes(pickle_batch(*cifar_arrays(3, 0), b"three"))  # a row short
    with pytest.raises(DataError, match=r"with N = 4, got uint8 \(3, 3072\)"):
        load_cifar10("train", tmp_path)
    images, _ = cifar_arrays(4, 0)
    batch.write_bytes(pickle.dumps({b"data": cifar_rows(images), b"labels": [0] * 5}, protocol=2))
    with pytest.raises(DataError, match="expected 'labels' as a list of 4 integers, got 5"):
        load_cifar10("train", tmp_path)
    batch.write_bytes(b"\x80\x02}q\x00(")  # cut off mid-way
    with pytest.raises(DataError, match="data_batch_4: not a readable pickle"):
        load_cifar10("train", tmp_path)
    (folder / "batches.meta").write_bytes(pickle_meta(CLASSES[::-1]))
    with pytest.raises(DataError, match="batches.meta: label_names are"):
        load_cifar10("test", tmp_path)


# --- the restricted unpickler ---


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _CallsEval:
    def __reduce__(self):
        return eval, ("1 + 1",)


@pytest.mark.parametrize("payload", ["system", "eval", "codec"])
def test_malicious_pickle_is_refused_and_never_run(tmp_path, payload):
    folder = write_pickle_batches(tmp_path / "cifar-10-batches-py", cifar_splits())
    marker = tmp_path / "pwned"
    evil = {"system": _RunsACommand(marker), "eval": _CallsEval()}.get(payload)
    if payload == "codec":  # a bytes payload that decompresses itself: no codec but latin1
        data = (
            b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xq\x01X\x04\x00\x00\x00zlibq"
            b"\x02\x86q\x03Rq\x04."
        )
    else:
        data = pickle.dumps({b"data": evil, b"labels": [0]}, protocol=2)
    (folder / "data_batch_1").write_bytes(data)
    with pytest.raises(DataError) as info:
        load_cifar10("train", tmp_path)
    message = str(info.value)
    assert str(folder / "data_batch_1") in message and "\n" not in message
    if payload == "system":
        assert f"refusing to unpickle {os.system.__module__}.system from" in message
    elif payload == "eval":
        # Protocol 2 writes Python 2's module name for builtins.
        assert "refusing to unpickle __builtin__.eval from" in message
    else:
        assert "not a readable pickle" in message and "zlib" in message
    assert not marker.exists()


def test_real_cifar_style_pickle_globals_are_allowed():
    # What a Python-2 CIFAR batch names: numpy.core's _reconstruct, ndarray and dtype.
    data = pickle.dumps({b"data": np.arange(6, dtype=np.uint8).reshape(2, 3)}, protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    batch = cifar10.unpickle_batch(data, "batch")
    np.testing.assert_array_equal(batch[b"data"], np.arange(6).reshape(2, 3))


# --- cache ---


def test_cache_goes_to_the_cache_dir_and_follows_the_source(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "my-cache"))
    batches = cifar_splits(seed=3)
    folder = write_binary_batches(tmp_path / "data" / "cifar-10-batches-bin", batches)
    before = _files(tmp_path / "data")
    first = load_cifar10("test", tmp_path / "data")
    assert _files(tmp_path / "data") == before  # nothing written beside the source
    cached = sorted(p.name for p in (tmp_path / "my-cache").rglob("*") if p.is_file())
    assert len(cached) == 3 and all(n.startswith("cifar10-test-") for n in cached)

    monkeypatch.setattr(
        cifar10,
        "_read_binary_batches",
        lambda *a, **k: pytest.fail("decoded again despite the cache"),
    )
    assert torch.equal(load_cifar10("test", tmp_path / "data").images, first.images)
    monkeypatch.undo()
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "my-cache"))
    monkeypatch.setattr(cifar10, "OFFICIAL", cifar10.Checksums(batch_rows=4, md5={}))

    images, labels = batches["test_batch"]
    (folder / "test_batch.bin").write_bytes(binary_batch(255 - images, (labels + 1) % 10))
    os.utime(folder / "test_batch.bin", ns=(1, 1))  # a new mtime even on coarse clocks
    changed = load_cifar10("test", tmp_path / "data")
    np.testing.assert_array_equal(changed.images.numpy(), 255 - images)
    np.testing.assert_array_equal(changed.labels.numpy(), (labels + 1) % 10)
    # The entry for the old file is gone, not left to pile up.
    assert len([p for p in (tmp_path / "my-cache").rglob("*") if p.is_file()]) == 3


def test_damaged_cache_is_rebuilt(tmp_path):
    write_binary_batches(tmp_path / "cifar-10-batches-bin", cifar_splits())
    first = load_cifar10("test", tmp_path)
    for npy in (tmp_path / "cache").rglob("*.images.npy"):
        npy.write_bytes(npy.read_bytes()[:200])
    assert torch.equal(load_cifar10("test", tmp_path).images, first.images)


# --- missing ---


def test_missing_files_are_listed(tmp_path):
    with pytest.raises(DataError) as info:
        load_cifar10("train", tmp_path, allow_sample=False)
    msg = str(info.value)
    assert "\n" not in msg and "MLREPRO_OFFLINE" in msg
    for expected in (
        "cifar-10-batches-py/{data_batch_1,",
        "cifar-10-python.tar.gz",
        "cifar-10-batches-bin/{data_batch_1.bin,",
        "cifar-10-jpeg/train",
        "cifar-10-jpeg/cifar-10-jpeg.tar.gz",
        str(tmp_path),
    ):
        assert expected in msg


# --- the full JPEG copy ---


def test_full_cifar10_jpeg_copy(full_data):
    if not (full_data / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz").is_file():
        pytest.skip("no full CIFAR-10 copy")
    train, test = load_cifar10("train", full_data), load_cifar10("test", full_data)
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert train.labels.bincount().tolist() == [5000] * 10
    assert test.labels.bincount().tolist() == [1000] * 10
    mean = train.images.sum(dim=(0, 2, 3), dtype=torch.float64) / (50000 * 32 * 32 * 255)
    assert mean.tolist() == pytest.approx([0.4913, 0.4821, 0.4465], abs=5e-4)
    assert not train.is_sample and train.mean == (0.4914, 0.4822, 0.4465)
    prov = train.provenance_dict()
    assert (prov["format"], prov["lossy"], prov["n"]) == ("image-archive", True, 50000)
    assert prov["files"] == [
        {
            "path": str(full_data / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"),
            "size": 19437917,
            "sha256": "50c8d948fcc8db1d836d41055ad11e49a03b4e6a9eb95c64e43dd793412333a3",
            "verified": False,  # a home-made copy: no published checksum vouches for it
        }
    ]


# --- download ---


def _python_archive(tmp_path, batches):
    members = {f"cifar-10-batches-py/{n}": pickle_batch(*b, n.encode()) for n, b in batches.items()}
    members["cifar-10-batches-py/batches.meta"] = pickle_meta()
    return write_tar_gz(tmp_path / "served" / "cifar-10-python.tar.gz", members).read_bytes()


def test_download_checks_md5_and_lands_in_the_data_dir(tmp_path, monkeypatch):
    batches = cifar_splits(seed=4)
    served = _python_archive(tmp_path, batches)
    monkeypatch.delenv("MLREPRO_OFFLINE")
    monkeypatch.setattr(core, "urlopen", lambda url, timeout: io.BytesIO(served))
    trust(monkeypatch, {"cifar-10-python.tar.gz": REAL.md5["cifar-10-python.tar.gz"]})
    # The served archive is not the real one: a named folder gets an error, nothing kept.
    with pytest.raises(DataError, match="download failed .*md5"):
        load_cifar10("test", tmp_path / "data")
    assert not (tmp_path / "data").exists()
    # With no folder named, the sample stands in (the user data folder is left as it was).
    with pytest.warns(SampleDataWarning, match="md5"):
        assert load_cifar10("test").is_sample

    trust(monkeypatch, {"cifar-10-python.tar.gz": hashlib.md5(served).hexdigest()})
    ds = load_cifar10("test", tmp_path / "data")
    _assert_same(ds, *batches["test_batch"])
    assert _files(tmp_path / "data") == ["cifar-10-python.tar.gz"]
    assert ds.provenance_dict()["files"][0]["verified"]


def test_no_network_falls_back_fast(monkeypatch):
    monkeypatch.delenv("MLREPRO_OFFLINE")

    def unreachable(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(core, "urlopen", unreachable)
    start = time.perf_counter()
    with pytest.warns(SampleDataWarning, match="download failed"):
        assert load_cifar10("test").is_sample
    assert time.perf_counter() - start < 5


# --- provenance and published checksums ---


def test_the_official_table():
    assert REAL.batch_rows == 10_000
    assert REAL.md5 == {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
        "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
    }  # none is published for the loose binary batches, so none is made up
    assert REAL.binary_bytes == 30_730_000  # the binary batches' documented size


def test_pickle_batches_checked_against_their_md5_before_unpickling(tmp_path, monkeypatch):
    folder = write_pickle_batches(tmp_path / "cifar-10-batches-py", cifar_splits())
    published = md5s(folder)
    trust(monkeypatch, published)
    ds = load_cifar10("test", tmp_path)
    prov = ds.provenance_dict()
    assert prov["format"] == "cifar-pickle" and not prov["lossy"] and prov["n"] == 4
    assert [f["path"] for f in prov["files"]] == [
        str(folder / "test_batch"),
        str(folder / "batches.meta"),
    ]
    assert all(f["verified"] and len(f["md5"]) == 32 for f in prov["files"])

    # Replaced by a pickle that would run a command: refused by its md5, never unpickled.
    marker = tmp_path / "ran"
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": _RunsACommand(marker)}, 2))
    with pytest.raises(DataError) as info:
        load_cifar10("train", tmp_path)
    got = hashlib.md5((folder / "data_batch_2").read_bytes()).hexdigest()
    assert str(info.value) == (
        f"{folder / 'data_batch_2'}: md5 is {got}, expected "
        f"{published['data_batch_2']} (corrupt, or not the official "
        f"CIFAR-10 file)"
    )
    assert not marker.exists()


def test_python2_pickles_load_like_the_real_batches(tmp_path):
    batches = cifar_splits(seed=7)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, (images, labels) in batches.items():
        (folder / name).write_bytes(py2_pickle_batch(images, labels, name.encode()))
    (train_x, train_y), (test_x, test_y) = train_test(batches)
    _assert_same(load_cifar10("train", tmp_path), train_x, train_y)
    _assert_same(load_cifar10("test", tmp_path), test_x, test_y)
    # And batch by batch, against what an unrestricted pickle load gives.
    data = (folder / "test_batch").read_bytes()
    assert data[:2] == b"\x80\x02" and b"numpy.core.multiarray" in data
    ours = cifar10.unpickle_batch(data, "test_batch")
    theirs = pickle.loads(data, encoding="bytes")
    assert ours.keys() == theirs.keys() and ours[b"labels"] == theirs[b"labels"]
    np.testing.assert_array_equal(ours[b"data"], theirs[b"data"])


def _p2(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


_NDARRAY_STATE = (
    b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
    b"(K\x01J\xe0\x93\x04\x00M\x00\x0c\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
    b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
)

HOSTILE_PICKLES = {
    # An allowed-looking constructor asked for 2 GiB in a 39-byte file.
    "bytearray": (
        _p2(b"c__builtin__\nbytearray\nJ\x00\x00\x00\x80\x85R"),
        "refusing to unpickle __builtin__.bytearray",
    ),
    # numpy.ndarray((300000, 3072)) would be 921 MB of uninitialised memory.
    "ndarray": (
        _p2(b"cnumpy\nndarray\nJ\xe0\x93\x04\x00M\x00\x0c\x86\x85R"),
        "numpy.ndarray called directly",
    ),
    # A (300000, 3072) array whose bytes are not in the file.
    "shape": (_p2(_NDARRAY_STATE, b"U\x00tb"), "holds more than the 12,288 items a batch can"),
    "exec": (
        _p2(b"c__builtin__\nexec\nX\x05\x00\x00\x001 + 1\x85R"),
        "refusing to unpickle __builtin__.exec",
    ),
    # Protocol 4's BYTEARRAY8 and BINBYTES8 reserve the length they declare before reading.
    "bytes8": (b"\x80\x02\x8e" + (1 << 40).to_bytes(8, "little"), "not a readable pickle"),
    "bytearray8": (
        b"\x80\x02\x96\x04\x00\x00\x00\x00\x00\x00\x00abcd.",
        "refusing pickle opcode BYTEARRAY8",
    ),
    "memo": (_p2(b"N", b"r\xff\xff\xff\xff"), "pickle memo index 4294967295 out of range"),
    "labels": (
        _p2(b"}(U\x06labels](", b"K\x01" * 300_000, b"eu"),
        "more than 4,160 pickle opcodes",
    ),
    "dtype": (_p2(b"cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R"), "is not an integer type"),
    "persid": (_p2(b"P0\n"), "refusing pickle opcode PERSID"),
    "proto5": (b"\x80\x05N.", "pickle protocol 5"),
}


@pytest.mark.parametrize("case", HOSTILE_PICKLES)
def test_hostile_pickles_are_refused_with_little_memory(case):
    import tracemalloc

    data, expected = HOSTILE_PICKLES[case]
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            cifar10.unpickle_batch(data, "data_batch_1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert expected in message and "data_batch_1" in message and "\n" not in message
    assert peak < 16 * 2**20, f"{case}: {peak:,} bytes allocated"


def test_arrays_are_built_only_from_checked_state():
    images, labels = cifar_arrays(4, 3)
    ok = pickle.dumps({b"data": cifar_rows(images), b"labels": labels.astype(">i8")}, protocol=2)
    batch = cifar10.unpickle_batch(ok, "b")
    np.testing.assert_array_equal(batch[b"data"], cifar_rows(images))
    assert batch[b"labels"].dtype == np.dtype(">i8")  # byte order from the dtype's state
    np.testing.assert_array_equal(batch[b"labels"], labels)
    cut = pickle.dumps({b"data": cifar_rows(images)[:, :100].copy()}, protocol=2)
    batch = cifar10.unpickle_batch(cut, "b")
    assert batch[b"data"].shape == (4, 100)  # a valid array; the loader then refuses its shape
    floats = pickle.dumps({b"data": np.zeros((2, 2), np.float32)}, protocol=2)
    with pytest.raises(DataError, match="is not an integer type"):
        cifar10.unpickle_batch(floats, "b")
    objects = pickle.dumps({b"data": np.array([None, 1], dtype=object)}, protocol=2)
    with pytest.raises(DataError, match="not an integer type|refusing"):
        cifar10.unpickle_batch(objects, "b")


def test_binary_batches_hold_the_known_count(tmp_path):
    batches = cifar_splits()
    folder = write_binary_batches(tmp_path / "cifar-10-batches-bin", batches)
    (folder / "data_batch_3.bin").write_bytes(binary_batch(*cifar_arrays(3, 1)))
    with pytest.raises(DataError, match=r"data_batch_3.bin: 3 records, expected 4 "):
        load_cifar10("train", tmp_path)
    (folder / "data_batch_3.bin").write_bytes(binary_batch(*cifar_arrays(5, 1)))
    with pytest.raises(
        DataError,
        match=r"data_batch_3.bin is 15,365 bytes, more than the "
        r"12,292 bytes 4 records of 3073 bytes take",
    ):
        load_cifar10("train", tmp_path)


def test_binary_files_are_unverified_loose_and_verified_through_their_archive(
    tmp_path, monkeypatch
):
    batches = cifar_splits(seed=2)
    write_binary_batches(tmp_path / "loose" / "cifar-10-batches-bin", batches)
    prov = load_cifar10("test", tmp_path / "loose").provenance_dict()
    assert prov["format"] == "cifar-binary"
    assert [f["verified"] for f in prov["files"]] == [False]  # no md5 is published for these

    archive = write_tar_gz(
        tmp_path / "packed" / "cifar-10-binary.tar.gz",
        {f"cifar-10-batches-bin/{n}.bin": binary_batch(*b) for n, b in batches.items()},
    )
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    cached = sorted((tmp_path / "cache").rglob("*"))
    trust(monkeypatch, {"cifar-10-binary.tar.gz": "0" * 32})
    with pytest.raises(DataError) as info:
        load_cifar10("test", tmp_path / "packed")
    assert str(info.value) == (
        f"{archive}: md5 is {digest}, expected {'0' * 32} (corrupt, or "
        f"not the official CIFAR-10 file)"
    )
    assert sorted((tmp_path / "cache").rglob("*")) == cached  # nothing cached from a bad file
    trust(monkeypatch, {"cifar-10-binary.tar.gz": digest})
    prov = load_cifar10("test", tmp_path / "packed").provenance_dict()
    assert prov["format"] == "cifar-binary-archive" and prov["files"] == [
        {
            "path": str(archive),
            "size": archive.stat().st_size,
            "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
            "md5": digest,
            "verified": True,
        }
    ]


def test_pickle_archive_members_are_checked_too(tmp_path, monkeypatch):
    batches = cifar_splits(seed=3)
    served = _python_archive(tmp_path, batches)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cifar-10-python.tar.gz").write_bytes(served)
    trust(monkeypatch, {"test_batch": "1" * 32})  # the archive's own md5 unknown here
    with pytest.raises(
        DataError,
        match=r"cifar-10-python.tar.gz:test_batch: md5 is [0-9a-f]{32}, "
        r"expected 1{32}",
    ):
        load_cifar10("test", tmp_path / "data")


@pytest.mark.parametrize(
    "layout",
    ["pickle", "pickle-archive", "binary", "binary-archive", "image-folder", "image-archive"],
)
def test_provenance_is_the_same_from_the_cache_and_checks_the_files(tmp_path, layout):
    batches = cifar_splits(seed=5)
    root = tmp_path / "data"
    if layout == "pickle":
        write_pickle_batches(root / "cifar-10-batches-py", batches)
    elif layout == "pickle-archive":
        (root / "cifar-10-python.tar.gz").parent.mkdir(parents=True)
        (root / "cifar-10-python.tar.gz").write_bytes(_python_archive(tmp_path, batches))
    elif layout == "binary":
        write_binary_batches(root / "cifar-10-batches-bin", batches)
    elif layout == "binary-archive":
        write_tar_gz(
            root / "cifar-10-binary.tar.gz",
            {f"cifar-10-batches-bin/{n}.bin": binary_batch(*b) for n, b in batches.items()},
        )
    elif layout == "image-folder":
        image_folder(root, image=jpeg_bytes)
    else:
        write_tar_gz(
            root / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz",
            {
                f"cifar-10-jpeg/{s}/{c}/0000.png": png_bytes()
                for s in ("train", "test")
                for c in CLASSES
            },
        )
    first = load_cifar10("test", root).provenance_dict()
    fmt = {"pickle": "cifar-pickle", "binary": "cifar-binary"}.get(layout, layout)
    fmt = {"pickle-archive": "cifar-pickle-archive", "binary-archive": "cifar-binary-archive"}.get(
        fmt, fmt
    )
    assert first["format"] == fmt and first["lossy"] == (layout == "image-folder")
    assert first["data_dir"] == str(root) and first["data_dir_from"] == "argument"
    assert first["n"] == (4 if "image" not in layout else 10) and not first["sample"]
    assert load_cifar10("test", root).provenance_dict() == first  # from the cache now
    assert json.loads(json.dumps(first)) == first
    assert verify_provenance(first) is None

    changed = Path(first["files"][-1]["path"])
    if changed.is_dir():
        changed = next(changed.glob("*/*"))
    changed.write_bytes(changed.read_bytes() + b"\0")
    problem = verify_provenance(first)
    assert (
        problem and str(changed.parent.parent if layout == "image-folder" else changed) in problem
    )
    changed.unlink()
    assert verify_provenance(first)


def test_verify_provenance_follows_a_moved_copy(tmp_path):
    write_binary_batches(tmp_path / "a" / "cifar-10-batches-bin", cifar_splits())
    record = load_cifar10("test", tmp_path / "a").provenance_dict()
    (tmp_path / "a").rename(tmp_path / "b")
    assert "is missing" in verify_provenance(record)
    assert verify_provenance(record, data_dir=tmp_path / "b") is None
    assert verify_provenance({"files": []}) == "the record lists no files"


# --- what a named folder must hold ---


def test_a_named_folder_with_only_the_train_batches_is_an_error(tmp_path):
    folder = write_pickle_batches(tmp_path / "cifar-10-batches-py", cifar_splits())
    (folder / "test_batch").unlink()
    assert len(load_cifar10("train", tmp_path)) == 20
    with pytest.raises(DataError) as info:
        load_cifar10("test", tmp_path)
    message = str(info.value)
    assert f"{folder} has the train files but not the test files" in message
    assert "cifar-10-batches-py/{test_batch}" in message and "sample is not used" in message


def test_the_user_data_folder_with_train_only_does_not_mix_in_the_sample(tmp_path):
    default = tmp_path / "home" / ".local" / "share" / "mlrepro"
    folder = write_binary_batches(default / "cifar-10-batches-bin", cifar_splits())
    (folder / "test_batch.bin").unlink()
    assert not load_cifar10("train").is_sample
    with pytest.raises(DataError, match="has the train files but not the test files"):
        load_cifar10("test")


@pytest.mark.parametrize("what", ["directory", "broken-link", "fifo"])
def test_something_else_where_a_batch_should_be(tmp_path, what):
    folder = write_pickle_batches(tmp_path / "cifar-10-batches-py", cifar_splits())
    target = folder / "data_batch_3"
    target.unlink()
    if what == "directory":
        target.mkdir()
        expected = f"{target} is a directory, expected a file"
    elif what == "broken-link":
        target.symlink_to(tmp_path / "nowhere")
        expected = f"{target} is a broken symbolic link"
    else:
        os.mkfifo(target)
        expected = f"{target} is not a regular file"
    with pytest.raises(DataError) as info:
        load_cifar10("train", tmp_path)
    assert str(info.value) == f"cifar10 train: {expected}"


# --- image folders: bounded ---


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (incomplete) pixel stream."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    idat = zlib.compress(bytes(4096))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(4000, 4000), (100_000, 100_000)])
def test_image_size_is_checked_before_decoding(tmp_path, monkeypatch, size):
    image_folder(tmp_path, splits=("train",))
    bomb = tmp_path / "cifar-10-jpeg" / "train" / "cat" / "0001.png"
    bomb.write_bytes(_png_header_only(*size))

    def no_decoding(self):
        raise AssertionError("pixels decoded before the size was checked")

    from PIL import ImageFile

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(DataError) as info:
        cifar10._decode(bomb.read_bytes(), str(bomb))
    message = str(info.value)
    assert str(bomb) in message and "\n" not in message
    assert (
        f"image is {size[0]}x{size[1]}, expected 32x32" in message
        or "not a readable image" in message
    )


def test_image_folder_bounds(tmp_path, monkeypatch):
    image_folder(tmp_path, splits=("train",))
    big = tmp_path / "cifar-10-jpeg" / "train" / "dog" / "0001.jpg"
    with open(big, "wb") as f:
        f.truncate(cifar10.MAX_IMAGE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(DataError, match=r"0001.jpg is 65,537 bytes, more than the 65,536 bytes"):
        load_cifar10("train", tmp_path)
    big.unlink()
    monkeypatch.setattr(cifar10, "MAX_IMAGES", 5)
    with pytest.raises(DataError, match="more than 1,005 entries|more than the 5"):
        load_cifar10("train", tmp_path)


def test_image_archive_bounds(tmp_path, monkeypatch):
    good = {f"cifar-10-jpeg/train/{c}/0000.png": png_bytes() for c in CLASSES}
    archive = tmp_path / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"

    def fails(data: bytes, expected: str):
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(data)
        with pytest.raises(DataError) as info:
            load_cifar10("train", tmp_path)
        assert expected in str(info.value) and "\n" not in str(info.value)

    # A link where an image should be is refused, not followed.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in good.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("cifar-10-jpeg/train/cat/0001.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    fails(buf.getvalue(), "0001.png is not a regular file in the archive")
    # A pax header that claims 1 GiB is refused before tarfile reads it into memory.
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, 1 << 30
    fails(
        gzip.compress(header.tobuf(format=tarfile.USTAR_FORMAT)),
        "extended header of 1,073,741,824 bytes",
    )
    monkeypatch.setattr(cifar10, "MAX_IMAGES", 5)
    write_tar_gz(archive, good)
    with pytest.raises(DataError, match="more than the 5 images CIFAR-10 has"):
        load_cifar10("train", tmp_path)
    monkeypatch.setattr(cifar10, "MAX_IMAGES", 60_000)
    monkeypatch.setattr(cifar10, "MAX_IMAGE_TAR_BYTES", 64 * 1024)
    write_tar_gz(archive, {**good, "cifar-10-jpeg/readme": bytes(1 << 20)})
    with pytest.raises(DataError, match=r"\(unpacked\) holds more than the 65,536 bytes it can"):
        load_cifar10("train", tmp_path)

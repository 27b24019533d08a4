"""CIFAR-10 in its three layouts, the restricted unpickler, the cache, and the bundled sample."""

import hashlib
import io
import os
import pickle
import tarfile
import time
import urllib.error
import warnings

import numpy as np
import pytest
import torch
from datafiles import (
    CLASSES,
    binary_batch,
    cifar_splits,
    pickle_batch,
    pickle_meta,
    train_test,
    write_binary_batches,
    write_pickle_batches,
    write_tar_gz,
)

from mlrepro.data import SampleDataWarning, cifar10, core, load_cifar10
from mlrepro.errors import DataError


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
    for root, archive in ((tmp_path / "py", "cifar-10-python.tar.gz"),
                          (tmp_path / "bin", "cifar-10-binary.tar.gz")):
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


def test_bundled_sample_is_an_image_folder_archive(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = load_cifar10("train", tmp_path)
        test = load_cifar10("test", tmp_path)
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


def _jpeg(size=(32, 32)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_image_folder_errors(tmp_path):
    def archive(members):
        write_tar_gz(tmp_path / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz", members)
        with pytest.raises(DataError) as info:
            load_cifar10("train", tmp_path)
        assert "cifar-10-jpeg.tar.gz" in str(info.value) and "\n" not in str(info.value)
        return str(info.value)

    good = {f"cifar-10-jpeg/train/{c}/0000.png": _jpeg() for c in CLASSES}
    renamed = {k.replace("airplane", "plane"): v for k, v in good.items()}
    assert "class folders are" in archive(renamed)
    assert "expected 32x32" in archive({**good, "cifar-10-jpeg/train/cat/0001.png": _jpeg((8, 8))})
    message = archive({**good, "cifar-10-jpeg/train/dog/0001.png": b"not an image"})
    assert "train/dog/0001.png: not a readable image" in message
    assert "no images under train/" in archive({k.replace("/train/", "/test/"): v
                                               for k, v in good.items()})


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
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
                                   protocol=2))
    with pytest.raises(DataError, match=r"data_batch_4: expected 'data' as uint8 \(N, 3072\)"):
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
        data = (b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xq\x01X\x04\x00\x00\x00zlibq"
                b"\x02\x86q\x03Rq\x04.")
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

    monkeypatch.setattr(cifar10, "_read_binary_batches",
                        lambda *a, **k: pytest.fail("decoded again despite the cache"))
    assert torch.equal(load_cifar10("test", tmp_path / "data").images, first.images)
    monkeypatch.undo()
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "my-cache"))

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
    for expected in ("cifar-10-batches-py/{data_batch_1,", "cifar-10-python.tar.gz",
                     "cifar-10-batches-bin/{data_batch_1.bin,", "cifar-10-jpeg/train",
                     "cifar-10-jpeg/cifar-10-jpeg.tar.gz", str(tmp_path)):
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
    with pytest.warns(SampleDataWarning, match="md5"):  # the real archive's md5 doesn't match
        assert load_cifar10("test", tmp_path / "data").is_sample
    assert not (tmp_path / "data").exists()

    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(served).hexdigest())
    ds = load_cifar10("test", tmp_path / "data")
    _assert_same(ds, *batches["test_batch"])
    assert _files(tmp_path / "data") == ["cifar-10-python.tar.gz"]


def test_no_network_falls_back_fast(tmp_path, monkeypatch):
    monkeypatch.delenv("MLREPRO_OFFLINE")

    def unreachable(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(core, "urlopen", unreachable)
    start = time.perf_counter()
    with pytest.warns(SampleDataWarning, match="download failed"):
        assert load_cifar10("test", tmp_path).is_sample
    assert time.perf_counter() - start < 5

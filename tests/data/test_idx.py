"""The IDX reader on generated files: round trips and every way a file can be broken."""

import gzip

import numpy as np
import pytest
from datafiles import idx_bytes, write_idx

from mlrepro.data import read_idx
from mlrepro.errors import DataError


def _error(path, **kw) -> str:
    with pytest.raises(DataError) as info:
        read_idx(path, **kw)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    return message


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_raw_and_gzip(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / name, images))
    assert out.dtype == np.uint8 and out.shape == (7, 28, 28) and out.flags.writeable
    np.testing.assert_array_equal(out, images)


def test_labels_and_pinned_magic(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    path = write_idx(tmp_path / "labels-idx1-ubyte", labels)
    np.testing.assert_array_equal(read_idx(path, magic=0x00000801), labels)
    assert "bad magic 0x00000801, expected 0x00000803" in _error(path, magic=0x00000803)


def test_big_endian_types_come_back_native(tmp_path):
    values = np.array([[1, -2, 70000], [3, 4, -5]], dtype=">i4")
    header = bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    path = tmp_path / "ints-idx2-int"
    path.write_bytes(header + values.tobytes())
    out = read_idx(path)
    assert out.dtype == np.dtype("int32") and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_wrong_magic(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x00" * 16 + bytes(784))
    assert "bad magic 0x00000000, expected 0x00000803" in _error(path, magic=0x00000803)
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    assert "bad magic 0x12340803" in _error(path)
    path.write_bytes(b"\x00\x00\x42\x01" + bytes(100))  # unknown type code
    assert "bad magic 0x00004201" in _error(path)


def test_truncated_raw_file_names_expected_and_actual_size(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((10, 28, 28), np.uint8))[:1000])
    assert "expected 7856 bytes for 10x28x28, got 1000" in _error(path)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    data = gzip.compress(
        idx_bytes(np.random.default_rng(1).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    )
    path.write_bytes(data[: len(data) // 2])
    assert "truncated gzip stream" in _error(path)


def test_corrupt_gzip_stream(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    data = bytearray(gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8))))
    data[-8] ^= 0xFF  # the CRC no longer matches
    path.write_bytes(bytes(data))
    assert "corrupt gzip stream" in _error(path)


def test_not_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    assert "not a gzip file" in _error(path)


def test_dims_that_disagree_with_the_length(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    good = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    path.write_bytes(good + b"\x00")  # one byte too many is as wrong as one too few
    assert "expected 2368 bytes for 3x28x28, got 2369" in _error(path)
    path.write_bytes(
        good[:4]
        + (3).to_bytes(4, "big")
        + (28).to_bytes(4, "big")
        + (27).to_bytes(4, "big")
        + good[16:]
    )
    assert "for 3x28x27" in _error(path)
    path.write_bytes(b"\x00\x00\x08\x03" + bytes(6))  # header cut inside the dims
    assert "truncated header" in _error(path)


def test_empty_and_missing_files(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"")
    assert "too short" in _error(path)
    assert "cannot read" in _error(tmp_path / "absent-idx1-ubyte")


def _header(*dims: int, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_dims_that_would_overflow_int64_are_a_one_line_error(tmp_path):
    path = tmp_path / "huge-idx4-ubyte"
    path.write_bytes(_header(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, code=0x0E))
    message = _error(path)
    assert (
        "the header claims 4294967295x4294967295x4294967295x4294967295 items of 8 byte(s)"
        in message
    )
    assert "more than the 1,073,741,824 allowed" in message


def test_max_bytes_bounds_what_a_header_may_claim(tmp_path):
    path = write_idx(tmp_path / "images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    assert read_idx(path, max_bytes=16 + 3 * 784).shape == (3, 28, 28)
    assert "more than the 2,367 allowed" in _error(path, max_bytes=2367)


def test_a_gzip_stream_longer_than_its_header_says(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_header(3) + bytes(3)) + gzip.compress(bytes(10)))
    assert "expected 11 bytes for 3, got more" in _error(path)  # the second member is extra


def test_oversized_and_special_files_are_refused_unread(tmp_path):
    import os

    path = tmp_path / "t10k-labels-idx1-ubyte"
    with open(path, "wb") as f:
        f.truncate(4 << 30)  # sparse
    assert "is 4,294,967,296 bytes, more than the" in _error(path)
    path.unlink()
    os.mkfifo(path)
    assert _error(path) == f"{path} is not a regular file"  # and it did not hang
    path.unlink()
    path.mkdir()
    assert _error(path) == f"{path} is a directory, expected a file"

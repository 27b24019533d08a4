"""Small files in the real dataset formats, written the way the originals are."""

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array as an IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write an IDX file, gzip-compressed when the name ends in .gz."""
    data = idx_bytes(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def cifar_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (n, 3, 32, 32) uint8 images and labels 0..9."""
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
        rng.integers(0, 10, n).astype(np.int64),
    )


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """CIFAR's row layout: all of R (row-major), then all of G, then all of B."""
    n = len(images)
    return np.concatenate([images[:, c].reshape(n, 1024) for c in range(3)], axis=1)


def pickle_batch(images: np.ndarray, labels: np.ndarray, label: bytes) -> bytes:
    """A batch as CIFAR ships it: a protocol-2 pickled dict with bytes keys."""
    batch = {
        b"batch_label": label,
        b"labels": [int(v) for v in labels],
        b"data": cifar_rows(images),
        b"filenames": [b"img_%d.png" % i for i in range(len(labels))],
    }
    return pickle.dumps(batch, protocol=2)


CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def pickle_meta(names=CLASSES) -> bytes:
    return pickle.dumps(
        {b"label_names": [n.encode() for n in names], b"num_cases_per_batch": 4, b"num_vis": 3072},
        protocol=2,
    )


def _py2_string(data: bytes) -> bytes:
    """A Python 2 str as protocol 2 writes it: SHORT_BINSTRING, or BINSTRING with a 4-byte
    length."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def py2_pickle_batch(images: np.ndarray, labels: np.ndarray, label: bytes = b"batch") -> bytes:
    """A batch byte for byte as Python 2's cPickle (protocol 2) wrote CIFAR-10's: str keys and
    values as binary strings, numpy.core's _reconstruct with int dtype arguments."""
    n = len(labels)
    out = [
        b"\x80\x02}q\x01(",
        _py2_string(b"batch_label"),
        _py2_string(label),
        _py2_string(b"labels"),
        b"](",
        *[b"K" + bytes([int(v)]) for v in labels],
        b"e",
        _py2_string(b"data"),
        b"cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85U\x01b\x87Rq\x04"
        b"(K\x01K" + bytes([n]) + b"M\x00\x0c\x86cnumpy\ndtype\nq\x05U\x02u1K\x00K\x01\x87Rq\x06"
        b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89",
        _py2_string(cifar_rows(images).tobytes()),
        b"tb",
        _py2_string(b"filenames"),
        b"](",
        *[_py2_string(b"img_%d.png" % i) for i in range(n)],
        b"eu.",
    ]
    return b"".join(out)


def cifar_splits(seed: int = 0):
    """Five train batches and a test batch of 4 images each: ({name: (images, labels)})."""
    batches = {f"data_batch_{i}": cifar_arrays(4, seed + i) for i in range(1, 6)}
    batches["test_batch"] = cifar_arrays(4, seed + 100)
    return batches


def md5s(folder: Path) -> dict[str, str]:
    """md5 of every file in a folder, by name (what a checksum table for them would say)."""
    return {
        p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()
    }


def write_pickle_batches(folder: Path, batches) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in batches.items():
        (folder / name).write_bytes(pickle_batch(images, labels, name.encode()))
    (folder / "batches.meta").write_bytes(pickle_meta())
    return folder


def binary_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Records of 1 label byte + 3072 pixel bytes."""
    return np.concatenate([labels.astype(np.uint8)[:, None], cifar_rows(images)], axis=1).tobytes()


def write_binary_batches(folder: Path, batches) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in batches.items():
        (folder / (name + ".bin")).write_bytes(binary_batch(images, labels))
    (folder / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n")
    return folder


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(tar_bytes(members)))
    return path


def png_bytes(size=(32, 32), color=(10, 20, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(size=(32, 32), color=(10, 20, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def image_folder(root: Path, per_class: int = 1, splits=("train", "test"), image=png_bytes) -> Path:
    """cifar-10-jpeg/<split>/<class>/NNNN.png under root, `per_class` images each."""
    for split in splits:
        for c in CLASSES:
            folder = root / "cifar-10-jpeg" / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                (folder / f"{i:04d}.png").write_bytes(image())
    return root


def train_test(batches):
    """Concatenate generated batches into (train images, labels), (test images, labels)."""
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return (
        (np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])),
        batches["test_batch"],
    )

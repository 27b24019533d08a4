"""Small files in the real dataset formats, written the way the originals are."""

import gzip
import io
import pickle
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
    return (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.int64))


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """CIFAR's row layout: all of R (row-major), then all of G, then all of B."""
    n = len(images)
    return np.concatenate([images[:, c].reshape(n, 1024) for c in range(3)], axis=1)


def pickle_batch(images: np.ndarray, labels: np.ndarray, label: bytes) -> bytes:
    """A batch as CIFAR ships it: a protocol-2 pickled dict with bytes keys."""
    batch = {b"batch_label": label, b"labels": [int(v) for v in labels],
             b"data": cifar_rows(images),
             b"filenames": [b"img_%d.png" % i for i in range(len(labels))]}
    return pickle.dumps(batch, protocol=2)


CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def pickle_meta(names=CLASSES) -> bytes:
    return pickle.dumps({b"label_names": [n.encode() for n in names], b"num_cases_per_batch": 4,
                         b"num_vis": 3072}, protocol=2)


def cifar_splits(seed: int = 0):
    """Five train batches of 4 images and a test batch of 3: ({name: (images, labels)})."""
    batches = {f"data_batch_{i}": cifar_arrays(4, seed + i) for i in range(1, 6)}
    batches["test_batch"] = cifar_arrays(3, seed + 100)
    return batches


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


def write_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue()))
    return path


def train_test(batches):
    """Concatenate generated batches into (train images, labels), (test images, labels)."""
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return ((np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])),
            batches["test_batch"])

"""CIFAR-10 (Krizhevsky, 2009): 50,000 train / 10,000 test 32x32 colour images, 10 classes.

Reads the three layouts people have: the official Python pickle batches, the official binary
batches, and an image folder (``<split>/<class>/*.jpg``), each loose or as its .tar.gz.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from mlrepro.data.core import (
    SAMPLES_DIR,
    ImageDataset,
    check_labels,
    check_split,
    download_files,
    load_cached,
    one_line,
    resolve_data_dir,
    sample_checksums,
    sha256_of,
    source_key,
    store_cached,
    to_dataset,
    warn_sample,
)
from mlrepro.errors import DataError

NAME = "cifar10"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
MEAN = (0.4914, 0.4822, 0.4465)  # of the original train set; the JPEG copy differs by < 0.002
STD = (0.2470, 0.2435, 0.2616)
SHAPE = (3, 32, 32)
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"

PY_DIR, PY_ARCHIVE = "cifar-10-batches-py", "cifar-10-python.tar.gz"
BIN_DIR, BIN_ARCHIVE = "cifar-10-batches-bin", "cifar-10-binary.tar.gz"
JPEG_DIR, JPEG_ARCHIVE = "cifar-10-jpeg", "cifar-10-jpeg.tar.gz"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
RECORD_BYTES = 1 + 3 * 32 * 32  # binary batches: label byte, then R, G, B planes, row-major


def load_cifar10(split: str = "train", data_dir: str | os.PathLike | None = None, *,
                 download: bool = True, allow_sample: bool = True) -> ImageDataset:
    """Load a CIFAR-10 split as uint8 (N, 3, 32, 32) images and int64 labels."""
    check_split(NAME, split)
    root = resolve_data_dir(data_dir)
    found, missing = _find(root, split)
    why = "download=False"
    if found is None and download:
        why = download_cifar(root) or "download did not complete"
        found, _ = _find(root, split)
    if found is not None:
        return _load(split, *found, is_sample=False)

    looked = f"{NAME} {split}: no CIFAR-10 files in {root}; missing {' or '.join(missing)}; {why}"
    sample = SAMPLES_DIR / JPEG_DIR / JPEG_ARCHIVE
    if not (allow_sample and sample.is_file()):
        raise DataError(looked + "; pass --data-dir or set MLREPRO_DATA")
    got = sha256_of(sample)  # 130 kB: cheap enough to check on every load
    expected = sample_checksums()["file_sha256"][f"{JPEG_DIR}/{JPEG_ARCHIVE}"]
    if got != expected:
        raise DataError(f"{sample}: sha256 is {got}, expected {expected} "
                        f"(the bundled sample is damaged; reinstall mlrepro)")
    dataset = _load(split, "jpeg-archive", sample, is_sample=True)
    warn_sample(NAME, split, len(dataset), f"full data not found in {root} ({why})", stacklevel=3)
    return dataset


def download_cifar(root: Path) -> str | None:
    """Fetch the official Python-pickle archive into root; return why not, or None when done."""
    def check(path: Path) -> str | None:
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return None if h.hexdigest() == MD5 else f"md5 {h.hexdigest()}, expected {MD5}"
    return download_files([([URL], PY_ARCHIVE, check)], root)


def _batch_names(split: str) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


def _find(root: Path, split: str) -> tuple[tuple[str, Path] | None, list[str]]:
    """The first layout present, as (kind, path), and what each layout was missing."""
    names = _batch_names(split)
    missing = []
    for folder, archive, suffix, kind in ((PY_DIR, PY_ARCHIVE, "", "pickle"),
                                          (BIN_DIR, BIN_ARCHIVE, ".bin", "binary")):
        absent = [n + suffix for n in names if not (root / folder / (n + suffix)).is_file()]
        if not absent:
            return (kind + "-dir", root / folder), []
        if (root / archive).is_file():
            return (kind + "-archive", root / archive), []
        missing.append(f"{root / folder}/{{{','.join(absent)}}} (or {root / archive})")
    if (root / JPEG_DIR / split).is_dir():
        return ("jpeg-dir", root / JPEG_DIR / split), []
    for archive in (root / JPEG_DIR / JPEG_ARCHIVE, root / JPEG_ARCHIVE):
        if archive.is_file():
            return ("jpeg-archive", archive), []
    missing.append(f"{root / JPEG_DIR / split}/<class>/*.jpg (or {root / JPEG_DIR / JPEG_ARCHIVE})")
    return None, missing


def _load(split: str, kind: str, path: Path, is_sample: bool) -> ImageDataset:
    fields = {"classes": CLASSES, "name": NAME, "split": split, "source": str(path),
              "is_sample": is_sample, "mean": MEAN, "std": STD}
    if kind == "pickle-dir":
        sources = [path / n for n in _batch_names(split)]
    elif kind == "binary-dir":
        sources = [path / (n + ".bin") for n in _batch_names(split)]
    elif kind == "jpeg-dir":
        sources = _image_files(path)
    else:
        sources = [path]
    key = source_key(NAME, split, sources)
    cached = load_cached(NAME, split, key, SHAPE)
    if cached is not None:
        return to_dataset(*cached, **fields)

    if kind == "jpeg-archive":
        # One pass over the archive decodes both splits; caching both saves a second pass.
        decoded = _read_image_archive(path)
        if split not in decoded:
            raise DataError(f"{path}: no images under {split}/<class>/")
        for other, (images, labels) in decoded.items():
            if other != split:
                store_cached(NAME, other, source_key(NAME, other, sources), images, labels,
                             {"source": str(path), "format": kind})
        images, labels = decoded[split]
    elif kind == "jpeg-dir":
        images, labels = _read_image_dir(path, sources)
    elif kind.startswith("pickle"):
        images, labels = _read_pickle_batches(path, split, archive=kind.endswith("archive"))
    else:
        images, labels = _read_binary_batches(path, split, archive=kind.endswith("archive"))
    store_cached(NAME, split, key, images, labels, {"source": str(path), "format": kind})
    return to_dataset(images, labels, **fields)


def _read_members(archive: Path, wanted: set[str], optional: frozenset = frozenset()
                  ) -> dict[str, bytes]:
    """Bytes of the members whose base name is wanted (or optional), in one sequential pass."""
    found = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # in file order: seeking back in a .gz restarts decompression
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted | optional and base not in found:
                    found[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{archive}: not a readable tar archive ({one_line(e)})") from None
    absent = sorted(wanted - set(found))
    if absent:
        raise DataError(f"{archive}: archive lacks {', '.join(absent)}")
    return found


# --- format 1: Python pickle batches ---

try:  # numpy >= 2 moved it; pickles written by numpy 1 still name numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core.multiarray import _reconstruct


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles written by Python 3 spell every bytes object as
    # _codecs.encode(text, "latin1"); other codecs (zlib, bz2, ...) are not needed, so refuse them.
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


_BUILTINS = {t.__name__: t for t in (dict, list, tuple, set, frozenset, bytes, bytearray, str,
                                     int, float, bool)}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{("builtins", n): t for n, t in _BUILTINS.items()},
    **{("__builtin__", n): t for n, t in _BUILTINS.items()},  # Python 2's name for builtins
}


class BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches and refuses every global they don't need (pickle runs code)."""

    def __init__(self, file, source: str):
        super().__init__(file, encoding="bytes")  # CIFAR's batches are Python 2 pickles
        self.source = source

    def find_class(self, module: str, name: str):
        """Only numpy array reconstruction and builtin containers; anything else is refused."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"refusing to unpickle {module}.{name} from {self.source}") from None


def unpickle_batch(data: bytes, source: str) -> dict:
    """Load one pickled batch with the restricted unpickler."""
    try:
        batch = BatchUnpickler(io.BytesIO(data), source).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, IndexError, KeyError, TypeError,
            ValueError, OverflowError, MemoryError) as e:  # the ways a damaged pickle fails
        raise DataError(f"{source}: not a readable pickle ({type(e).__name__}: "
                        f"{one_line(e)})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{source}: expected a dict, got {type(batch).__name__}")
    return batch


def _get(batch: dict, key: str):
    # Python 2 wrote str keys, which encoding="bytes" turns into bytes; Python 3 writes str.
    return batch.get(key.encode(), batch.get(key))


def _read_pickle_batches(path: Path, split: str, archive: bool) -> tuple[np.ndarray, np.ndarray]:
    names = _batch_names(split)
    if archive:
        blobs = _read_members(path, set(names), optional=frozenset({"batches.meta"}))
        sources = {n: f"{path}:{n}" for n in blobs}
    else:
        files = [path / n for n in (*names, "batches.meta") if (path / n).is_file()]
        blobs = {f.name: f.read_bytes() for f in files}
        sources = {f.name: str(f) for f in files}
    if "batches.meta" in blobs:
        meta = unpickle_batch(blobs["batches.meta"], sources["batches.meta"])
        label_names = tuple(_text(n) for n in _get(meta, "label_names") or ())
        if label_names != CLASSES:
            raise DataError(f"{sources['batches.meta']}: label_names are {list(label_names)}, "
                            f"expected {list(CLASSES)}")
    images, labels = [], []
    for n in names:
        batch = unpickle_batch(blobs[n], sources[n])
        data, batch_labels = _get(batch, "data"), _get(batch, "labels")
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
                and data.shape[1] == 3 * 32 * 32):
            got = (f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray)
                   else type(data).__name__)
            raise DataError(f"{sources[n]}: expected 'data' as uint8 (N, 3072), got {got}")
        try:
            batch_labels = np.asarray(batch_labels, dtype=np.int64)
        except (TypeError, ValueError):
            raise DataError(f"{sources[n]}: 'labels' is not a list of integers") from None
        images.append(data)
        labels.append(check_labels(batch_labels, data.shape[0], len(CLASSES), sources[n]))
    # Each row is the R, G, B planes one after another, so rows reshape straight to (3, 32, 32).
    return np.concatenate(images).reshape(-1, *SHAPE), np.concatenate(labels)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- format 2: binary batches ---


def _read_binary_batches(path: Path, split: str, archive: bool) -> tuple[np.ndarray, np.ndarray]:
    names = [n + ".bin" for n in _batch_names(split)]
    if archive:
        blobs = _read_members(path, set(names))
        parts = [(f"{path}:{n}", blobs[n]) for n in names]
    else:
        parts = [(str(path / n), (path / n).read_bytes()) for n in names]
    for source, blob in parts:
        if not blob or len(blob) % RECORD_BYTES:
            raise DataError(f"{source}: {len(blob)} bytes is not a whole number of "
                            f"{RECORD_BYTES}-byte records (1 label + 3072 pixels)")
    records = np.frombuffer(b"".join(blob for _, blob in parts), np.uint8)
    records = records.reshape(-1, RECORD_BYTES)  # (N, 3073)
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, *SHAPE)
    labels = check_labels(records[:, 0], len(records), len(CLASSES), f"{path} ({split})")
    return images, labels


# --- format 3: image folder <split>/<class>/*.jpg, loose or in a .tar.gz ---


def _image_files(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.glob("*/*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _check_classes(found: set[str], where: str) -> None:
    if tuple(sorted(found)) != CLASSES:
        raise DataError(f"{where}: class folders are {sorted(found)}, expected the CIFAR-10 "
                        f"classes {list(CLASSES)}")


def _decode(blobs: list[tuple[str, bytes]]) -> np.ndarray:
    """Decode 32x32 images into one (N, 3, 32, 32) array; PIL per image, numpy once at the end."""
    out = np.empty((len(blobs), 32, 32, 3), np.uint8)
    for i, (where, blob) in enumerate(blobs):
        try:
            im = Image.open(io.BytesIO(blob))
            im.load()
        except (OSError, SyntaxError, ValueError) as e:  # how PIL reports damaged files
            raise DataError(f"{where}: not a readable image ({one_line(e)})") from None
        if im.size != (32, 32):
            raise DataError(f"{where}: image is {im.size[0]}x{im.size[1]}, expected 32x32")
        out[i] = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _read_image_dir(split_dir: Path, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    _check_classes({p.parent.name for p in files}, str(split_dir))
    index = {c: i for i, c in enumerate(CLASSES)}
    files = sorted(files, key=lambda p: (index[p.parent.name], p.name))
    labels = np.array([index[p.parent.name] for p in files], np.int64)
    return _decode([(str(p), p.read_bytes()) for p in files]), labels


def _read_image_archive(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every split in a <split>/<class>/<image> archive, decoded; nothing is unpacked to disk."""
    try:
        # Decompress once into memory: tarfile over a gzip stream is several times slower.
        with open(archive, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        entries: dict[str, list[tuple[str, str, tarfile.TarInfo]]] = {}
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                parts = member.name.split("/")
                if (member.isfile() and len(parts) >= 3 and parts[-3] in ("train", "test")
                        and Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES):
                    entries.setdefault(parts[-3], []).append((parts[-2], parts[-1], member))
    except EOFError:
        raise DataError(f"{archive}: truncated gzip stream") from None
    except (tarfile.TarError, OSError, zlib.error) as e:
        raise DataError(f"{archive}: not a readable tar archive ({one_line(e)})") from None

    index = {c: i for i, c in enumerate(CLASSES)}
    decoded = {}
    for split, items in entries.items():
        _check_classes({c for c, _, _ in items}, f"{archive}:{split}/")
        items.sort(key=lambda e: (index[e[0]], e[1]))
        blobs = []
        for _, _, m in items:
            if m.offset_data + m.size > len(raw):
                raise DataError(f"{archive}:{m.name}: truncated member")
            blobs.append((f"{archive}:{m.name}", raw[m.offset_data:m.offset_data + m.size]))
        labels = np.array([index[c] for c, _, _ in items], np.int64)
        decoded[split] = (_decode(blobs), labels)
    return decoded

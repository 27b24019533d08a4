"""The IDX format of MNIST-style datasets (LeCun et al.), raw or gzip-compressed, and its loader."""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

# Third byte of the magic number -> element type; multi-byte types are big-endian.
_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dims (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dim (N,)
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | os.PathLike, *, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a native-endian array; magic= pins the expected header."""
    path = Path(path)
    return parse_idx(read_maybe_gzip(path), path, magic=magic)


def read_maybe_gzip(path: Path) -> bytes:
    """A file's content, decompressed when it is gzip (told by its magic bytes, not its name)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({one_line(e.strerror or e)})") from None
    if data[:2] != b"\x1f\x8b":
        if path.suffix == ".gz":
            raise DataError(f"{path}: not a gzip file (starts with {data[:2].hex() or 'nothing'}, "
                            f"expected 1f8b)")
        return data
    try:
        return gzip.decompress(data)
    except EOFError:
        raise DataError(f"{path}: truncated gzip stream ({len(data)} bytes on disk)") from None
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt gzip stream ({one_line(e)})") from None


def parse_idx(data: bytes, path: Path, *, magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes, checking the magic number, dims and that the length is exact."""
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise DataError(f"{path}: bad magic 0x{found:08x}, expected 0x{magic:08x}")
    dtype, ndim = _DTYPES.get(data[2]), data[3]
    if data[:2] != b"\0\0" or dtype is None or ndim == 0:
        raise DataError(f"{path}: bad magic 0x{found:08x}, expected 0x0000TTNN with type TT in "
                        f"08/09/0b/0c/0d/0e and NN >= 1 dims")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header, {len(data)} bytes for {ndim} dims")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        shape = "x".join(map(str, dims))
        raise DataError(f"{path}: expected {expected} bytes for {shape}, got {len(data)}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    # frombuffer over bytes is read-only; callers (and torch) want a normal array.
    return array.astype(dtype.newbyteorder("="), copy=True)


# --- loader shared by MNIST and Fashion-MNIST ---


@dataclass(frozen=True)
class IdxDataset:
    """Where an IDX image dataset lives, what it should hash to, and its constants."""

    name: str
    title: str
    folders: tuple[str, ...]  # searched in order, relative to the data dir ("" = the dir itself)
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    sha256: dict[str, str]  # of the decompressed content, by file name without .gz
    mirrors: tuple[str, ...]  # base URLs serving <file name>.gz


def load_idx_dataset(spec: IdxDataset, split: str, data_dir, download_ok: bool,
                     allow_sample: bool) -> ImageDataset:
    """Find, verify, decode (or take from the cache) one split of an IDX dataset."""
    check_split(spec.name, split)
    root = resolve_data_dir(data_dir)
    folders = [root.joinpath(*f.split("/")) for f in spec.folders]
    names = FILES[split]
    found = _find(folders, names)
    why = "download=False"
    if found is None and download_ok:
        jobs = [([m + n + ".gz" for m in spec.mirrors], n + ".gz", _checker(spec.sha256[n]))
                for n in names]
        why = download_files(jobs, folders[0]) or "download did not complete"
        found = _find(folders[:1], names)
    if found is not None:
        return _load(spec, split, found, spec.sha256, is_sample=False)

    # An images file in one folder and its labels in another is still a miss: name both then.
    missing = [n for n in names if all(_pick(d, n) is None for d in folders)] or list(names)
    looked_in = ", ".join(map(str, folders))
    sample = _find([SAMPLES_DIR / spec.name], names) if allow_sample else None
    if sample is None:
        raise DataError(f"{spec.name} {split}: missing {', '.join(n + '[.gz]' for n in missing)}; "
                        f"looked in {looked_in}; {why}; pass --data-dir or set MLREPRO_DATA")
    sums = sample_checksums()["idx_decompressed_sha256"][spec.name]
    dataset = _load(spec, split, sample, sums, is_sample=True)
    warn_sample(spec.name, split, len(dataset),
                f"full data not found (looked in {looked_in}; {why})",
                stacklevel=4)
    return dataset


def _pick(folder: Path, name: str) -> Path | None:
    # torchvision's raw/ folder holds both; the uncompressed one skips a decompress.
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _find(folders: list[Path], names: tuple[str, str]) -> tuple[Path, Path] | None:
    for folder in folders:
        images, labels = (_pick(folder, n) for n in names)
        if images and labels:
            return images, labels
    return None


def _checker(expected: str):
    def check(path: Path) -> str | None:
        got = sha256_of(read_maybe_gzip(path))
        return None if got == expected else f"sha256 {got}, expected {expected}"
    return check


def _load(spec: IdxDataset, split: str, paths: tuple[Path, Path], sums: dict[str, str],
          is_sample: bool) -> ImageDataset:
    images_path, labels_path = paths
    fields = {"classes": spec.classes, "name": spec.name, "split": split,
              "source": str(images_path.parent), "is_sample": is_sample, "mean": spec.mean,
              "std": spec.std}
    key = source_key(spec.name, split, paths)
    cached = load_cached(spec.name, split, key, (1, 28, 28))
    if cached is not None:  # only verified files ever reach the cache
        return to_dataset(*cached, **fields)

    raw_images, raw_labels = read_maybe_gzip(images_path), read_maybe_gzip(labels_path)
    images = parse_idx(raw_images, images_path, magic=IMAGES_MAGIC)
    labels = parse_idx(raw_labels, labels_path, magic=LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: expected 28x28 images, got "
                        f"{images.shape[1]}x{images.shape[2]}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape[0]} labels but {images_path.name} has "
                        f"{images.shape[0]} images")
    labels = check_labels(labels, images.shape[0], len(spec.classes), str(labels_path))
    # Checked after the structure so a damaged file gets the more specific message above.
    digests = {}
    for path, raw in ((images_path, raw_images), (labels_path, raw_labels)):
        base = path.name.removesuffix(".gz")
        got, expected = sha256_of(raw), sums.get(base)
        if got != expected:
            raise DataError(f"{path}: sha256 of the decompressed content is {got}, expected "
                            f"{expected} (corrupt, or not the official {spec.title} file)")
        digests[path.name] = got
    images = images.reshape(-1, 1, 28, 28)
    store_cached(spec.name, split, key, images, labels,
                 {"source": fields["source"], "files": [str(p) for p in paths],
                  "sha256_verified": digests})
    return to_dataset(images, labels, **fields)

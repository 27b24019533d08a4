"""What every dataset loader shares: the dataset record, where data and cache live, downloads."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.request import urlopen

import numpy as np
import torch

from mlrepro.data.files import MiB, one_line
from mlrepro.data.provenance import FileRecord, Provenance
from mlrepro.errors import DataError
from mlrepro.io import atomic_write

SPLITS = ("train", "test")
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
DOWNLOAD_TIMEOUT_S = 5.0
MAX_DOWNLOAD_BYTES = 256 * MiB  # the largest file fetched, CIFAR-10's archive, is 163 MB
# Bump when the decoded arrays (or the provenance kept beside them) for the same source files
# would change, so old caches are ignored.
CACHE_FORMAT = 2


class SampleDataWarning(UserWarning):
    """The full dataset was not found, so the small sample shipped with the package is used."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A whole image-classification split as uint8 tensors, with where it came from."""

    images: torch.Tensor  # uint8 (N, C, H, W), contiguous
    labels: torch.Tensor  # int64 (N,)
    classes: tuple[str, ...]
    name: str
    split: str
    source: str
    is_sample: bool
    mean: tuple[float, ...]  # per channel, full train set, [0, 1] scale
    std: tuple[float, ...]
    provenance: Provenance | None = None  # what was read; None for a dataset built by hand

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"{self.source}: images must be uint8 (N, C, H, W), got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise DataError(
                f"{self.source}: labels must be int64 ({self.images.shape[0]},), got "
                f"{self.labels.dtype} {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return self.labels.shape[0]

    def provenance_dict(self) -> dict:
        """The provenance as plain JSON (see `mlrepro.data.provenance`); a dataset built by hand
        gets the fields it has."""
        if self.provenance is not None:
            return self.provenance.to_dict()
        return {
            "dataset": self.name,
            "split": self.split,
            "source": self.source,
            "sample": self.is_sample,
            "n": len(self),
        }

    def __repr__(self) -> str:
        # The default repr would print the tensors.
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"shape={tuple(self.images.shape[1:])}, classes={len(self.classes)}, "
            f"is_sample={self.is_sample}, source={self.source!r})"
        )


def locate_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """(the data folder, where it was named): the argument ("argument"), else $MLREPRO_DATA
    ("MLREPRO_DATA"), else the user data folder ("default"). Only in the last case may a loader
    fall back on the bundled samples."""
    if data_dir is not None:
        return Path(data_dir).expanduser().absolute(), "argument"
    env = os.environ.get("MLREPRO_DATA") or None
    if env is not None:
        return Path(env).expanduser().absolute(), "MLREPRO_DATA"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return (Path(base) / "mlrepro").expanduser().absolute(), "default"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $MLREPRO_DATA, else the user data folder."""
    return locate_data_dir(data_dir)[0]


def _cache_root() -> Path:
    named = os.environ.get("MLREPRO_CACHE") or None
    if named is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return (Path(base) / "mlrepro").expanduser().absolute()
    return Path(named).expanduser().absolute()


def cache_dir() -> Path:
    """The cache folder ($MLREPRO_CACHE, else $XDG_CACHE_HOME/mlrepro, else ~/.cache/mlrepro),
    created if missing."""
    path = _cache_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_offline() -> bool:
    """True when $MLREPRO_OFFLINE asks loaders never to touch the network."""
    return os.environ.get("MLREPRO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def check_split(name: str, split: str) -> None:
    """Raise DataError unless split is 'train' or 'test'."""
    if split not in SPLITS:
        raise DataError(f"{name}: split must be 'train' or 'test', got {split!r}")


def sha256_of(data: bytes | Path) -> str:
    """Hex sha256 of bytes, or of a file's bytes read in chunks."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    with open(data, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sample_checksums() -> dict:
    """The sample files' own sha256 sums (they are subsets, so the full files' sums don't apply)."""
    path = SAMPLES_DIR / "checksums.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the sample checksums ({one_line(e)})") from None


def warn_sample(name: str, split: str, n: int, why: str, stacklevel: int) -> None:
    """Say once, on one line, that the bundled sample stands in for the full data."""
    # stacklevel points at the caller of the public load_* function.
    warnings.warn(
        f"{name}: {why}; using the bundled {n}-image {split} sample instead - pass --data-dir "
        f"or set MLREPRO_DATA to a folder with the full {name} files",
        SampleDataWarning,
        stacklevel=stacklevel,
    )


def not_found_hint(root: Path, origin: str) -> str:
    """The end of a "files not found" error: how to name a folder, or why the sample won't do."""
    if origin == "default":
        return "pass --data-dir or set MLREPRO_DATA"
    return (
        f"{root} was named as the data folder, so the bundled sample is not used (it serves "
        f"only when no folder is named)"
    )


def to_dataset(images: np.ndarray, labels: np.ndarray, **fields) -> ImageDataset:
    """Wrap decoded arrays as tensors without copying."""
    if not images.flags.writeable or not images.flags.c_contiguous:
        images = np.array(images, order="C")  # torch wants writable, contiguous memory
    if not labels.flags.writeable:
        labels = labels.copy()
    return ImageDataset(images=torch.from_numpy(images), labels=torch.from_numpy(labels), **fields)


def check_labels(labels: np.ndarray, n_images: int, n_classes: int, where: str) -> np.ndarray:
    """Labels as int64, the same count as images and all in 0..n_classes-1."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (n_images,):
        raise DataError(
            f"{where}: {labels.shape[0] if labels.ndim else 0} labels for {n_images} images"
        )
    if n_images and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise DataError(f"{where}: label {bad} out of range 0..{n_classes - 1}")
    return labels


# --- cache: decoded arrays as .npy, keyed by the source files' identity ---


def source_key(name: str, split: str, paths: Iterable[Path]) -> str:
    """A key that changes whenever any source file is replaced, resized or touched."""
    h = hashlib.sha256(f"{CACHE_FORMAT}\0{name}\0{split}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"\0{os.path.realpath(p)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _cache_paths(name: str, split: str, key: str) -> tuple[Path, Path, Path]:
    stem = _cache_root() / "datasets" / f"{name}-{split}-{key}"
    return (
        stem.with_name(stem.name + ".images.npy"),
        stem.with_name(stem.name + ".labels.npy"),
        stem.with_name(stem.name + ".json"),
    )


def load_cached(
    name: str, split: str, key: str, image_shape: tuple[int, int, int], paths: list[str]
) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """The cached (images, labels, meta) for this key, or None when absent or unusable.

    `meta["files"]` is the provenance the first load recorded, as FileRecords, with each path
    replaced by the one in `paths` (the files as found this time, in the same order).
    """
    images_path, labels_path, meta_path = _cache_paths(name, split, key)
    try:
        meta = json.loads(meta_path.read_text())  # written last, so it marks a complete entry
        # Memory-mapped first, so a damaged header cannot make np.load allocate what it claims.
        images = np.load(images_path, mmap_mode="r", allow_pickle=False)
        labels = np.load(labels_path, mmap_mode="r", allow_pickle=False)
        n = meta["n"]
        if (
            images.dtype != np.uint8
            or images.shape != (n, *image_shape)
            or labels.dtype != np.int64
            or labels.shape != (n,)
        ):
            return None  # stale or damaged: rebuilt and overwritten by the caller
        files = tuple(FileRecord.from_dict(d) for d in meta["files"])
        if (
            len(files) != len(paths)
            or not isinstance(meta["format"], str)
            or not isinstance(meta["lossy"], bool)
        ):
            return None
        meta["files"] = tuple(dataclasses.replace(f, path=p) for f, p in zip(files, paths))
        return np.array(images), np.array(labels), meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_cached(
    name: str, split: str, key: str, images: np.ndarray, labels: np.ndarray, info: dict
) -> None:
    """Cache decoded arrays and the provenance of what they were decoded from (`info`: source,
    format, lossy, files); a cache that can't be written only costs speed, so just warn."""
    info = {**info, "files": [f.to_dict() for f in info["files"]]}
    try:
        images_path, labels_path, meta_path = _cache_paths(name, split, key)
        images_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(images_path, lambda f: np.save(f, images, allow_pickle=False))
        atomic_write(labels_path, lambda f: np.save(f, labels, allow_pickle=False))
        meta = {"name": name, "split": split, "n": int(labels.shape[0]), **info}
        atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=1).encode()))
    except OSError as e:
        warnings.warn(
            f"{name}: could not write the cache ({one_line(e)}); the next load will "
            f"decode the files again",
            stacklevel=3,
        )
        return
    _prune_cache(meta_path, info.get("source"))


def _prune_cache(keep: Path, source: str | None) -> None:
    # Entries for the same source files under an older key are dead weight (the files changed).
    prefix = keep.name.rsplit("-", 1)[0] + "-"
    for meta_path in keep.parent.glob(prefix + "*.json"):
        if meta_path == keep:
            continue
        with contextlib.suppress(OSError, ValueError):
            if json.loads(meta_path.read_text()).get("source") == source:
                stem = meta_path.name[: -len(".json")]
                meta_path.unlink()
                for suffix in (".images.npy", ".labels.npy"):
                    (meta_path.parent / (stem + suffix)).unlink(missing_ok=True)


# --- downloads ---


def download_files(
    jobs: Sequence[tuple[Sequence[str], str, Callable[[Path], str | None]]], dest_dir: Path
) -> str | None:
    """Fetch each (mirror urls, file name, check) into dest_dir; return why not, or None if done.

    check(path) returns what is wrong with a downloaded file, or None; only files that pass are
    moved into place.
    """
    if is_offline():
        return "downloads disabled by MLREPRO_OFFLINE=1"
    created = [p for p in (dest_dir, *dest_dir.parents) if not p.exists()]
    why = None
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=dest_dir).close()
    except OSError as e:
        why = f"cannot download into {dest_dir} ({one_line(e.strerror or e)})"
    for urls, file_name, check in jobs if why is None else ():
        if (dest_dir / file_name).exists():
            continue
        failures = []
        for url in urls:
            try:
                _fetch(url, dest_dir / file_name, check)
                break
            except (OSError, HTTPException, ValueError) as e:  # each means "try the next mirror"
                failures.append(f"{url}: {one_line(e)}")
        else:
            # Stop at the first file no mirror could give: the rest would just time out too.
            why = "download failed (" + "; ".join(failures) + ")"
            break
    if why is not None:
        for folder in created:  # deepest first; don't leave empty folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()
    return why


def _fetch(url: str, dest: Path, check: Callable[[Path], str | None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f, urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            copied = 0
            while chunk := response.read(MiB):
                copied += len(chunk)
                if copied > MAX_DOWNLOAD_BYTES:
                    raise ValueError(f"more than {MAX_DOWNLOAD_BYTES:,} bytes")
                f.write(chunk)
        problem = check(Path(tmp))
        if problem:
            raise DataError(problem)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; data files are meant to be shared
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

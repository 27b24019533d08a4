"""The IDX format of MNIST-style datasets (LeCun et al.), raw or gzip-compressed, and its loader.

Reading is bounded: the header comes first (from the decompressing stream for a .gz), its dims
are checked against what the format and the dataset allow, and then exactly the payload they
imply is read, plus one byte to tell a file that is too long. A small .gz that would inflate to
gigabytes stops there, having allocated no more than the payload its header may claim.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

from mlrepro.data.core import (
    SAMPLES_DIR,
    ImageDataset,
    check_labels,
    check_split,
    download_files,
    load_cached,
    locate_data_dir,
    not_found_hint,
    sample_checksums,
    source_key,
    store_cached,
    to_dataset,
    warn_sample,
)
from mlrepro.data.files import (
    DigestReader,
    GiB,
    decompression_errors,
    gzip_bound,
    is_gzip,
    open_data_file,
    peek,
    problem_with,
)
from mlrepro.data.provenance import FileRecord, Provenance
from mlrepro.errors import DataError

# Third byte of the magic number -> element type; multi-byte types are big-endian.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dims (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dim (N,)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MAX_IDX_BYTES = GiB  # read_idx's default bound on a file's (decompressed) content
# The most images one file of an MNIST-format dataset here may hold: all of MNIST, or of
# Fashion-MNIST, is 70,000 images, so no train or test file can hold more. It caps what a lying
# header can make us allocate at 70,000 x 28 x 28 = 55 MB.
MAX_IMAGES = 70_000
IMAGES_MAX_BYTES = 16 + MAX_IMAGES * 28 * 28
LABELS_MAX_BYTES = 8 + MAX_IMAGES
_CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxRead:
    """What reading one IDX file saw: the file as stored, and its (decompressed) content."""

    size: int  # bytes on disk
    sha256: str  # of the bytes on disk
    content_sha256: str  # of the IDX content (after gunzip; the same as sha256 for a raw file)
    gzip: bool


def read_idx(
    path: str | os.PathLike, *, magic: int | None = None, max_bytes: int = MAX_IDX_BYTES
) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a native-endian array; magic= pins the expected header,
    max_bytes bounds the (decompressed) size its header may claim."""
    return read_idx_file(Path(path), magic=magic, max_bytes=max_bytes)[0]


def read_idx_file(
    path: Path,
    *,
    magic: int | None = None,
    max_bytes: int = MAX_IDX_BYTES,
    check_dims: Callable[[tuple[int, ...]], None] | None = None,
    holds: str = "an IDX file",
) -> tuple[np.ndarray, IdxRead]:
    """Read an IDX file with bounded memory; `check_dims(dims)` may refuse a header (raising
    DataError) before its payload is read. `holds` names the file in a size error ("... more
    than the N bytes <holds> can take")."""
    f, size = open_data_file(path, gzip_bound(max_bytes), f"{holds} can take")
    with f:
        compressed = is_gzip(f)
        if not compressed and path.suffix == ".gz":
            raise DataError(
                f"{path}: not a gzip file (starts with "
                f"{peek(f, 2).hex() or 'nothing'}, expected 1f8b)"
            )
        raw = DigestReader(f, path, gzip_bound(max_bytes))
        stream = gzip.GzipFile(fileobj=cast(BinaryIO, raw), mode="rb") if compressed else raw
        content = hashlib.sha256()
        with decompression_errors(path):
            array = _read_content(
                stream, path, content, magic, max_bytes, check_dims, None if compressed else size
            )
            raw.drain()
    return array, IdxRead(
        size=raw.count, sha256=raw.sha256, content_sha256=content.hexdigest(), gzip=compressed
    )


def _read_up_to(stream, n: int) -> bytes:
    chunks, left = [], n
    while left > 0 and (chunk := stream.read(min(left, _CHUNK))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_content(
    stream, path: Path, content, magic: int | None, max_bytes: int, check_dims, raw_size: int | None
) -> np.ndarray:
    head = _read_up_to(stream, 4)
    if len(head) < 4:
        raise DataError(f"{path}: {len(head)} bytes is too short for an IDX header")
    found = int.from_bytes(head, "big")
    if magic is not None and found != magic:
        raise DataError(f"{path}: bad magic 0x{found:08x}, expected 0x{magic:08x}")
    dtype, ndim = _DTYPES.get(head[2]), head[3]
    if head[:2] != b"\0\0" or dtype is None or ndim == 0:
        raise DataError(
            f"{path}: bad magic 0x{found:08x}, expected 0x0000TTNN with type TT in "
            f"08/09/0b/0c/0d/0e and NN >= 1 dims"
        )
    dims_raw = _read_up_to(stream, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"{path}: truncated header, {4 + len(dims_raw)} bytes for {ndim} dims")
    dims = tuple(int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
    shape = "x".join(map(str, dims))
    if check_dims is not None:
        check_dims(dims)
    # Python integers: dims up to 2**32 - 1 each cannot overflow here as they would in int64.
    count = 1
    for d in dims:
        count *= d
    header, payload = 4 + 4 * ndim, count * dtype.itemsize
    expected = header + payload
    if expected > max_bytes:
        raise DataError(
            f"{path}: the header claims {shape} items of {dtype.itemsize} byte(s), "
            f"{expected:,} bytes, more than the {max_bytes:,} allowed"
        )
    if raw_size is not None and raw_size != expected:
        raise DataError(f"{path}: expected {expected} bytes for {shape}, got {raw_size}")
    buf = np.empty(payload, np.uint8)
    view, got = buf.data, 0
    while got < payload and (chunk := stream.read(min(payload - got, _CHUNK))):
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    if got < payload:
        raise DataError(f"{path}: expected {expected} bytes for {shape}, got {header + got}")
    if stream.read(1):  # for a .gz this read also reaches the end, where gzip checks its CRC
        raise DataError(f"{path}: expected {expected} bytes for {shape}, got more")
    content.update(head)
    content.update(dims_raw)
    content.update(view)
    array = buf.view(dtype).reshape(dims)
    # Multi-byte types come big-endian; callers (and torch) want native order.
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


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


def load_idx_dataset(
    spec: IdxDataset, split: str, data_dir, download_ok: bool, allow_sample: bool
) -> ImageDataset:
    """Find, verify, decode (or take from the cache) one split of an IDX dataset.

    The bundled sample stands in only when no data folder was named (no `data_dir`, no
    $MLREPRO_DATA) and the user data folder has no files of this dataset: a named folder that
    lacks the files is an error, not a reason to train on 2,000 images.
    """
    check_split(spec.name, split)
    root, origin = locate_data_dir(data_dir)
    folders = [root.joinpath(*f.split("/")) for f in spec.folders]
    names = FILES[split]
    found, problem = _find(folders, names)
    why = "download=False"
    if found is None and problem is None and download_ok:
        jobs = [
            (
                [m + n + ".gz" for m in spec.mirrors],
                n + ".gz",
                _checker(spec.sha256[n], IMAGES_MAX_BYTES if "images" in n else LABELS_MAX_BYTES),
            )
            for n in names
        ]
        why = download_files(jobs, folders[0]) or "download did not complete"
        found, problem = _find(folders[:1], names)
    if found is not None:
        return _load(spec, split, found, spec.sha256, str(root), origin, is_sample=False)
    if problem is not None:
        raise DataError(f"{spec.name} {split}: {problem}")

    # An images file in one folder and its labels in another is still a miss: name both then.
    missing = [n for n in names if all(_pick(d, n) is None for d in folders)] or list(names)
    looked_in = ", ".join(map(str, folders))
    other = "test" if split == "train" else "train"
    has_other = _find(folders, FILES[other])[0]
    message = (
        f"{spec.name} {split}: missing {', '.join(n + '[.gz]' for n in missing)}; looked "
        f"in {looked_in}; {why}"
    )
    if has_other is not None:
        # Full train data with the sample's test set would be a silently wrong result.
        message += f"; {has_other[0].parent} has the {other} files but not the {split} files"
    if origin != "default" or has_other is not None or not allow_sample:
        raise DataError(f"{message}; {not_found_hint(root, origin)}")
    sample, _ = _find([SAMPLES_DIR / spec.name], names)
    if sample is None:
        raise DataError(f"{message}; {not_found_hint(root, origin)}")
    sums = sample_checksums()["idx_decompressed_sha256"][spec.name]
    dataset = _load(spec, split, sample, sums, str(SAMPLES_DIR), "bundled-sample", is_sample=True)
    warn_sample(
        spec.name,
        split,
        len(dataset),
        f"full data not found (looked in {looked_in}; {why})",
        stacklevel=4,
    )
    return dataset


def _pick(folder: Path, name: str) -> Path | None:
    # torchvision's raw/ folder holds both; the uncompressed one skips a decompress.
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _find(
    folders: list[Path], names: tuple[str, str]
) -> tuple[tuple[Path, Path] | None, str | None]:
    """(images, labels) from the first folder holding both, or None and what stood where a
    file was expected (a folder, a broken link) when that is why nothing was found."""
    for folder in folders:
        images, labels = (_pick(folder, n) for n in names)
        if images and labels:
            return (images, labels), None
    for folder in folders:
        for name in names:
            if _pick(folder, name) is None:
                for candidate in (folder / name, folder / (name + ".gz")):
                    if os.path.lexists(candidate):
                        return None, problem_with(candidate)
    return None, None


def _checker(expected: str, max_bytes: int):
    def check(path: Path) -> str | None:
        got = read_idx_file(path, max_bytes=max_bytes)[1].content_sha256
        return None if got == expected else f"sha256 {got}, expected {expected}"

    return check


def _load(
    spec: IdxDataset,
    split: str,
    paths: tuple[Path, Path],
    sums: dict[str, str],
    data_dir: str,
    origin: str,
    is_sample: bool,
) -> ImageDataset:
    images_path, labels_path = paths
    fields = {
        "classes": spec.classes,
        "name": spec.name,
        "split": split,
        "source": str(images_path.parent),
        "is_sample": is_sample,
        "mean": spec.mean,
        "std": spec.std,
    }

    def provenance(fmt: str, n: int, files) -> Provenance:
        return Provenance(
            dataset=spec.name,
            split=split,
            format=fmt,
            lossy=False,
            data_dir=data_dir,
            data_dir_from=origin,
            sample=is_sample,
            n=n,
            files=tuple(files),
        )

    key = source_key(spec.name, split, paths)
    cached = load_cached(spec.name, split, key, (1, 28, 28), [str(p) for p in paths])
    if cached is not None:  # only verified files ever reach the cache
        images, labels, meta = cached
        return to_dataset(
            images,
            labels,
            **fields,
            provenance=provenance(meta["format"], len(labels), meta["files"]),
        )

    def check_images(dims):
        if dims[1:] != (28, 28):
            raise DataError(f"{images_path}: expected 28x28 images, got {dims[1]}x{dims[2]}")
        if not 1 <= dims[0] <= MAX_IMAGES:
            raise DataError(
                f"{images_path}: the header claims {dims[0]:,} images; a file of "
                f"{spec.title} holds 1 to {MAX_IMAGES:,}"
            )

    images, images_read = read_idx_file(
        images_path,
        magic=IMAGES_MAGIC,
        max_bytes=IMAGES_MAX_BYTES,
        check_dims=check_images,
        holds=f"an IDX file of at most {MAX_IMAGES:,} 28x28 images",
    )

    def check_labels_count(dims):
        if dims[0] != images.shape[0]:
            raise DataError(
                f"{labels_path}: {dims[0]} labels but {images_path.name} has "
                f"{images.shape[0]} images"
            )

    labels, labels_read = read_idx_file(
        labels_path,
        magic=LABELS_MAGIC,
        max_bytes=LABELS_MAX_BYTES,
        check_dims=check_labels_count,
        holds=f"an IDX file of at most {MAX_IMAGES:,} labels",
    )
    labels = check_labels(labels, images.shape[0], len(spec.classes), str(labels_path))
    # Checked after the structure so a damaged file gets the more specific message above.
    files = []
    for path, read in ((images_path, images_read), (labels_path, labels_read)):
        expected = sums.get(path.name.removesuffix(".gz"))
        if read.content_sha256 != expected:
            what = "sha256 of the decompressed content" if read.gzip else "sha256"
            raise DataError(
                f"{path}: {what} is {read.content_sha256}, expected {expected} "
                f"(corrupt, or not the official {spec.title} file)"
            )
        files.append(
            FileRecord(
                path=str(path),
                size=read.size,
                sha256=read.sha256,
                verified=True,
                decompressed_sha256=read.content_sha256 if read.gzip else None,
            )
        )
    images = images.reshape(-1, 1, 28, 28)
    fmt = "idx-gzip" if images_read.gzip or labels_read.gzip else "idx"
    store_cached(
        spec.name,
        split,
        key,
        images,
        labels,
        {"source": fields["source"], "format": fmt, "lossy": False, "files": files},
    )
    return to_dataset(images, labels, **fields, provenance=provenance(fmt, len(labels), files))
